"""The landmark-net light tail at 3,600 iterations against rows trained longer, per face on the same 100 val faces
(python equal_minutes.py > equal_minutes.txt): at x8 Model 1 and the LR-map SFT row at 5,400 iterations
(../quality_seeds_crn_2026-11-30/x8_one_zero_5400), at x16 Model 1 and the light tail on LR / first-pass maps at
7,200 (../quality_x16_tail_2026-12-01/x16_7200). Per seed, 95 % bootstrap interval over faces. Cost of a run in
Model 1's 3,600-iteration CPU minutes: the tail row 1.81 / 2.04 / 2.46 (x8, seeds 0-2, measured), Model 1 at
5,400 1.5, SFT at 5,400 about 1.6 (its train step 1.09x Model 1's in wall minutes of x8_one_zero_3600), Model 1
at 7,200 2.0: each longer run costs about as much as the tail row or less."""
import os
import sys

from llvfsr_plugin.report import read_per_image
from llvfsr_plugin.utils.stats import fmt_interval

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
from pair_reports import pair  # noqa: E402

RUNS = {8: ('x8_lm3600', '../quality_seeds_crn_2026-11-30/x8_one_zero_5400', 5400),
        16: ('../quality_x16_tail_2026-12-01/x16_fp3600', '../quality_x16_tail_2026-12-01/x16_7200', 7200)}
for scale, (mine, longer, iters) in RUNS.items():
    for seed in (0, 1, 2):
        suf = '' if seed == 0 else f'_s{seed}'
        a = read_per_image(f'{mine}/report{suf}/per_image.csv')
        row = next(m for m in a if 'landmark-net' in m)
        b = read_per_image(f'{longer}/report{suf}/per_image.csv')
        for ref in (m for m in b if m != 'Bicubic'):
            diffs = pair(a[row], b[ref], ('psnr', 'face_psnr'))
            cells = [f'{met} {fmt_interval(d)}' for met, d in diffs.items()]
            print(f'x{scale} seed {seed}: landmark-net tail @3,600 - {ref} @{iters:,}: ' + ', '.join(cells))
