"""Where the landmark-net maps are fused, x16, 3,600 iterations, per face on the same 100 val faces and seed:
- tail only: row llvfsr_tailonly_lm, the light prior tail (modulation after each of the tail's four x2, at 32, 64,
  128 and 256) on Model 1's body (`fusion: none`: no LVPFB on the 16x16 LR grid);
- body only: row llvfsr_sft_lm, the LR body's SFT SegA/DepA (an LVPFB in each of the L stages), no prior tail;
- both: row llvfsr_tail_light_lm (the x16 default file's network), committed in
  ../quality_x16_tail_2026-12-01/x16_fp3600 with its Model 1 (trained on an earlier machine).
Each row against those committed runs and, at seed 2, against Model 1 trained here (x16_site), which also gives the
cross-machine floor (Model 1 here minus Model 1 there). At equal CPU minutes: each face's Model 1 score interpolated
linearly between the committed 3,600- and 7,200-iteration checkpoints of the same run (x16_fp3600 / x16_7200) to the
iterations the row's minutes buy, 3,600 x r (r = the row's CPU minutes over Model 1's seed-2 minutes here; one
thread per run, two runs beside each other); where that is beyond 7,200, the pair with Model 1 at 7,200 (fewer
minutes than the row's, so an upper bound on the row's lead at equal minutes; no extrapolation).
  python site_vs16.py > site_vs16.txt"""
import functools
import json
import os
import sys

from llvfsr_plugin.report import read_per_image
from llvfsr_plugin.utils.stats import fmt_interval

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
from pair_reports import interpolate, pair_line  # noqa: E402
from quality_experiment import finished_scores, run_name, run_record  # noqa: E402

HERE = 'x16_site'
THERE = '../quality_x16_tail_2026-12-01/x16_{}'
METRICS = ('psnr', 'face_psnr', 'id_dist')
ROWS = {'tail only': 'llvfsr_tailonly_lm', 'body only': 'llvfsr_sft_lm', 'both': 'llvfsr_tail_light_lm',
        'Model 1': 'model1'}  # short name: quality_experiment row

report = functools.lru_cache(maxsize=None)(read_per_image)  # each per_image.csv read once


def scores(out, seed, name, iters=3600):
    """Per-face scores of one row of one seed in `out`, or None where that run was not trained there."""
    return finished_scores(out, ROWS[name], seed, iters, read=report)


def committed(seed, name, iters=3600):
    return scores(THERE.format('fp3600' if iters == 3600 else iters), seed, name, iters)


def cpu(seed, name):
    return run_record(HERE, run_name(ROWS[name], seed)).get('cpu_minutes')


def line(label, a, b):
    print(pair_line(label, a, b, METRICS))


m1_cpu = cpu(2, 'Model 1')
print(f'CPU minutes of Model 1 here (seed 2): {m1_cpu:.1f}; r = a row\'s CPU minutes over it')
for seed in (0, 1, 2):
    print(f'seed {seed}:')
    for name in ('tail only', 'body only'):
        own = scores(HERE, seed, name)
        if own is None:
            continue
        r = cpu(seed, name) / m1_cpu
        print(f' {name}: CPU minutes {cpu(seed, name):.1f}, r = {r:.2f}')
        for ref in ('both', 'Model 1'):
            line(f'{name} - {ref} (committed)', own, committed(seed, ref))
        here = scores(HERE, seed, 'Model 1')
        if here is not None:
            line(f'{name} - Model 1 (here)', own, here)
        if name == 'body only' and scores(HERE, seed, 'tail only') is not None:
            line('body only - tail only', own, scores(HERE, seed, 'tail only'))
        iters = 3600 * r
        if iters <= 7200:
            line(f'{name} @3,600 - Model 1 interpolated @{iters:,.0f} (equal minutes)', own,
                 interpolate(committed(seed, 'Model 1'), committed(seed, 'Model 1', 7200), (iters - 3600) / 3600,
                             METRICS))
        else:  # beyond the longest Model 1 run: not extrapolated; Model 1 still gains, so this bounds it from above
            line(f'{name} @3,600 - Model 1 @7,200 (fewer minutes: equal minutes is @{iters:,.0f}; an upper bound)',
                 own, committed(seed, 'Model 1', 7200))
    line('both - Model 1 (committed, for reference)', committed(seed, 'both'), committed(seed, 'Model 1'))
    here = scores(HERE, seed, 'Model 1')
    if here is not None:
        line('cross-machine floor: Model 1 here - Model 1 committed', here, committed(seed, 'Model 1'))
print('own maps minus blank / another face\'s maps (PSNR, --sensitivity):')
for seed in (0, 1, 2):
    for name in ('tail only', 'body only'):
        path = f'{HERE}/{run_name(ROWS[name], seed)}_sensitivity.json'
        if os.path.isfile(path):
            d = json.load(open(path))['own_minus']
            print(f'  seed {seed}, {name}: ' + ', '.join(f'{k} {fmt_interval(v)}' for k, v in d.items()))
