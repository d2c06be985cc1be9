"""Where the landmark-net maps are fused, x8, 3,600 iterations, per face on the same 100 val faces and seed:
- tail only: row llvfsr_tailonly_coarse_lm, the coarse prior tail (modulation at 64 and 128) on Model 1's body
  (`fusion: none`: no LVPFB on the LR grid);
- body only: row llvfsr_sft_lm, the LR body's SFT SegA/DepA (an LVPFB in each of the L stages), no prior tail;
- both: row llvfsr_tail_coarse_lm (the default file's network), committed in ../quality_x8_coarse_2026-12-02/.
Each row against the committed runs of the previous machine (../quality_x8_coarse_2026-12-02/x8_coarse: both, and
Model 1, seeds 0-2) and, where trained here beside it (x8_site: both and Model 1 at seed 2), the same-machine pair;
the same row on both machines gives that pair's rounding floor. Then at equal CPU minutes, as coarse_vs.py does:
each face's Model 1 / LR-map SFT body score interpolated linearly between the committed 3,600- and 5,400-iteration
runs (../quality_seeds_crn_2026-11-30/x8_one_zero_*) to the iterations the row's minutes buy, 3,600 x r for Model
1 and 3,600 x r / 1.09 for the SFT body, r = the row's CPU minutes over Model 1's, both measured here (one thread
per run, two runs beside each other).
  python site_vs.py > site_vs.txt"""
import functools
import json
import os
import sys
from statistics import mean

from llvfsr_plugin.report import read_per_image
from llvfsr_plugin.utils.stats import fmt_interval

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
from pair_reports import interpolate, pair_line  # noqa: E402
from quality_experiment import finished_scores, report_dir, run_name, run_record  # noqa: E402

HERE = 'x8_site'
COARSE = '../quality_x8_coarse_2026-12-02/x8_coarse'
BODY = '../quality_seeds_crn_2026-11-30/x8_one_zero_{}'
SFT_STEP = 1.09
METRICS = ('psnr', 'face_psnr', 'id_dist')
ROWS = {'tail only': 'llvfsr_tailonly_coarse_lm', 'body only': 'llvfsr_sft_lm', 'both': 'llvfsr_tail_coarse_lm',
        'Model 1': 'model1'}  # short name: quality_experiment row
LR_SFT = 'LLV-FSR, LR priors, SFT SegA/DepA'


report = functools.lru_cache(maxsize=None)(read_per_image)  # each per_image.csv read once, however many pairs use it


def scores(run_dir, seed, name):
    """Per-face scores of one row of one seed, or None where that run was not trained there."""
    return finished_scores(run_dir, ROWS[name], seed, 3600, read=report)


def cpu(seed, name):
    return run_record(HERE, run_name(ROWS[name], seed)).get('cpu_minutes')


def line(label, a, b):
    print(pair_line(label, a, b, METRICS))


model1_cpu = [c for c in (cpu(s, 'Model 1') for s in (0, 1, 2)) if c]
print(f'CPU minutes of Model 1 here: {", ".join(f"{c:.1f}" for c in model1_cpu)}; r = a row\'s CPU minutes over '
      'the same seed\'s Model 1 here where it ran, else over their mean')
for seed in (0, 1, 2):
    m1_cpu = cpu(seed, 'Model 1') or mean(model1_cpu)
    ends = {it: report(f'{report_dir(BODY.format(it), seed)}/per_image.csv') for it in (3600, 5400)}
    print(f'seed {seed}:')
    for name in ('tail only', 'body only', 'both'):
        own = scores(HERE, seed, name)
        if own is None:
            continue
        r = cpu(seed, name) / m1_cpu
        print(f' {name}: CPU minutes {cpu(seed, name):.1f}, r = {r:.2f}')
        for ref in ('both', 'Model 1'):
            if ref != name:
                line(f'{name} - {ref} (previous machine)', own, scores(COARSE, seed, ref))
            here = scores(HERE, seed, ref)
            if here is not None and ref != name:
                line(f'{name} - {ref} (here)', own, here)
        if name == 'body only' and scores(HERE, seed, 'tail only') is not None:
            line('body only - tail only', own, scores(HERE, seed, 'tail only'))
        for ref, step in (('Model 1 (no priors)', 1.0), (LR_SFT, SFT_STEP)):
            iters = 3600 * r / step
            line(f'{name} @3,600 - {ref} interpolated @{iters:,.0f} (equal minutes)', own,
                 interpolate(ends[3600][ref], ends[5400][ref], (iters - 3600) / 1800, METRICS))
    for name in ('both', 'Model 1'):
        here = scores(HERE, seed, name)
        if here is not None:
            line(f'rounding floor: {name} here - {name} previous machine', here, scores(COARSE, seed, name))
print('own maps minus blank / another face\'s maps (PSNR, --sensitivity):')
for seed in (0, 1, 2):
    for name in ('tail only', 'body only', 'both'):
        path = f'{HERE}/{run_name(ROWS[name], seed)}_sensitivity.json'
        if os.path.isfile(path):
            d = json.load(open(path))['own_minus']
            print(f'  seed {seed}, {name}: ' + ', '.join(f'{k} {fmt_interval(v)}' for k, v in d.items()))
