"""The coarse prior tail on Model 1's body (row llvfsr_tailonly_coarse_lm, `fusion: none`: landmark-net maps modulate
the tail at 64 and 128, no LVPFB on the LR grid) at 3,600 iterations, per face on the same 100 val faces and seed:
- against the coarse tail with the body's LVPFBs (llvfsr_tail_coarse_lm) and Model 1: the committed runs of the
  previous machine (../quality_x8_coarse_2026-12-02/x8_coarse, seeds 0-2) and, where trained here beside it
  (x8_tailonly: coarse seed 2, Model 1 seeds 0 and 2), the same-machine pair; the same row on both machines
  gives each machine pair's rounding floor;
- at equal CPU minutes, as coarse_vs.py does: each face's Model 1 / LR-map SFT body score interpolated linearly
  between the committed 3,600- and 5,400-iteration runs (../quality_seeds_crn_2026-11-30/x8_one_zero_*) to the
  iterations the row's minutes buy, 3,600 x r for Model 1 and 3,600 x r / 1.09 for the SFT body, r = the row's
  CPU minutes over Model 1's, both measured here (one thread each, beside each other). The coarse tail's r is
  measured here too (seed 2), so both tails are placed on this machine's minutes.
  python tailonly_vs.py > tailonly_vs.txt"""
import json
import os
import sys
from statistics import mean

from llvfsr_plugin.report import read_per_image
from llvfsr_plugin.utils.stats import fmt_interval

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
from pair_reports import pair  # noqa: E402

HERE = 'x8_tailonly'
COARSE = '../quality_x8_coarse_2026-12-02/x8_coarse'
BODY = '../quality_seeds_crn_2026-11-30/x8_one_zero_{}'
SFT_STEP = 1.09
METRICS = ('psnr', 'face_psnr', 'id_dist')
LABELS = {'tailonly': 'LLV-FSR, landmark-net priors in the coarse prior tail only, no body fusion',
          'coarse': 'LLV-FSR, landmark-net priors, SFT prior tail, C/4 map features, finest x2 unmodulated',
          'model1': 'Model 1 (no priors)', 'sft': 'LLV-FSR, LR priors, SFT SegA/DepA'}
ROWS = {'tailonly': 'llvfsr_tailonly_coarse_lm', 'coarse': 'llvfsr_tail_coarse_lm', 'model1': 'model1'}


def suffix(seed):
    return '' if seed == 0 else f'_s{seed}'


def scores(run_dir, seed, row):
    """Per-face scores of one row of one seed, or None where that run was not trained there."""
    if not os.path.isfile(f'{run_dir}/q_{ROWS[row]}{suffix(seed)}_timing.json'):
        return None
    return read_per_image(f'{run_dir}/report{suffix(seed)}/per_image.csv')[LABELS[row]]


def cpu(seed, row):
    path = f'{HERE}/q_{ROWS[row]}{suffix(seed)}_timing.json'
    return json.load(open(path))['cpu_minutes'] if os.path.isfile(path) else None


def line(label, a, b):
    print(f'  {label}: ' + ', '.join(f'{met} {fmt_interval(d)}' for met, d in pair(a, b, METRICS).items()))


def interpolate(lo, hi, w):
    return {k: {m: (1 - w) * lo[k][m] + w * hi[k][m] for m in METRICS} for k in lo}


model1_cpu = [c for c in (cpu(s, 'model1') for s in (0, 1, 2)) if c]
print(f'CPU minutes here (one thread per run): Model 1 {", ".join(f"{c:.1f}" for c in model1_cpu)} '
      f'(mean {mean(model1_cpu):.1f}); the ratios r below divide by the same seed\'s Model 1 where it ran here, '
      'else by that mean')
for seed in (0, 1, 2):
    own = scores(HERE, seed, 'tailonly')
    if own is None:
        continue
    m1_cpu = cpu(seed, 'model1') or mean(model1_cpu)
    r = {row: cpu(seed, row) / m1_cpu for row in ('tailonly', 'coarse') if cpu(seed, row)}
    print(f'seed {seed}: CPU minutes tail only {cpu(seed, "tailonly"):.1f}'
          + (f', coarse {cpu(seed, "coarse"):.1f}' if 'coarse' in r else '')
          + f', Model 1 {m1_cpu:.1f} ({"this seed" if cpu(seed, "model1") else "mean"}); r: '
          + ', '.join(f'{k} {v:.2f}' for k, v in r.items()))
    for row in ('coarse', 'model1'):
        line(f'tail only - {row} (previous machine)', own, scores(COARSE, seed, row))
        here = scores(HERE, seed, row)
        if here is not None:
            line(f'tail only - {row} (here)', own, here)
            line(f'floor: {row} here - {row} previous machine', here, scores(COARSE, seed, row))
    ends = {it: read_per_image(f'{BODY.format(it)}/report{suffix(seed)}/per_image.csv') for it in (3600, 5400)}
    tails = {'tail only': (own, r['tailonly'])}
    if 'coarse' in r:
        tails['coarse'] = (scores(HERE, seed, 'coarse'), r['coarse'])
    for name, (a, ratio) in tails.items():
        for ref, step in (('model1', 1.0), ('sft', SFT_STEP)):
            iters = 3600 * ratio / step
            w = (iters - 3600) / 1800
            line(f'{name} @3,600 - {LABELS[ref]} interpolated @{iters:,.0f} (equal minutes)', a,
                 interpolate(ends[3600][LABELS[ref]], ends[5400][LABELS[ref]], w))
