"""Paired bootstrap intervals: they cover the true difference and shrink with more faces."""
import numpy as np
import pytest

from llvfsr_plugin.utils.stats import paired_bootstrap


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
