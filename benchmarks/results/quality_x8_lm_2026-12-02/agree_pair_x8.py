"""x8 landmark-net maps minus FaceMesh's (LR face; first pass at 3,600), per face, from map_agreement JSONs
(95 % bootstrap over faces). Run from this directory with the repo on PYTHONPATH."""
import json

from llvfsr_plugin.utils.stats import paired_bootstrap

MA = '../map_agreement_2026-11-30'
lm = json.load(open('agree_x8_landmark-net.json'))['per_face']
for name, path in (('FaceMesh on the LR face', f'{MA}/x8_val.json'),
                   ('first pass (Model 1 at 3,600), seed 0', f'{MA}/x8_val_first_pass_3600_s0.json'),
                   ('first pass (Model 1 at 3,600), seed 1', f'{MA}/x8_val_first_pass_3600_s1.json')):
    other = json.load(open(path))['per_face']
    keys = sorted(set(lm) & set(other))
    for m in ('mask_lr', 'depth_lr'):
        k = [x for x in keys if lm[x].get(m) is not None and other[x].get(m) is not None]
        d = paired_bootstrap([lm[x][m] for x in k], [other[x][m] for x in k])
        print(f"landmark-net - {name}: {m} {d['mean']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}], "
              f"better on {d['better']:.0%} of {len(k)} faces")
