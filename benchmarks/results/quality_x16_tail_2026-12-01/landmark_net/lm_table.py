"""Rows of the README table 'landmark-net maps trained in' from x16_fp3600's summaries and reports."""
import csv, json, sys
from collections import defaultdict
F = sys.argv[1] if len(sys.argv) > 1 else '/work/exp/x16_fp3600'
def iv(d, k=3):
    return f"{d['mean']:+.{k}f} [{d['lo']:+.{k}f}, {d['hi']:+.{k}f}]"
def means(rep):
    s = defaultdict(list)
    for r in csv.DictReader(open(f'{F}/{rep}/per_image.csv')):
        s[r['method']].append(float(r['psnr']))
    return {k: sum(v) / len(v) for k, v in s.items()}
AN = "another face's priors"
for tag, lab in (('', 'last'), ('_avg10', 'averaged 2,700-3,600')):
    S = json.load(open(f'{F}/summary{tag}.json'))
    for seed in ('0', '1', '2'):
        if seed not in S or 'llvfsr_tail_light_lm' not in S[seed]:
            continue
        rep = f'report{tag}' + (f'_s{seed}' if seed != '0' else '')
        m = means(rep)
        lm = [k for k in m if 'landmark-net' in k][0]
        d = S[seed]['llvfsr_tail_light_lm']
        u = S['prior_use'][seed]['llvfsr_tail_light_lm']
        print(f"| {seed}, {lab} | {m[lm]:.2f} | {iv(d['model1']['psnr'])} | {iv(d['model1']['face_psnr'])} | {iv(d['model1']['id_dist'])} | "
              f"{iv(d['llvfsr_tail_light_sr']['psnr'])} | {iv(d['llvfsr_tail_light_sr']['face_psnr'])} | {u[AN]['mean']:+.3f} / {u['blank priors']['mean']:+.3f} |")
    o = S.get('over_seeds', {}).get('llvfsr_tail_light_lm', {})
    for ref in o:
        for met in ('psnr', 'face_psnr', 'id_dist'):
            x = o[ref][met]
            print(f"  over seeds{tag} lm - {ref} {met}: {x['mean']:+.3f} ({x['seed_lo']:+.3f}, {x['seed_hi']:+.3f}) min {x['min']:+.3f} max {x['max']:+.3f}")
