"""Rows of the README table of row llvfsr_tail_light_lm at x8 from the out directory's summaries and reports
(python x8_table.py .): the row minus Model 1, each model minus bicubic, prior use."""
import json
import sys

from llvfsr_plugin.report import read_per_image
from llvfsr_plugin.utils.stats import fmt_interval as iv

F = sys.argv[1] if len(sys.argv) > 1 else '.'
AN = "another face's priors"
ROW = 'llvfsr_tail_light_lm'


def means(rep):
    """{method: mean PSNR} of a report."""
    return {m: sum(f['psnr'] for f in faces.values()) / len(faces)
            for m, faces in read_per_image(f'{F}/{rep}/per_image.csv').items()}


for tag, lab in (('', 'last'), ('_avg10', 'averaged 2,700-3,600')):
    try:
        S = json.load(open(f'{F}/summary{tag}.json'))
    except FileNotFoundError:
        continue
    for seed in ('0', '1', '2'):
        if seed not in S or ROW not in S[seed]:
            continue
        m = means(f'report{tag}' + (f'_s{seed}' if seed != '0' else ''))
        lm = [k for k in m if 'landmark-net' in k][0]
        m1 = [k for k in m if k.startswith('Model 1')][0]
        d = S[seed][ROW]['model1']
        u = S['prior_use'][seed][ROW]
        cells = [iv(d[k]) for k in ('psnr', 'face_psnr', 'id_dist')]
        print(f"| {seed}, {lab} | {m[m1]:.2f} | {m[lm]:.2f} | " + ' | '.join(cells)
              + f" | {m[m1] - m['Bicubic']:+.3f} / {m[lm] - m['Bicubic']:+.3f}"
              + f" | {u[AN]['mean']:+.3f} / {u['blank priors']['mean']:+.3f} |")
    o = S.get('over_seeds', {}).get(ROW, {})
    for ref in o:
        for met in ('psnr', 'face_psnr', 'id_dist'):
            x = o[ref][met]
            print(f"  over seeds{tag} {ROW} - {ref} {met}: {x['mean']:+.3f} ({x['seed_lo']:+.3f}, {x['seed_hi']:+.3f})"
                  f" min {x['min']:+.3f} max {x['max']:+.3f}")
