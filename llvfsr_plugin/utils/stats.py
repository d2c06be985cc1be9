"""Paired comparisons of two methods on the same faces: the mean per-face difference and its bootstrap
interval (resampling faces), so a claim carries the spread that a 100-face mean hides; and the interval over
training seeds, which carries what retraining moves (the per-face interval holds the trained networks fixed)."""
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


def unpaired_bootstrap(a, b, n_boot=10000, ci=0.95, seed=0):
    """Mean of a minus mean of b for two groups of different faces, and its percentile bootstrap interval
    (faces resampled within each group).

    Args:
        a, b (sequence of float): per-face scores of two groups (any lengths, non-empty).
        n_boot (int): bootstrap resamples.  ci (float): interval coverage.  seed (int): resampling seed.
    Returns:
        dict: mean, lo, hi (the interval).
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim != 1 or b.ndim != 1 or not len(a) or not len(b):
        raise ValueError(f'unpaired_bootstrap: need two non-empty score lists, got {a.shape} and {b.shape}')
    rng = np.random.default_rng(seed)
    da = a[rng.integers(len(a), size=(n_boot, len(a)))].mean(1)
    db = b[rng.integers(len(b), size=(n_boot, len(b)))].mean(1)
    lo, hi = np.quantile(da - db, [(1 - ci) / 2, 1 - (1 - ci) / 2])
    return {'mean': float(a.mean() - b.mean()), 'lo': float(lo), 'hi': float(hi)}


def fmt_interval(d, digits=3):
    """'+0.030 [+0.018, +0.041]': a difference's mean and interval (a paired_bootstrap result) as printed in
    the tables."""
    return f"{d['mean']:+.{digits}f} [{d['lo']:+.{digits}f}, {d['hi']:+.{digits}f}]"


def seed_interval(values, ci=0.95):
    """Student-t interval of the mean of per-seed results (one value per training seed, e.g. each seed's mean
    per-face difference): what the difference is expected to be over retrainings, not only over faces.

    Args:
        values (sequence of float): one result per seed, at least two.  ci (float): interval coverage.
    Returns:
        dict: mean, lo, hi (the interval), n (seeds), sd (sample standard deviation over seeds).
    """
    from scipy.stats import t
    v = np.asarray(values, np.float64)
    if v.ndim != 1 or len(v) < 2:
        raise ValueError(f'seed_interval: need one value per seed for two seeds or more, got {np.shape(v)}')
    sd = float(v.std(ddof=1))
    half = float(t.ppf(1 - (1 - ci) / 2, len(v) - 1)) * sd / np.sqrt(len(v))
    return {'mean': float(v.mean()), 'lo': float(v.mean() - half), 'hi': float(v.mean() + half), 'n': int(len(v)),
            'sd': sd}
