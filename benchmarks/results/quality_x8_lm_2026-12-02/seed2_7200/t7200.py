"""Seed 2 of the x8 landmark-net tail and its Model 1 continued from 3,600 to 7,200 iterations (report_s2/, by
x8lm7200.sh) against their 3,600-iteration report (../x8_lm3600/report_s2); python t7200.py > t7200.txt."""
import os
import sys

from llvfsr_plugin.report import read_per_image
from llvfsr_plugin.utils.stats import fmt_interval

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..'))
from pair_reports import pair  # noqa: E402

a = read_per_image('../x8_lm3600/report_s2/per_image.csv')
b = read_per_image('report_s2/per_image.csv')


def row(m):
    return next(k for k in m if 'landmark-net' in k)


def m1(m):
    return next(k for k in m if k.startswith('Model 1'))


pairs = [('row@7200 - Model1@7200', b[row(b)], b[m1(b)]), ('row@7200 - row@3600', b[row(b)], a[row(a)]),
         ('Model1@7200 - Model1@3600', b[m1(b)], a[m1(a)]), ('row@3600 - Model1@7200', a[row(a)], b[m1(b)])]
for name, x, y in pairs:
    diffs = pair(x, y, ('psnr', 'face_psnr', 'id_dist'))
    cells = [f'{met} {fmt_interval(d, 4 if met == "id_dist" else 3)}' for met, d in diffs.items()]
    print(f'x8 seed 2, {name}: ' + ', '.join(cells))
for n, m in (('Model 1', m1(b)), ('row', row(b))):
    print(n, '@7200 mean PSNR', round(sum(f['psnr'] for f in b[m].values()) / len(b[m]), 3), '- bicubic',
          round(sum(b[m][k]['psnr'] - b['Bicubic'][k]['psnr'] for k in b[m]) / len(b[m]), 3))
