"""Paired comparisons of two methods on the same faces: the mean per-face difference and its bootstrap
interval (resampling faces), so a claim carries the spread that a 100-face mean hides."""
import numpy as np


def paired_bootstrap(a, b, n_boot=10000, ci=0.95, seed=0):
    """Mean of a - b over paired per-face scores and its percentile bootstrap interval over faces.

    Args:
        a, b (sequence of float): per-face scores of two methods, same faces in the same order.
        n_boot (int): bootstrap resamples.  ci (float): interval coverage.  seed (int): resampling seed.
    Returns:
        dict: mean, lo, hi (the interval), n (faces), better (fraction of faces where a > b).
    """
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    if d.ndim != 1 or len(d) == 0:
        raise ValueError(f'paired_bootstrap: need two equally long, non-empty score lists, got {np.shape(d)}')
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(n_boot, len(d)))].mean(1)
    lo, hi = np.quantile(means, [(1 - ci) / 2, 1 - (1 - ci) / 2])
    return {'mean': float(d.mean()), 'lo': float(lo), 'hi': float(hi), 'n': int(len(d)),
            'better': float((d > 0).mean())}
