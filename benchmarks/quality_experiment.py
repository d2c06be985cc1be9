#!/usr/bin/env python
"""Real-face quality experiment: do the priors help? Same data, seed, network size and iteration budget for
every row; bicubic, Model 1 (no priors), LLV-FSR with LR-derived priors only (FaceMesh mask + depth) and
LLV-FSR + oracle text (captions/descriptions from the dataset files), optionally EDSR and Model 2; and rows
that choose defaults or diagnose: the Swin-style transformer block, `upsample: pre` (at the same CPU minutes:
its train step is ~30x slower per face and needs ~5 GB a face, so batch 2), and oracle mask/depth computed
from the HR face (is the LR prior's quality the limit?).

  python benchmarks/quality_experiment.py --iters 1500 --rows model1 llvfsr_lr llvfsr_oracle
  python benchmarks/quality_experiment.py --quick   # 200 iterations, 200 train faces: a smoke run
  # where the priors meet the features (issue 13): today's body, + SFT prior tail, the hourglass, each with
  # its own Model 1; 128 px HR crops in training (whole faces in validation), maps at 128 px
  python benchmarks/quality_experiment.py --out runs/x8 --scale 8 --train 1000 --val 100 --iters 600 \
      --gt-size 128 --rows model1 llvfsr_lr llvfsr_tail hg_model1 llvfsr_hg --seeds 0 1 2

Rerunning with the same --out reuses the prepared data and every row already trained for --iters, and resumes
a row whose training was stopped (checkpoints every 100 iterations), so one more row or one more seed costs only
what is new. A seed's report holds every row of that seed finished in --out with these iterations, not only the
--rows of the last run. Several processes may share one --out (one per seed or row, started together): one preps
the data, the others wait for it.

Data: ../shared/data/celebahq256 train -> val (the CelebA identity split), HR --hr-size (256: the paper's
geometry, x8 = 32 px and x16 = 16 px LR), priors from the LR faces with the offline extractors at
--prior-size. Results: the report of llvfsr-report (PSNR, SSIM, NIQE, identity distance, face-region PSNR;
LPIPS where its weights exist; every face's scores; each row minus Model 1 per face with a 95 % bootstrap
interval) per seed in <out>/report (seed 0) or <out>/report_s<seed>/; summary.md / summary.json: per seed,
each prior row minus the Model 1 of its own geometry, every row minus today's Model 1 and each prior row
minus today's default (llvfsr_lr) and the row it varies (`compare`), per face with 95 % bootstrap intervals,
and over seeds (seeds.png); with --sensitivity, each prior row's PSNR with its own priors minus with blank /
another face's priors (what the output owes to the priors' content rather than to the layers that fuse them);
train minutes in timing.json: wall minutes, which a busy machine inflates, and CPU minutes of the training
process, which it does not (both summed over a continued run; per-step cost on an idle machine comes from
bench_speed.py).
With --average-last K every row is tested, reported and summarized with its weights averaged over its last K
checkpoints (one every 100 iterations; benchmarks/average_checkpoints.py): at a constant learning rate one
checkpoint is one point of a walk that moved the x16 pair by up to 0.05 dB between checkpoints 200 iterations
apart. Those outputs carry the suffix _avg<K> (results/<run>_avg<K>, report_avg<K>[_s<seed>],
summary_avg<K>.md); the last checkpoint's stay as they are.
Under one seed a prior row starts from its Model 1's weights (the prior modules have a random stream of their
own), so each seed's difference measures the priors, not two initialisations. Row llvfsr_sft_sr draws its maps
from the same seed's Model 1 output (a first SR pass, `first_pass` of the FaceMesh extractors; Model 1 is then
trained on the same train faces whose maps it draws) rather than from the bicubic LR face (llvfsr_tail_light_sr:
the same maps for the light prior tail); row llvfsr_tail_light_lm the light prior tail with maps painted from
the landmarks LandmarkNet predicts from the LR face (the `landmark-net` extractors, trained on faces this experiment
does not use: refused otherwise), row llvfsr_tail_coarse_lm the same without the modulation after the tail's last
x2 (`prior_tail_skip: 1`: the finest grid, where maps stored at half the output size say nothing new and the tail
does most of its work), row llvfsr_tailonly_coarse_lm that tail on Model 1's body (`fusion: none`: no LVPFB on the
LR grid; do the body's fusions earn their minutes?), row llvfsr_tailonly_lm the light tail (every x2 modulated) on
Model 1's body (the same question at x16, where the finest modulation does some work) and row llvfsr_sft_lm the LR
body's SFT fusion alone on those maps (no prior tail); row llvfsr_sft_mean gets the mean face's maps for every face
(does the network owe its gain to a face template?), row llvfsr_sft_shuffled another face's LR maps in training
and validation (to what these maps say about this face?).
Row model1_null is Model 1 trained again in other floating-point rounding (rescale_loss: the same run in exact
arithmetic): model1_null - model1 is each seed's rerun floor, printed under the summary, below which the
difference between two rows of one seed is what rerunning either would move it.
"""
import argparse
import copy
import csv
import glob
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import time

import torch
from average_checkpoints import average, window_paths

from llvfsr_plugin import options as O
from llvfsr_plugin.cli import int_at_least
from llvfsr_plugin.errors import UserError
from llvfsr_plugin.prep.layout import hr_path, lr_path, prior_path, read_splits, splits_json
from llvfsr_plugin.prep.pipeline import extract_priors, make_image_lmdbs, root_lock
from llvfsr_plugin.priors.cli_args import PRIOR_SIZE, default_extractors
from llvfsr_plugin.priors.contract import PAPER_PRIORS as ALL
from llvfsr_plugin.priors.extractors import build_extractor
from llvfsr_plugin.priors.store import PriorStore, Writer
from llvfsr_plugin.report import read_per_image
from llvfsr_plugin.utils.stats import fmt_interval, paired_bootstrap, seed_interval

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECKPOINT_FREQ = 100  # every run saves its weights this often: a stopped run resumes, a window can be averaged


def net(priors, fusion='lvpfb', **kw):
    """The experiment's network size: C=32, L=4 (body 'lr'); the scale is filled in per run."""
    return O.network_opt(priors, None, **dict({'num_feat': 32, 'num_blocks': 4, 'transformer_depth': 2, 'num_heads': 2,
                                                'fusion': fusion, 'upsample': 'pixelshuffle', 'text_dim': 384,
                                                'num_classes': 10}, **kw))


# body 'hourglass' at the experiment's size: L = 7 (x8: 256, 128, 64, neck 32), C = 64 on the neck (8 at 256)
HOURGLASS = {'body': 'hourglass', 'num_blocks': 7, 'num_feat': 64, 'num_heads': 4, 'spatial': 'sft'}
MD = ['mask', 'depth']
LIGHT_TAIL = {'prior_tail': True, 'prior_tail_dim': 8, 'spatial': 'sft'}  # the light SFT prior tail, C/4 map features
ROWS = {  # name: (label, network_g, dataset priors, model_type[, overrides: iters, batch, hr_maps, first_pass,
    #         maps (mask / depth extractor), shuffled, reference, compare, loss_scale (rescale_loss))
    'model1': ('Model 1 (no priors)', net([]), [], 'LLVFSRModel'),
    'model1_null': ('Model 1 again, other rounding (null row)', net([]), [], 'LLVFSRModel', {'loss_scale': 1.5}),
    'llvfsr_lr': ('LLV-FSR, LR priors (mask+depth)', net(MD), MD, 'LLVFSRModel'),
    'llvfsr_sft': ('LLV-FSR, LR priors, SFT SegA/DepA', net(MD, spatial='sft'), MD, 'LLVFSRModel'),
    'llvfsr_sft_sr': ('LLV-FSR, first-pass priors, SFT SegA/DepA', net(MD, spatial='sft'), MD, 'LLVFSRModel',
                      {'first_pass': 'model1', 'compare': 'llvfsr_sft'}),
    'llvfsr_sft_mean': ('LLV-FSR, mean-face maps, SFT SegA/DepA', net(MD, spatial='sft'), MD, 'LLVFSRModel',
                        {'maps': 'mean-face', 'compare': 'llvfsr_sft'}),
    'llvfsr_sft_shuffled': ("LLV-FSR, another face's LR maps, SFT SegA/DepA", net(MD, spatial='sft'), MD,
                            'LLVFSRModel', {'shuffled': True, 'compare': 'llvfsr_sft'}),
    'llvfsr_tail': ('LLV-FSR, LR priors, SFT prior tail', net(MD, prior_tail=True, spatial='sft'), MD, 'LLVFSRModel',
                    {'compare': 'llvfsr_sft'}),
    'llvfsr_tail_light': ('LLV-FSR, LR priors, SFT prior tail, C/4 map features',
                          net(MD, **LIGHT_TAIL), MD, 'LLVFSRModel',
                          {'compare': 'llvfsr_tail'}),
    'llvfsr_tail_light_sr': ('LLV-FSR, first-pass priors, SFT prior tail, C/4 map features',
                             net(MD, **LIGHT_TAIL), MD, 'LLVFSRModel',
                             {'first_pass': 'model1', 'compare': 'llvfsr_tail_light'}),
    'llvfsr_tail_light_lm': ('LLV-FSR, landmark-net priors, SFT prior tail, C/4 map features',
                             net(MD, **LIGHT_TAIL), MD, 'LLVFSRModel',
                             {'maps': 'landmark-net', 'compare': 'llvfsr_tail_light_sr'}),
    'llvfsr_tail_coarse_lm': ('LLV-FSR, landmark-net priors, SFT prior tail, C/4 map features, finest x2 unmodulated',
                              net(MD, prior_tail_skip=1, **LIGHT_TAIL), MD,
                              'LLVFSRModel', {'maps': 'landmark-net', 'compare': 'llvfsr_tail_light_lm'}),
    'llvfsr_sft_lm': ('LLV-FSR, landmark-net priors, SFT SegA/DepA', net(MD, spatial='sft'), MD, 'LLVFSRModel',
                      {'maps': 'landmark-net', 'compare': 'llvfsr_sft'}),
    'llvfsr_tailonly_coarse_lm': ('LLV-FSR, landmark-net priors in the coarse prior tail only, no body fusion',
                                  net(MD, 'none', prior_tail_skip=1, **LIGHT_TAIL), MD,
                                  'LLVFSRModel', {'maps': 'landmark-net', 'compare': 'llvfsr_tail_coarse_lm'}),
    'llvfsr_tailonly_lm': ('LLV-FSR, landmark-net priors in the light prior tail only, no body fusion',
                           net(MD, 'none', **LIGHT_TAIL), MD,
                           'LLVFSRModel', {'maps': 'landmark-net', 'compare': 'llvfsr_tail_light_lm'}),
    'hg_model1': ('Model 1, hourglass', net([], **HOURGLASS), [], 'LLVFSRModel'),
    'llvfsr_hg': ('LLV-FSR, LR priors, hourglass', net(MD, **HOURGLASS), MD, 'LLVFSRModel',
                  {'reference': 'hg_model1'}),
    'llvfsr_oracle': ('LLV-FSR + oracle text', net(ALL), ALL, 'LLVFSRModel'),
    'llvfsr_oracle_ft': ('LLV-FSR + oracle text, CapA film, DesA query', net(ALL, capa='film', desa='query'), ALL,
                         'LLVFSRModel'),
    'model2': ('Model 2 (concat) + oracle text', net(ALL, 'concat'), ALL, 'LLVFSRModel'),
    'edsr': ('EDSR (16x64)', O.baseline_network_opt('EDSR', 8), [], 'SRModel'),  # x8 only
    'llvfsr_swin': ('LLV-FSR, LR priors, Swin block', net(MD, transformer='swin', window_size=8), MD, 'LLVFSRModel'),
    'llvfsr_pre': ('LLV-FSR, LR priors, upsample pre (batch 2, same minutes)', net(MD, upsample='pre'), MD,
                   'LLVFSRModel', {'iters': 115, 'batch': 2}),
    'llvfsr_hrprior': ('LLV-FSR, oracle mask+depth from the HR face', net(MD), MD, 'LLVFSRModel',
                       {'hr_maps': True}),
}


def prep(data_root, out, n_train, n_val, hr_size, scale, prior_size):
    root = os.path.join(out, 'data')
    rows = list(csv.DictReader(open(os.path.join(data_root, 'index.csv'))))
    files = {s: [(r['celebahq_idx'], os.path.join(data_root, r['image'])) for r in rows if r['split'] == s][:n]
             for s, n in (('train', n_train), ('val', n_val))}
    make_image_lmdbs(files, root, [scale], hr_size, wait=True)  # processes sharing --out: the first preps
    text = os.path.join(data_root, 'text')
    extract_priors(root, ['train', 'val'], [scale], default_extractors(text, prior_size=prior_size), text_dir=text,
                   wait=True)
    return root


def link_stores(new_root, links):
    """A root of links to another root's stores, for rows whose maps come from elsewhere: `links(split)` ->
    [(source store, link path)] for train and val; existing links are kept."""
    for split in ('train', 'val'):
        os.makedirs(os.path.join(new_root, split), exist_ok=True)
        for src, dst in links(split):
            if not os.path.exists(dst):
                os.symlink(os.path.abspath(src), dst)


def link_images(root, new_root, scale):
    """A dataset root for maps of its own: its LR and HR stores and splits.json are links to `root`'s."""
    link_stores(new_root, lambda split: [(lr_path(root, split, scale), lr_path(new_root, split, scale)),
                                         (hr_path(root, split), hr_path(new_root, split))])
    if not os.path.exists(splits_json(new_root)):
        os.symlink(os.path.abspath(splits_json(root)), splits_json(new_root))


def prep_hr_priors(root, out, scale, prior_size):
    """Oracle maps for the diagnosis row: the offline mask/depth extractors run on the HR face (the network
    resizes them to its feature grid). A root whose lr_x<s>.lmdb is a link to the HR store."""
    hroot = os.path.join(out, 'data_hrprior')
    link_stores(hroot, lambda split: [(hr_path(root, split), lr_path(hroot, split, scale))])
    extract_priors(hroot, ['train', 'val'], [scale], default_extractors(None, MD, prior_size), wait=True)
    return hroot


def prep_extractor_priors(root, out, scale, prior_size, name):
    """Maps from the mask / depth extractors registered as `name` (row llvfsr_sft_mean: 'mean-face', the same
    template for every face; llvfsr_tail_light_lm: 'landmark-net'): a root whose LR and HR stores link to the
    experiment's. A learned extractor that may have been trained on the experiment's faces is refused."""
    xroot = os.path.join(out, f'data_{name}')
    extractors = {p: build_extractor(p, name, prior_size=prior_size) for p in MD}
    keys = [k for split in read_splits(root).values() for k in split]
    seen = sorted({k for ex in extractors.values() for k in ex.possibly_seen(keys)})
    if seen:
        sys.exit(f'[quality] the {name} extractors may have been trained on {len(seen)} of the experiment\'s faces '
                 f'(e.g. {seen[0]}): retrain them leaving this experiment out (datasets_prep/train_landmark_net.py '
                 f'--exclude-root {root})')
    link_images(root, xroot, scale)
    extract_priors(xroot, ['train', 'val'], [scale], extractors, wait=True)
    return xroot


def prep_shuffled_priors(root, out, scale):
    """Every face gets another face's LR maps, in training and in validation (row llvfsr_sft_shuffled): one fixed
    derangement per split (seeded, the same for mask and depth), records copied as they are (their `source`
    names the face they were drawn from). Does a network gain from what a face's own maps say, or from being
    trained with face-like maps at all?"""
    sroot = os.path.join(out, 'data_shuffled')
    link_images(root, sroot, scale)
    with root_lock(sroot, wait=True):  # processes sharing --out: the first writes
        for split in ('train', 'val'):
            order = sorted(PriorStore(prior_path(root, split, scale, MD[0])).keys())
            random.Random(f'shuffle-{split}').shuffle(order)
            other = {k: order[(i + 1) % len(order)] for i, k in enumerate(order)}  # nobody keeps their own maps
            for prior in MD:
                dst = prior_path(sroot, split, scale, prior)
                if os.path.isdir(dst):
                    continue
                src = PriorStore(prior_path(root, split, scale, prior))
                w = Writer(dst, dict(Writer.given_meta(src.meta), shuffled='another face of the split for every face'))
                w.put_many([(k, src.get_bytes(other[k])) for k in order if not w.has(k)])
                w.finalize(order)
    return sroot


def prep_first_pass_priors(root, out, scale, prior_size, seed):
    """Maps FaceMesh draws from the seed's Model 1 output instead of the bicubic LR face (`first_pass`): a root
    whose LR and HR stores link to the experiment's, with that Model 1's checkpoint copied in (the stores' meta
    names it; a Model 1 trained further later gets a root of its own)."""
    name = run_name('model1', seed)
    record = os.path.join(out, f'{name}_timing.json')
    if not os.path.isfile(record):
        sys.exit(f'[quality] a first-pass row draws its maps through Model 1 of seed {seed}, which is not trained '
                 f'in {out}: put model1 before it in --rows')
    iters = json.load(open(record))['iters']
    froot = os.path.join(out, f'data_firstpass_{name[2:]}_{iters}')
    ckpt = os.path.join(froot, 'first_pass.pth')
    if not os.path.isfile(ckpt):
        os.makedirs(froot, exist_ok=True)
        shutil.copyfile(os.path.join(out, 'experiments', name, 'models', 'net_g_latest.pth'), ckpt + '.part')
        os.replace(ckpt + '.part', ckpt)
    link_images(root, froot, scale)
    extractors = {p: build_extractor(p, 'facemesh', prior_size=prior_size, first_pass=os.path.abspath(ckpt))
                  for p in MD}
    extract_priors(froot, ['train', 'val'], [scale], extractors, wait=True)
    return froot


def dataset(root, split, priors, scale, model_type, hr_size, batch=8, prior_root=None, gt_size=None):
    """A row's dataset option; `prior_root`: the root whose prior stores to read (the HR-maps row); `gt_size`:
    train on random HR crops of that side (maps cropped with them)."""
    baseline = model_type == 'SRModel'
    d = O.dataset_opt(root, split, scale, priors, phase=split, name=f'q_{split}', baseline=baseline, batch_size=batch,
                      workers=1)
    if not baseline and prior_root:
        d['prior_roots'] = O.dataset_opt(prior_root, split, scale, priors)['prior_roots']
    if split == 'train' and (baseline or gt_size):
        d['gt_size'] = gt_size or hr_size  # PairedImageDataset always crops: whole faces unless --gt-size
    return d


def row_extra(row):
    label, net_g, priors, model_type, *extra = ROWS[row]
    return extra[0] if extra else {}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data-root', default=os.path.join(HERE, '..', 'shared', 'data', 'celebahq256'))
    ap.add_argument('--out', default=os.path.join(HERE, 'benchmarks', 'results', 'quality_x8'))
    ap.add_argument('--train', type=int, default=1000)
    ap.add_argument('--val', type=int, default=100)
    ap.add_argument('--hr-size', type=int, default=256)
    ap.add_argument('--scale', type=int, default=8, choices=[8, 16])
    ap.add_argument('--prior-size', type=int, default=PRIOR_SIZE, help='side of the stored mask / depth maps')
    ap.add_argument('--iters', type=int, default=1500)
    ap.add_argument('--batch', type=int, default=8)
    ap.add_argument('--gt-size', type=int, default=None, help='train on random HR crops of this side (default: whole '
                    'faces); validation always on whole faces')
    ap.add_argument('--rows', nargs='+', default=['model1', 'llvfsr_lr', 'llvfsr_oracle'], choices=list(ROWS))
    ap.add_argument('--seeds', type=int, nargs='+', default=[0],
                    help='training seeds; each seed gets its own report, paired against Model 1 of that seed')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--report-metrics', nargs='+', default=None,
                    help="llvfsr-report's --metrics (default: all; e.g. psnr face_psnr when CPU time is short)")
    ap.add_argument('--sensitivity', action='store_true',
                    help='also test every prior row with its own, another face\'s and blank priors '
                    '(benchmarks/prior_sensitivity.py): what the output owes to the priors\' content')
    ap.add_argument('--average-last', type=int_at_least(1), default=1, metavar='K',
                    help='test, report and summarize every row with its weights averaged over its last K checkpoints '
                    '(one every 100 iterations; 1: the last checkpoint alone); outputs named *_avg<K>')
    ap.add_argument('--quick', action='store_true')
    args = ap.parse_args(argv)
    if args.quick:
        args.train, args.val, args.iters = 200, 20, 200
    os.environ.setdefault('GLOG_minloglevel', '2')
    os.makedirs(args.out, exist_ok=True)
    t = time.time()
    root = prep(os.path.abspath(args.data_root), args.out, args.train, args.val, args.hr_size, args.scale,
                args.prior_size)
    timing_path = f'{args.out}/timing.json'
    timing = json.load(open(timing_path)) if os.path.isfile(timing_path) else {}
    timing.setdefault('prep_minutes', (time.time() - t) / 60)
    for seed in args.seeds:
        run_seed(args, root, args.scale, seed)
        json.dump(collect_timing(args.out, timing), open(timing_path, 'w'), indent=1)
    summarize(args.out, sorted({int(k.rsplit('_s', 1)[1]) for k in timing if '_s' in k}),
              weights_tag(args.average_last))


def collect_timing(out, timing):
    """Add to `timing` every finished run of `out`, from the record each run writes when it ends
    (<run>_timing.json, the one source): processes sharing an out directory (one per seed or row) do not drop
    each other's runs from timing.json and the summary."""
    for path in sorted(glob.glob(os.path.join(out, 'q_*_timing.json'))):
        run = json.load(open(path))
        if 'row' in run and 'seed' in run:
            timing[f"{run['row']}_s{run['seed']}"] = run
    return timing


def run_seed(args, root, scale, seed):
    """Train and test every row with one seed; report them (paired against Model 1 when it is a row) in
    <out>/report (seed 0) or <out>/report_s<seed>, together with the rows of this seed that other processes
    finished in the same out directory (finished_elsewhere): a process given some of the rows does not drop the
    others, or Model 1, from the seed's report."""
    methods = []
    for row in args.rows:
        label, net_g, priors, model_type, *_ = ROWS[row]
        extra = row_extra(row)
        iters, batch = extra.get('iters', args.iters), extra.get('batch', args.batch)
        net_g = dict(net_g, **({'scale': scale} if net_g.get('type') == 'LLVFSRArch' else {}))
        if net_g.get('type') == 'LLVFSRArch' and priors:
            net_g['prior_size'] = args.prior_size
        prior_root = root
        if extra.get('hr_maps'):
            prior_root = prep_hr_priors(root, args.out, scale, args.prior_size)
        elif extra.get('first_pass'):
            prior_root = prep_first_pass_priors(root, args.out, scale, args.prior_size, seed)
        elif extra.get('shuffled'):
            prior_root = prep_shuffled_priors(root, args.out, scale)
        elif extra.get('maps'):
            prior_root = prep_extractor_priors(root, args.out, scale, args.prior_size, extra['maps'])
        dsets = {split: dataset(root, split, priors, scale, model_type, args.hr_size, batch, prior_root, args.gt_size)
                 for split in ('train', 'val')}
        name = run_name(row, seed)
        train = O.train_opt(name, {'train': dsets['train']}, net_g, iters, model_type, scale, seed=seed,
                            checkpoint_freq=CHECKPOINT_FREQ)  # a stopped run resumes (--auto_resume below)
        if extra.get('loss_scale'):
            train = rescale_loss(train, extra['loss_scale'])
        test = O.test_opt(train, {'test_1': dsets['val']}, metrics={'psnr': O.PSNR})
        for kind, o in (('train', train), ('test', test)):
            O.dump_yaml(os.path.join(args.out, f'{name}_{kind}.yml'), o)
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
        row_json = os.path.join(args.out, f'{name}_timing.json')
        run = run_record(args.out, name)
        if run.get('iters') != iters:  # not finished earlier (or with other iterations: continue it)
            run = train_and_test(args.out, name, run, env, label=label, row=row, iters=iters, batch=batch,
                                 seed=seed, threads=args.threads)
            json.dump(run, open(row_json, 'w'))
            stale(os.path.join(args.out, f'{name}_sensitivity.json'))  # measured the weights of fewer iterations
        elif args.average_last <= 1 and not os.path.isdir(val_images(args.out, name)):
            retest(args.out, name, test, env)  # finished earlier, its images deleted since
        if args.average_last > 1:  # the test run the report reads: the last checkpoint's or the averaged weights'
            test = evaluate_averaged(args.out, name, test, iters, args.average_last, env)
        tested = test['name']
        sens = os.path.join(args.out, f'{tested}_sensitivity.json')
        if args.sensitivity and priors and net_g.get('type') == 'LLVFSRArch' and not os.path.isfile(sens):
            subprocess.run([sys.executable, os.path.join(HERE, 'benchmarks', 'prior_sensitivity.py'), '-opt',
                            f'{tested}_test.yml', '--ckpt', test['path']['pretrain_network_g'], '--json', sens],
                           cwd=args.out, check=True, env=env, stdout=subprocess.DEVNULL)
        methods += ['--method', f'{label}={val_images(args.out, tested)}']
        cpu = '' if run.get('cpu_minutes') is None else f', {run["cpu_minutes"]:.1f} CPU min'
        print(f'[quality] seed {seed} {label}: {run["train_minutes"]:.1f} wall min{cpu} for {iters} iterations',
              flush=True)
    tag = weights_tag(args.average_last)
    others = finished_elsewhere(args, seed, tag)
    if others:
        print(f'[quality] seed {seed}: the report also holds {", ".join(others)}, finished earlier in {args.out}',
              flush=True)
    for row, images in others.items():
        methods += ['--method', f'{ROWS[row][0]}={images}']
    reference = ['--reference', ROWS['model1'][0]] if 'model1' in args.rows or 'model1' in others else []
    metrics = ['--metrics', *args.report_metrics] if args.report_metrics else []
    subprocess.run([sys.executable, '-m', 'llvfsr_plugin.report', '--hr', hr_path(root, 'val'), '--lr',
                    lr_path(root, 'val', scale), '--scale', str(scale), *methods, *reference, *metrics, '--out',
                    report_dir(args.out, seed, tag)], check=True)


def finished_elsewhere(args, seed, tag):
    """The rows not in args.rows whose run of this seed is finished in args.out with the iterations asked (its
    record <run>_timing.json) and tested with these weights (results/<run><tag>/visualization/q_val): {row: that
    image folder}, in ROWS order."""
    found = {}
    for row in ROWS:
        images = val_images(args.out, run_name(row, seed) + tag)
        if row in args.rows or not os.path.isdir(images):
            continue
        if run_record(args.out, run_name(row, seed)).get('iters') == row_extra(row).get('iters', args.iters):
            found[row] = images
    return found


def run_record(out, name):
    """Run `name`'s record in `out` (<name>_timing.json, written when its training and test finished), {} if none."""
    path = os.path.join(out, f'{name}_timing.json')
    return json.load(open(path)) if os.path.isfile(path) else {}


def val_images(out, tested):
    """The val images of test run `tested` (a run name, with weights_tag for averaged weights): what the report
    reads."""
    return f'{out}/results/{tested}/visualization/q_val'


def weights_tag(k):
    """The suffix of the test runs, reports and summary of weights averaged over the last `k` checkpoints ('' for
    the last checkpoint alone)."""
    return f'_avg{k}' if k > 1 else ''


def stale(path):
    """Remove a result measured on weights that have since changed (it is measured again)."""
    if os.path.isfile(path):
        os.remove(path)


def evaluate_averaged(out, name, test, iters, k, env):
    """Test run `name` with its weights averaged over its last `k` checkpoints (iterations iters - 100 (k - 1) ..
    iters, benchmarks/average_checkpoints.py) as test run <name>_avg<k>: the averaged checkpoint in the run's
    models folder (net_g_avg_<first>_<last>.pth), its option file <name>_avg<k>_test.yml, images in
    results/<name>_avg<k>; <name>_avg<k>.json records the window once the test has passed, and a window already
    tested is not tested again.

    Args:
        out (str): the experiment's out directory.
        name (str): the trained run (run_name).
        test (dict): the run's `basicsr test` option dict (its last checkpoint's).
        iters (int): the run's iterations (the window's last checkpoint).
        k (int): how many checkpoints to average (2 or more).
        env (dict): the test process's environment.
    Returns:
        dict: the averaged weights' `basicsr test` option dict (name <name>_avg<k>).
    """
    window = {'first': iters - CHECKPOINT_FREQ * (k - 1), 'last': iters, 'every': CHECKPOINT_FREQ, 'checkpoints': k}
    models = os.path.join('experiments', name, 'models')
    ckpt = os.path.join(models, f"net_g_avg_{window['first']}_{iters}.pth")
    tested = dict(test, name=name + weights_tag(k), path=dict(test['path'], pretrain_network_g=ckpt))
    record = os.path.join(out, f"{tested['name']}.json")
    if os.path.isfile(record) and json.load(open(record)) == window:
        return tested
    stale(record)
    stale(os.path.join(out, f"{tested['name']}_sensitivity.json"))
    try:
        paths = window_paths(os.path.join(out, models), window['first'], iters, CHECKPOINT_FREQ)
    except UserError as e:
        sys.exit(f'[quality] --average-last {k}, run {name}: {e}')
    torch.save(average(paths), os.path.join(out, ckpt))
    O.dump_yaml(os.path.join(out, f"{tested['name']}_test.yml"), tested)
    subprocess.run([sys.executable, '-m', 'llvfsr_plugin', 'test', '-opt', f"{tested['name']}_test.yml"], cwd=out,
                   check=True, env=env, stdout=subprocess.DEVNULL)
    json.dump(window, open(record, 'w'))
    return tested


def rescale_loss(train, k):
    """The same training in other rounding: the pixel loss and Adam's eps times `k`. Adam's step
    m / (sqrt(v) + eps) is then unchanged in exact arithmetic (m, sqrt(v) and eps all scale by k), so the run
    has the same initialisation, data, crops and updates as the unscaled one, and differs from it only by
    floating-point rounding, which training amplifies, as it does between machines. Its difference from
    the unscaled row (the null row, model1_null - model1) is what a rerun moves a row: the floor under which
    differences between the rows of one seed say nothing.

    Args:
        train (dict): a `basicsr train` option dict (options.train_opt).
        k (float): the factor; not a power of 2 (those scale exactly, giving the same run bit for bit).

    Returns:
        dict: a copy of `train` with train.pixel_opt.loss_weight and train.optim_g.eps times k.
    """
    t = copy.deepcopy(train)
    t['train']['pixel_opt']['loss_weight'] *= k
    t['train']['optim_g']['eps'] *= k
    return t


def train_and_test(out, name, record, env, **fields):
    """Train run `name` of `out` to fields['iters'] (resuming its latest checkpoint when it has one) and test it.

    Args:
        out (str): the experiment's out directory (holds <name>_train.yml and <name>_test.yml).
        name (str): the run's name (run_name).
        record (dict): the run's earlier record ({} if none): a finished shorter run that this call continues
            adds its minutes to this call's.
        env (dict): the environment of the train and test processes (OMP_NUM_THREADS).
        **fields: the record's own fields (label, row, iters, batch, seed, threads).

    Returns:
        dict: the run's record: fields, `train_minutes` (wall) and `cpu_minutes` (the training process's user +
        system CPU time, which a busy machine does not inflate, unlike wall minutes), both summed over the
        continuations of the run (`continued_from`: the iterations of the record it continued; a run stopped
        mid-way loses the minutes of the stopped part, and continuing a record without CPU minutes gives None).
    """
    wall, cpu = time.time(), children_cpu_seconds()
    resume = ['--auto_resume'] if os.path.isdir(os.path.join(out, 'experiments', name)) else []
    subprocess.run([sys.executable, '-m', 'llvfsr_plugin', 'train', '-opt', f'{name}_train.yml', *resume],
                   cwd=out, check=True, env=env, stdout=subprocess.DEVNULL)
    wall, cpu = (time.time() - wall) / 60, (children_cpu_seconds() - cpu) / 60
    before = record if record.get('iters', fields['iters']) < fields['iters'] else {}
    cpu_before = before.get('cpu_minutes') if before else 0  # None: the continued record did not measure it
    run = dict(fields, train_minutes=before.get('train_minutes', 0) + wall,
               cpu_minutes=None if cpu_before is None else cpu_before + cpu)
    if before:
        run['continued_from'] = before['iters']
    basicsr_test(out, name, env)
    return run


def basicsr_test(out, name, env):
    """Test run `name` of `out` with its <name>_test.yml (images in results/<name>)."""
    subprocess.run([sys.executable, '-m', 'llvfsr_plugin', 'test', '-opt', f'{name}_test.yml'], cwd=out,
                   check=True, env=env, stdout=subprocess.DEVNULL)


def retest(out, name, test, env):
    """Test again a run whose record says it finished but whose val images are gone (results/ deleted): from its
    weights, or stop with what to do when they are gone too."""
    ckpt = os.path.join(out, test['path']['pretrain_network_g'])
    if not os.path.isfile(ckpt):
        sys.exit(f'[quality] {name}: {os.path.join(out, name)}_timing.json records a finished run, but its test '
                 f'images ({val_images(out, name)}) and weights ({ckpt}) are gone: delete that record to train the '
                 'run again')
    print(f'[quality] {name}: finished earlier, its test images are gone: testing {ckpt} again', flush=True)
    basicsr_test(out, name, env)


def children_cpu_seconds():
    """User + system CPU seconds of this process's finished child processes."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_name(row, seed):
    """A row's run name under one seed (seed 0 keeps the names of earlier results)."""
    return f'q_{row}' + (f'_s{seed}' if seed else '')


def report_dir(out, seed, tag=''):
    """A seed's report folder; `tag`: weights_tag of the weights its rows were tested with."""
    return f'{out}/report{tag}' + (f'_s{seed}' if seed else '')


def per_face(out, seed, tag=''):
    """{method label: {metric: [per-face scores]}} of a seed's report (faces in the report's order)."""
    scores = {}
    for method, faces in read_per_image(os.path.join(report_dir(out, seed, tag), 'per_image.csv')).items():
        for face in faces.values():
            for m, v in face.items():
                scores.setdefault(method, {}).setdefault(m, []).append(v)
    return scores


def finished_scores(out, row, seed, iters, read=read_per_image):
    """{face key: {metric: score}} of `row`'s run of `seed` in `out`, from the seed's report; None where that run
    is not finished there with `iters` (its record). `read`: the per_image.csv reader (a results script passes a
    cached one)."""
    if run_record(out, run_name(row, seed)).get('iters') != iters:
        return None
    return read(os.path.join(report_dir(out, seed), 'per_image.csv'))[ROWS[row][0]]


SUMMARY_METRICS = ('psnr', 'face_psnr', 'ssim', 'lpips', 'id_dist')


def summarize(out, seeds, tag=''):
    """summary.json / summary.md: per seed, every prior row minus Model 1 of its geometry (its `reference`,
    default 'model1'), every row minus today's Model 1, every prior row minus today's default (llvfsr_lr) and
    minus the row it varies (its `compare`), per face with 95 % bootstrap intervals; only pairs whose rows both
    have a report in that seed. `tag` (weights_tag): the reports and summary of averaged weights
    (summary_avg<K>.md from report_avg<K>[_s<seed>])."""
    result, lines = {}, ['| seed | row | minus | ' + ' | '.join(f'{m} (95 % CI)' for m in SUMMARY_METRICS) + ' |',
                         '|' + '---|' * (3 + len(SUMMARY_METRICS))]
    for seed in seeds:
        if not os.path.isfile(os.path.join(report_dir(out, seed, tag), 'per_image.csv')):
            continue
        scores = per_face(out, seed, tag)
        for row in ROWS:
            a = scores.get(ROWS[row][0])
            if a is None:
                continue
            refs = {row_extra(row).get('reference', 'model1')} if ROWS[row][2] else set()
            refs |= {'model1'} if row != 'model1' else set()  # the geometry alone (hg_model1) against today's
            refs |= {'llvfsr_lr'} if ROWS[row][2] and row != 'llvfsr_lr' else set()
            refs |= {row_extra(row)['compare']} if 'compare' in row_extra(row) else set()  # the row it varies
            for ref in sorted(refs):
                b = scores.get(ROWS[ref][0])
                if b is None:
                    continue
                d = {m: paired_bootstrap(a[m], b[m]) for m in SUMMARY_METRICS if m in a and m in b}
                result.setdefault(str(seed), {}).setdefault(row, {})[ref] = d
                lines.append(f'| {seed} | {row} | {ref} | ' + ' | '.join(
                    fmt_interval(d[m]) if m in d else 'n/a'
                    for m in SUMMARY_METRICS) + ' |')
    over, use = over_seeds(result), prior_use(out, seeds, tag)
    if over:
        plot_seeds(result, over, os.path.join(out, f'seeds{tag}.png'))
    json.dump(dict(result, **({'over_seeds': over} if over else {}), **({'prior_use': use} if use else {})),
              open(os.path.join(out, f'summary{tag}.json'), 'w'), indent=1)
    with open(os.path.join(out, f'summary{tag}.md'), 'w') as f:
        f.write('Paired per-face differences (row minus reference), mean [95 % bootstrap interval over faces].\n\n'
                + '\n'.join(lines) + '\n')
        floor = rerun_floor_md(result)
        if floor:
            f.write('\n' + floor + '\n')
        if over:
            f.write('\n' + over_seeds_md(over) + f'\n\n![per seed](seeds{tag}.png)\n')
        if use:
            f.write('\n' + prior_use_md(use) + '\n')
    print('\n'.join(lines))


def rerun_floor_md(result):
    """The null row's line of summary.md ('' without model1_null): per seed, model1_null - model1 in PSNR and
    face PSNR with its interval over faces: the size of the difference a rerun of one row makes."""
    seeds = {seed: rows['model1_null']['model1'] for seed, rows in result.items()
             if 'model1' in rows.get('model1_null', {})}
    if not seeds:
        return ''
    per_seed = '; '.join(f'seed {seed}: ' + ', '.join(f'{m} {fmt_interval(d[m])}'
                                                       for m in ('psnr', 'face_psnr') if m in d)
                         for seed, d in sorted(seeds.items()))
    return (f'Rerun floor (model1_null - model1, the same training in other rounding): {per_seed}. Two rows of one '
            'seed closer than this are not told apart by one run of each.')


def plot_seeds(result, over, path):
    """seeds.png: for each pair measured in two seeds or more, every seed's mean difference in PSNR and face
    PSNR with its 95 % interval over faces (the bars), so the spread between seeds is seen next to the
    intervals that hold the run fixed, and (black) their mean with its 95 % t interval over seeds."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    pairs = [(row, ref) for row, refs in over.items() for ref in refs]
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.6 * len(pairs) + 2), sharey=True)
    for ax, m in zip(axes, ('psnr', 'face_psnr')):
        for y, (row, ref) in enumerate(pairs):
            for seed, rows in sorted(result.items()):
                d = rows.get(row, {}).get(ref, {}).get(m)
                if d:
                    yy = y + 0.12 * (int(seed) - 1)
                    ax.errorbar(d['mean'], yy, xerr=[[d['mean'] - d['lo']], [d['hi'] - d['mean']]], fmt='o',
                                color=f'C{int(seed)}', label=f'seed {seed}' if y == 0 else None, capsize=3)
            o = over[row][ref].get(m)
            if o:
                ax.errorbar(o['mean'], y + 0.36, xerr=[[o['mean'] - o['seed_lo']], [o['seed_hi'] - o['mean']]],
                            fmt='D', color='k', capsize=3, label='mean, t interval over seeds' if y == 0 else None)
        ax.axvline(0, color='grey', lw=0.8)
        ax.set_xlabel(f'{m} difference (dB)')
        ax.set_yticks(range(len(pairs)), [f'{row} - {ref}' for row, ref in pairs])
    axes[0].legend(loc='best', fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


USE_CONDITIONS = ('blank priors', "another face's priors")


def prior_use(out, seeds, tag=''):
    """{seed: {row: {condition: own priors minus it (PSNR, per face, 95 % CI)}}} from the rows'
    <name><tag>_sensitivity.json (--sensitivity; `tag`: weights_tag)."""
    use = {}
    for seed in seeds:
        for row in ROWS:
            path = os.path.join(out, f'{run_name(row, seed)}{tag}_sensitivity.json')
            if os.path.isfile(path):
                d = json.load(open(path)).get('own_minus', {})
                use.setdefault(str(seed), {})[row] = {c: d[c] for c in USE_CONDITIONS if c in d}
    return use


def prior_use_md(use):
    lines = ['Prior use: PSNR with its own priors minus PSNR with blank priors / with another face\'s priors, '
             'per face [95 % CI]; near 0: the output does not depend on what the priors say.', '',
             '| seed | row | ' + ' | '.join(f'own - {c}' for c in USE_CONDITIONS) + ' |', '|---|---|---|---|']
    for seed, rows in use.items():
        for row, d in rows.items():
            lines.append(f'| {seed} | {row} | ' + ' | '.join(
                fmt_interval(d[c], 4) if c in d else 'n/a'
                for c in USE_CONDITIONS) + ' |')
    return '\n'.join(lines)


def over_seeds(result):
    """{row: {ref: {metric: ...}}} for the pairs measured in two seeds or more: the mean over seeds of the
    per-seed mean differences with its 95 % Student-t interval over seeds (seed_lo, seed_hi; sd), the lowest
    and highest seed, and in how many seeds the per-face interval lies above (below) 0. The per-face intervals
    hold the training run fixed; the interval over seeds carries what retraining moves."""
    pairs = {}
    for seed, rows in result.items():
        for row, refs in rows.items():
            for ref, d in refs.items():
                pairs.setdefault((row, ref), {})[seed] = d
    out = {}
    for (row, ref), by_seed in pairs.items():
        if len(by_seed) < 2:
            continue
        for m in SUMMARY_METRICS:
            ds = [d[m] for d in by_seed.values() if m in d]
            if len(ds) < 2:
                continue
            means = [d['mean'] for d in ds]
            t = seed_interval(means)
            out.setdefault(row, {}).setdefault(ref, {})[m] = {
                'seeds': len(ds), 'mean': t['mean'], 'min': min(means), 'max': max(means), 'sd': t['sd'],
                'seed_lo': t['lo'], 'seed_hi': t['hi'],
                'above_0': sum(d['lo'] > 0 for d in ds), 'below_0': sum(d['hi'] < 0 for d in ds)}
    return out


def over_seeds_md(over):
    lines = ['Over seeds: mean of the per-seed differences (95 % t interval over seeds) [lowest, highest seed]; '
             'seeds whose per-face interval lies above 0 / below 0.', '',
             '| row | minus | seeds | ' + ' | '.join(SUMMARY_METRICS) + ' |',
             '|' + '---|' * (3 + len(SUMMARY_METRICS))]
    for row, refs in over.items():
        for ref, d in refs.items():
            n = max(v['seeds'] for v in d.values())
            lines.append(f'| {row} | {ref} | {n} | ' + ' | '.join(
                f"{d[m]['mean']:+.3f} ({d[m]['seed_lo']:+.3f}, {d[m]['seed_hi']:+.3f}) [{d[m]['min']:+.3f}, "
                f"{d[m]['max']:+.3f}] {d[m]['above_0']}/{d[m]['below_0']}"
                if m in d else 'n/a' for m in SUMMARY_METRICS) + ' |')
    return '\n'.join(lines)


if __name__ == '__main__':
    main()
