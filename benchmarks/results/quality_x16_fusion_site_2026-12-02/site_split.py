"""Figure site_split.png: where the landmark-net maps earn their gain, x8 and x16, 3,600 iterations. Each row minus
Model 1 of the same seed, per face on the 100 val faces (mean and 95 % bootstrap interval), whole-image PSNR-Y and
face-region PSNR, one marker per seed: tail only (the prior tail on Model 1's body), body only (SFT SegA/DepA in the
LR body), both (the default file's network at that scale). x8 from ../quality_x8_fusion_site_2026-12-02 and the
committed runs it pairs with, x16 from x16_site and ../quality_x16_tail_2026-12-01/x16_fp3600.
  python site_split.py"""
import functools
import os
import sys

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

from llvfsr_plugin.report import read_per_image  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
from pair_reports import pair  # noqa: E402
from quality_experiment import finished_scores  # noqa: E402

X8, X8_BOTH = '../quality_x8_fusion_site_2026-12-02/x8_site', '../quality_x8_coarse_2026-12-02/x8_coarse'
X16_BOTH = '../quality_x16_tail_2026-12-01/x16_fp3600'
SOURCES = {  # scale: {site: (experiment folder, quality_experiment row)}
    8: {'tail only': (X8, 'llvfsr_tailonly_coarse_lm'), 'body only': (X8, 'llvfsr_sft_lm'),
        'both': (X8_BOTH, 'llvfsr_tail_coarse_lm'), 'Model 1': (X8_BOTH, 'model1')},
    16: {'tail only': ('x16_site', 'llvfsr_tailonly_lm'), 'body only': ('x16_site', 'llvfsr_sft_lm'),
         'both': (X16_BOTH, 'llvfsr_tail_light_lm'), 'Model 1': (X16_BOTH, 'model1')}}
SITES = ('tail only', 'body only', 'both')
METRICS = {'psnr': 'PSNR-Y', 'face_psnr': 'face-region PSNR'}
report = functools.lru_cache(maxsize=None)(read_per_image)


def scores(scale, site, seed):
    return finished_scores(*SOURCES[scale][site], seed, 3600, read=report)


fig, axes = plt.subplots(1, 4, figsize=(14, 3.6), sharey=False)
for col, (scale, metric) in enumerate((s, m) for s in (8, 16) for m in METRICS):
    ax = axes[col]
    for i, site in enumerate(SITES):
        for seed in (0, 1, 2):
            d = pair(scores(scale, site, seed), scores(scale, 'Model 1', seed), [metric])[metric]
            x = i + (seed - 1) * 0.18
            ax.errorbar(x, d['mean'], yerr=[[d['mean'] - d['lo']], [d['hi'] - d['mean']]], fmt='o', capsize=3,
                        color=f'C{i}', alpha=0.6 + 0.2 * seed / 2)
    ax.axhline(0, color='k', lw=0.8)
    ax.axhline(0.10 if metric == 'psnr' else 0.25, color='grey', ls='--', lw=0.8)  # the first target
    ax.set_xticks(range(len(SITES)), SITES)
    ax.set_title(f'x{scale}: {METRICS[metric]}', fontsize=10)
    ax.set_ylabel('dB minus Model 1 (per face, 95 % CI)' if col == 0 else '')
fig.suptitle('Where the landmark-net maps are fused, 3,600 iterations, seeds 0 / 1 / 2 left to right '
             '(dashed: the issue\'s first target)', fontsize=10)
fig.tight_layout()
fig.savefig('site_split.png', dpi=110)
print('wrote site_split.png')
