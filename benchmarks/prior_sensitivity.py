#!/usr/bin/env python
"""Does a trained LLV-FSR use its priors? PSNR on a test set with each face's own priors, with another
face's priors (shuffled: plausible but wrong), with blank priors (mask all background, depth 0, text
tokens 0), and with one prior blanked at a time. A network that ignores its priors scores the same in
every row.

  python benchmarks/prior_sensitivity.py -opt benchmarks/results/quality_x8/q_llvfsr_lr_test.yml \
      --ckpt experiments/q_llvfsr_lr/models/net_g_latest.pth [--limit 100]

Uses the option file's network_g and first test dataset (a PriorPairedDataset); PSNR as in the tables
(Y channel, no border crop). --json also holds every condition's per-face PSNR and, for each, own priors
minus it per face with a 95 % bootstrap interval (`own_minus`): how much the network's output owes to the
content of its priors, apart from the layers that fuse them.

--redraw adds two conditions for the map priors, drawn at test time by the extractors the stores were made with
(their meta; a first pass left out, the image is given): from the network's own output with its own priors (a
second pass) and from the HR face (an oracle: what better maps would be worth to this network). --face-psnr
scores every condition in the face region as well (`calculate_face_psnr`).
"""
import argparse
import json

import numpy as np
import torch
import yaml
from tqdm import tqdm

import llvfsr_plugin  # noqa: F401
from basicsr.archs import build_network
from basicsr.metrics import calculate_psnr
from basicsr.utils import tensor2img
from llvfsr_plugin.data.prior_paired_dataset import PriorPairedDataset
from llvfsr_plugin.metrics.face_metric import calculate_face_psnr
from llvfsr_plugin.priors.contract import PRIORS, batch_keys, collate
from llvfsr_plugin.priors.extractors import build_extractor
from llvfsr_plugin.restorer import extractor_options, map_tensors
from llvfsr_plugin.utils.checkpoint import load_network_params
from llvfsr_plugin.utils.stats import fmt_interval, paired_bootstrap


def blank(priors, only=None):
    """Zero every prior tensor (or those of prior `only`), keeping text token masks."""
    out = {}
    for k, v in priors.items():
        hit = only is None or k == only or k.startswith(only + '_')
        out[k] = v if k.endswith('_token_mask') or not hit else torch.zeros_like(v)
    return out


class MapRedrawer:
    """The map extractors a dataset's stores were made with (their meta), reading a given image instead of the
    LR face (no first pass): `redraw(img_bgr)` -> the map priors' tensors for that image."""

    def __init__(self, ds):
        self.extractors = {}
        for p in ds.maps:
            meta = dict(ds.stores[p].meta)
            meta.pop('first_pass', None)
            name = meta['extractor']
            self.extractors[p] = build_extractor(p, name, **extractor_options(p, name, meta))

    def __call__(self, img_bgr, key='redraw'):
        return map_tensors(self.extractors, np.ascontiguousarray(img_bgr[..., ::-1]), key)[0]


def ci_cell(d):
    return fmt_interval(d, 4) if d else ''


def own_minus_others(per_face):
    """{condition: per-face scores} -> {condition: own priors minus it, paired bootstrap} for the other conditions."""
    return {c: paired_bootstrap(per_face['own priors'], v) for c, v in per_face.items() if c != 'own priors'}


REDRAWN = ('maps redrawn from its own output', 'maps from the HR face (oracle)')


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('-opt', required=True, help='a test option file of an LLVFSRArch with priors')
    ap.add_argument('--ckpt', required=True)
    ap.add_argument('--limit', type=int, default=0, help='first N faces (0: all)')
    ap.add_argument('--redraw', action='store_true', help='also maps redrawn from the output and from the HR face')
    ap.add_argument('--face-psnr', action='store_true', help='also face-region PSNR per condition')
    ap.add_argument('--json', default=None)
    args = ap.parse_args(argv)
    opt = yaml.safe_load(open(args.opt))
    names = list(opt['network_g'].get('priors') or [])
    if not names:
        raise SystemExit(f'{args.opt}: network_g has no priors; nothing to test')
    if args.redraw and not any(PRIORS[p].kind == 'map' for p in names):
        raise SystemExit(f'{args.opt}: --redraw redraws maps, and network_g takes none (priors {names})')
    dopt = dict(next(iter(opt['datasets'].values())), phase='val', scale=opt['scale'])
    ds = PriorPairedDataset(dopt)
    net = load_network_params(build_network(dict(opt['network_g'])), args.ckpt).eval()
    redraw = MapRedrawer(ds) if args.redraw else None
    keys = batch_keys(names)
    n = len(ds) if not args.limit else min(args.limit, len(ds))
    items = [ds[i] for i in range(n)]
    conds = ['own priors', "another face's priors", 'blank priors'] + ([f'blank {p} only' for p in names]
                                                                       if len(names) > 1 else [])
    conds += list(REDRAWN) if redraw else []
    metrics = {'psnr': lambda sr, gt: calculate_psnr(sr, gt, crop_border=0, test_y_channel=True)}
    if args.face_psnr:
        metrics['face_psnr'] = calculate_face_psnr
    scores = {m: {c: [] for c in conds} for m in metrics}
    with torch.no_grad():
        for i, it in enumerate(tqdm(items, desc='faces', unit='face')):
            other = items[(i + 1) % n]
            gt = tensor2img(it['gt'])
            own = {k: it[k] for k in keys}

            def sr_of(pri):
                b = collate([dict(pri, lq=it['lq'])])
                return tensor2img(net(b.pop('lq'), b))

            srs = {'own priors': sr_of(own)}
            variants = {"another face's priors": {k: other[k] for k in keys}, 'blank priors': blank(own)}
            variants.update({f'blank {p} only': blank(own, p) for p in names if len(names) > 1})
            if redraw:
                variants[REDRAWN[0]] = dict(own, **redraw(srs['own priors'], f'{it["key"]}/output'))
                variants[REDRAWN[1]] = dict(own, **redraw(gt, f'{it["key"]}/hr'))
            srs.update({cond: sr_of(pri) for cond, pri in variants.items()})
            for m, fn in metrics.items():
                for cond in conds:
                    scores[m][cond].append(fn(srs[cond], gt))
    psnr = scores['psnr']
    res = {c: sum(v) / len(v) for c, v in psnr.items()}
    own_minus = own_minus_others(psnr)
    face = scores.get('face_psnr')
    own_minus_face = own_minus_others(face) if face else None
    print(f'{n} faces, network priors {names}')
    print('| priors at test time | PSNR (dB) | own priors minus this (95 % CI) |' + (
        ' face PSNR (dB) | own priors minus this (95 % CI) |' if face else ''))
    print('|---|---|---|' + ('---|---|' if face else ''))
    for c, v in res.items():
        line = f'| {c} | {v:.3f} | {ci_cell(own_minus.get(c))} |'
        if face:
            line += f' {sum(face[c]) / n:.3f} | {ci_cell(own_minus_face.get(c))} |'
        print(line)
    if args.json:
        out = {'faces': n, 'priors': names, 'psnr': res, 'own_minus': own_minus, 'per_face_psnr': psnr,
               'keys': [it['key'] for it in items]}
        if face:
            out.update(face_psnr={c: sum(v) / n for c, v in face.items()}, own_minus_face=own_minus_face,
                       per_face_face_psnr=face)
        if redraw:
            out['redraw_extractors'] = {p: ex.meta() for p, ex in redraw.extractors.items()}
        json.dump(out, open(args.json, 'w'), indent=1)


if __name__ == '__main__':
    main()
