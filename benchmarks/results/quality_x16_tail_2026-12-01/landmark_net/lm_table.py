"""Rows of the README table of row llvfsr_tail_light_lm from x16_fp3600's summaries and reports
(python lm_table.py ../x16_fp3600)."""
import json
import sys

from llvfsr_plugin.report import read_per_image
from llvfsr_plugin.utils.stats import fmt_interval as iv

F = sys.argv[1] if len(sys.argv) > 1 else '/work/exp/x16_fp3600'
AN = "another face's priors"


def means(rep):
    """{method: mean PSNR} of a report."""
    return {m: sum(f['psnr'] for f in faces.values()) / len(faces)
            for m, faces in read_per_image(f'{F}/{rep}/per_image.csv').items()}


for tag, lab in (('', 'last'), ('_avg10', 'averaged 2,700-3,600')):
    S = json.load(open(f'{F}/summary{tag}.json'))
    for seed in ('0', '1', '2'):
        if seed not in S or 'llvfsr_tail_light_lm' not in S[seed]:
            continue
        m = means(f'report{tag}' + (f'_s{seed}' if seed != '0' else ''))
        lm = [k for k in m if 'landmark-net' in k][0]
        d = S[seed]['llvfsr_tail_light_lm']
        u = S['prior_use'][seed]['llvfsr_tail_light_lm']
        cells = [iv(d['model1'][k]) for k in ('psnr', 'face_psnr', 'id_dist')]
        cells += [iv(d['llvfsr_tail_light_sr'][k]) for k in ('psnr', 'face_psnr')]
        print(f"| {seed}, {lab} | {m[lm]:.2f} | " + ' | '.join(cells)
              + f" | {u[AN]['mean']:+.3f} / {u['blank priors']['mean']:+.3f} |")
    o = S.get('over_seeds', {}).get('llvfsr_tail_light_lm', {})
    for ref in o:
        for met in ('psnr', 'face_psnr', 'id_dist'):
            x = o[ref][met]
            print(f"  over seeds{tag} lm - {ref} {met}: {x['mean']:+.3f} ({x['seed_lo']:+.3f}, {x['seed_hi']:+.3f}) "
                  f"min {x['min']:+.3f} max {x['max']:+.3f}")
