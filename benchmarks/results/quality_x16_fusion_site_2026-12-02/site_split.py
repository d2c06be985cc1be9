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

M1 = 'Model 1 (no priors)'
BODY = 'LLV-FSR, landmark-net priors, SFT SegA/DepA'
SOURCES = {  # scale: {site: (report folder of seed 0, label)}; seed s reads <folder>_s<s>
    8: {'tail only': ('../quality_x8_fusion_site_2026-12-02/x8_site/report',
                      'LLV-FSR, landmark-net priors in the coarse prior tail only, no body fusion'),
        'body only': ('../quality_x8_fusion_site_2026-12-02/x8_site/report', BODY),
        'both': ('../quality_x8_coarse_2026-12-02/x8_coarse/report',
                 'LLV-FSR, landmark-net priors, SFT prior tail, C/4 map features, finest x2 unmodulated'),
        'Model 1': ('../quality_x8_coarse_2026-12-02/x8_coarse/report', M1)},
    16: {'tail only': ('x16_site/report', 'LLV-FSR, landmark-net priors in the light prior tail only, no body fusion'),
         'body only': ('x16_site/report', BODY),
         'both': ('../quality_x16_tail_2026-12-01/x16_fp3600/report',
                  'LLV-FSR, landmark-net priors, SFT prior tail, C/4 map features'),
         'Model 1': ('../quality_x16_tail_2026-12-01/x16_fp3600/report', M1)}}
SITES = ('tail only', 'body only', 'both')
METRICS = {'psnr': 'PSNR-Y', 'face_psnr': 'face-region PSNR'}
report = functools.lru_cache(maxsize=None)(read_per_image)


def scores(scale, site, seed):
    folder, label = SOURCES[scale][site]
    return report(f'{folder}{"" if seed == 0 else f"_s{seed}"}/per_image.csv')[label]


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
