"""The new x8 release minus the previous one (LLV-FSR x8 of 2026-11-30), paired per face on the 300 val faces,
from x8/per_image.csv (python vs_previous.py > vs_previous.txt; x16/report.md has the x16 pair)."""
import os
import sys

from llvfsr_plugin.report import read_per_image
from llvfsr_plugin.utils.stats import fmt_interval

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
from pair_reports import pair  # noqa: E402

m = read_per_image('x8/per_image.csv')
new, old = m['LLV-FSR tail_lm x8 (new)'], m['LLV-FSR x8 (2026-11-30)']
print(f'LLV-FSR tail_lm x8 (new) - LLV-FSR x8 (2026-11-30), {len(new)} faces, 95 % bootstrap interval:')
for met, d in pair(new, old, ('psnr', 'ssim', 'lpips', 'niqe', 'id_dist', 'face_psnr')).items():
    print(f'  {met}: {fmt_interval(d, 4 if met in ("ssim", "lpips", "id_dist") else 3)}')
