"""The tables of README section "Maps from a learned landmark regressor" from the files committed here and in
../x16_7200 (run from this folder): map agreement of landmark-net against first-pass maps per face, and the
first-pass rows tested with landmark-net maps against their stored maps and against Model 1 (95 % bootstrap)."""
import csv
import json

from llvfsr_plugin.utils.stats import fmt_interval as cell
from llvfsr_plugin.utils.stats import paired_bootstrap

lm = json.load(open('agree_data_landmark-net.json'))['per_face']
for s in ('', '_s1', '_s2'):
    fp = json.load(open(f'agree_data_firstpass_model1{s}_7200.json'))['per_face']
    keys = sorted(set(lm) & set(fp))
    row = [cell(paired_bootstrap([lm[k][m] for k in keys], [fp[k][m] for k in keys])) for m in ('mask_lr', 'depth_lr')]
    print(f"| seed {s[2:] or 0} first pass | " + ' | '.join(row) + ' |')
for s in (0, 1, 2):
    n = 'q_llvfsr_tail_light_sr_avg10' if s == 0 else f'q_llvfsr_tail_light_sr_s{s}_avg10'
    new, stored = json.load(open(f'{n}_lm.json')), json.load(open(f'../x16_7200/{n}_redraw.json'))
    assert new['keys'] == stored['keys']
    m1 = {r['key']: r for r in csv.DictReader(open(f"../x16_7200/report_avg10{'_s%d' % s if s else ''}/per_image.csv"))
          if r['method'].startswith('Model 1')}
    row = []
    for key, col in (('per_face_psnr', 'psnr'), ('per_face_face_psnr', 'face_psnr')):
        a = new[key]['own priors']
        row += [cell(paired_bootstrap(a, stored[key]['own priors'])),
                cell(paired_bootstrap(a, [float(m1[k][col]) for k in new['keys']]))]
    print(f'| {s} | ' + ' | '.join(row[i] for i in (0, 2, 1, 3)) + ' |')
