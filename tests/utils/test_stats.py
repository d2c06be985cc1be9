"""Intervals: the paired bootstrap over faces covers the true difference and shrinks with more faces; the t
interval over seeds covers the true mean as often as it says."""
import numpy as np
import pytest

from llvfsr_plugin.utils.stats import paired_bootstrap, seed_interval


def test_paired_bootstrap_interval():
    rng = np.random.default_rng(1)
    base = rng.normal(28, 2, 400)  # per-face PSNR: faces differ far more than the methods do
    better = base + 0.1 + rng.normal(0, 0.2, 400)
    r = paired_bootstrap(better, base)
    assert r['lo'] < 0.1 < r['hi'] and r['lo'] > 0 and r['n'] == 400 and r['better'] > 0.6
    small = paired_bootstrap(better[:25], base[:25])
    assert small['hi'] - small['lo'] > r['hi'] - r['lo']
    same = paired_bootstrap(base, base)
    assert same == {'mean': 0.0, 'lo': 0.0, 'hi': 0.0, 'n': 400, 'better': 0.0}
    with pytest.raises(ValueError, match='equally long'):
        paired_bootstrap([], [])


def test_seed_interval_covers_the_true_mean_95_percent_of_the_time():
    # three seeds a row, each seed's difference drawn around a true +0.10 dB with training noise sd 0.05:
    # the t interval over seeds covers +0.10 in ~95 % of experiments (a normal-quantile one would in ~88 %)
    rng = np.random.default_rng(0)
    hits = [(lambda r: r['lo'] <= 0.1 <= r['hi'])(seed_interval(rng.normal(0.1, 0.05, 3))) for _ in range(4000)]
    assert abs(np.mean(hits) - 0.95) < 0.012
    r = seed_interval([0.1, 0.2, 0.3])
    assert (r['mean'], r['n']) == (pytest.approx(0.2), 3) and r['sd'] == pytest.approx(0.1)
    assert r['hi'] - r['mean'] == pytest.approx(4.302653 * 0.1 / np.sqrt(3), abs=1e-6)
    with pytest.raises(ValueError, match='two seeds or more'):
        seed_interval([0.1])


def test_unpaired_bootstrap_finds_a_shift_between_groups_of_other_sizes():
    from llvfsr_plugin.utils.stats import unpaired_bootstrap
    rng = np.random.default_rng(1)
    a, b = rng.normal(1.0, 0.5, 300), rng.normal(0.8, 0.5, 200)
    d = unpaired_bootstrap(a, b)
    assert d['lo'] < d['mean'] < d['hi'] and d['lo'] > 0 and abs(d['mean'] - (a.mean() - b.mean())) < 1e-12
    same = unpaired_bootstrap(a, a[::-1].copy())
    assert same['lo'] < 0 < same['hi']
    with pytest.raises(ValueError, match='non-empty'):
        unpaired_bootstrap(a, [])
