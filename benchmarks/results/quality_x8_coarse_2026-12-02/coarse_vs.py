"""The coarse prior tail (row llvfsr_tail_coarse_lm, `prior_tail_skip: 1`: landmark-net maps modulate the tail at 64
and 128, not at 256) at 3,600 iterations, per face on the same 100 val faces and seed, against
- the light tail at 3,600 (every x2 modulated; ../quality_x8_lm_2026-12-02/x8_lm3600, same data and seed, seeds 0-1
  trained on the previous machine): what dropping the finest modulation costs at equal iterations;
- Model 1 and the LR-map SFT body (FaceMesh maps of the LR face, the strongest row without a tail) at 3,600 and 5,400
  iterations (../quality_seeds_crn_2026-11-30/x8_one_zero_3600, _5400), and, as a point estimate at equal CPU
  minutes, each face's score interpolated linearly between the two at the iterations the coarse row's minutes buy:
  3,600 x r for Model 1, 3,600 x r / 1.09 for the SFT body (r = the coarse row's CPU minutes over Model 1's, both
  trained beside each other in x8_coarse; the SFT body's step is 1.09x Model 1's, x8_one_zero_3600). The
  interpolation assumes steady progress between 3,600 and 5,400 (Model 1 gains ~0.1 dB over them); the two
  measured ends bracket it.
Then x16 (x16_coarse/): the row against the light tail and Model 1 of the same seed in
../quality_x16_tail_2026-12-01/x16_fp3600 (trained on the previous machine: Model 1 was not retrained here, so the
pairs also carry the two machines' rounding, about 0.01 dB at x8).
  python coarse_vs.py > coarse_vs.txt"""
import json
import os
import sys

from llvfsr_plugin.report import read_per_image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
from pair_reports import interpolate, pair_line  # noqa: E402

LIGHT = '../quality_x8_lm_2026-12-02/x8_lm3600'
X16 = '../quality_x16_tail_2026-12-01/x16_fp3600'
BODY = '../quality_seeds_crn_2026-11-30/x8_one_zero_{}'
SFT_STEP = 1.09
METRICS = ('psnr', 'face_psnr', 'id_dist')


def line(label, a, b):
    print(pair_line(label, a, b, METRICS))


for seed in (0, 1, 2):
    suf = '' if seed == 0 else f'_s{seed}'
    cpu = {row: json.load(open(f'x8_coarse/q_{row}{suf}_timing.json'))['cpu_minutes']
           for row in ('llvfsr_tail_coarse_lm', 'model1')}
    r = cpu['llvfsr_tail_coarse_lm'] / cpu['model1']
    print(f'seed {seed}: CPU minutes coarse {cpu["llvfsr_tail_coarse_lm"]:.1f}, Model 1 {cpu["model1"]:.1f} '
          f'(r = {r:.2f})')
    a = read_per_image(f'x8_coarse/report{suf}/per_image.csv')
    coarse = a[next(m for m in a if 'finest' in m)]
    light = read_per_image(f'{LIGHT}/report{suf}/per_image.csv')
    line('coarse - light tail, both @3,600', coarse, light[next(m for m in light if 'landmark-net' in m)])
    ends = {it: read_per_image(f'{BODY.format(it)}/report{suf}/per_image.csv') for it in (3600, 5400)}
    for ref, step in (('Model 1 (no priors)', 1.0), ('LLV-FSR, LR priors, SFT SegA/DepA', SFT_STEP)):
        for it in (3600, 5400):
            line(f'coarse @3,600 - {ref} @{it:,} ({it / 3600 * step:.2f}x Model 1\'s minutes)', coarse, ends[it][ref])
        iters = 3600 * r / step
        w = (iters - 3600) / 1800
        line(f'coarse @3,600 - {ref} interpolated @{iters:,.0f} (equal minutes)', coarse,
             interpolate(ends[3600][ref], ends[5400][ref], w, METRICS))

for seed in (0, 1, 2):
    suf = '' if seed == 0 else f'_s{seed}'
    a = read_per_image(f'x16_coarse/report{suf}/per_image.csv')
    coarse = a[next(m for m in a if 'finest' in m)]
    b = read_per_image(f'{X16}/report{suf}/per_image.csv')
    print(f'x16 seed {seed}:')
    for ref in ('LLV-FSR, landmark-net priors, SFT prior tail, C/4 map features', 'Model 1 (no priors)', 'Bicubic'):
        line(f'coarse @3,600 - {ref} @3,600', coarse, b[ref])
