"""The coarse x8 release minus the light-tail x8 release (LLVFSR_tail_lm_x8, 2026-12-02) and minus Model 1 x8
(2026-11-30), paired per face on the 300 val faces, from x8/per_image.csv (python vs_tail_lm.py > vs_tail_lm.txt)."""
import os
import sys

from llvfsr_plugin.report import read_per_image
from llvfsr_plugin.utils.stats import fmt_interval

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
from pair_reports import pair  # noqa: E402

m = read_per_image('x8/per_image.csv')
new = m['LLV-FSR tail_coarse_lm x8 (new)']
for ref in ('LLV-FSR tail_lm x8 (2026-12-02)', 'Model 1 x8 (2026-11-30)'):
    print(f'LLV-FSR tail_coarse_lm x8 (new) - {ref}, {len(new)} faces, 95 % bootstrap interval:')
    for met, d in pair(new, m[ref], ('psnr', 'ssim', 'lpips', 'niqe', 'id_dist', 'face_psnr')).items():
        print(f'  {met}: {fmt_interval(d, 4 if met in ("ssim", "lpips", "id_dist") else 3)}')
