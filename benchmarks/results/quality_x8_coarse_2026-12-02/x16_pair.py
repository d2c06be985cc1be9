"""x16, seeds 0-2: the coarse tail (x16_coarse/, this machine) per face against the light tail and Model 1 of the
same seed in ../quality_x16_tail_2026-12-01/x16_fp3600 (the previous machine: Model 1 there was not retrained here,
so the pair against it also carries the two machines' rounding, about 0.01 dB at x8).
python x16_pair.py > x16_pair.txt"""
import os
import sys

from llvfsr_plugin.report import read_per_image
from llvfsr_plugin.utils.stats import fmt_interval

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
from pair_reports import pair  # noqa: E402

for seed in (0, 1, 2):
    suf = '' if seed == 0 else f'_s{seed}'
    a = read_per_image(f'x16_coarse/report{suf}/per_image.csv')
    b = read_per_image(f'../quality_x16_tail_2026-12-01/x16_fp3600/report{suf}/per_image.csv')
    coarse = a[next(m for m in a if 'finest' in m)]
    for ref in ('LLV-FSR, landmark-net priors, SFT prior tail, C/4 map features', 'Model 1 (no priors)', 'Bicubic'):
        diffs = pair(coarse, b[ref], ('psnr', 'face_psnr', 'id_dist'))
        cells = [f'{met} {fmt_interval(d)}' for met, d in diffs.items()]
        print(f'x16 seed {seed}: coarse tail @3,600 - {ref} @3,600: ' + ', '.join(cells))
