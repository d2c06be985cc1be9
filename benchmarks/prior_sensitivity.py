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
"""
import argparse
import json

import torch
import yaml
from tqdm import tqdm

import llvfsr_plugin  # noqa: F401
from basicsr.archs import build_network
from basicsr.metrics import calculate_psnr
from basicsr.utils import tensor2img
from llvfsr_plugin.data.prior_paired_dataset import PriorPairedDataset
from llvfsr_plugin.priors.contract import batch_keys, collate
from llvfsr_plugin.utils.checkpoint import load_network_params
from llvfsr_plugin.utils.stats import paired_bootstrap


def blank(priors, only=None):
    """Zero every prior tensor (or those of prior `only`), keeping text token masks."""
    out = {}
    for k, v in priors.items():
        hit = only is None or k == only or k.startswith(only + '_')
        out[k] = v if k.endswith('_token_mask') or not hit else torch.zeros_like(v)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('-opt', required=True, help='a test option file of an LLVFSRArch with priors')
    ap.add_argument('--ckpt', required=True)
    ap.add_argument('--limit', type=int, default=0, help='first N faces (0: all)')
    ap.add_argument('--json', default=None)
    args = ap.parse_args(argv)
    opt = yaml.safe_load(open(args.opt))
    names = list(opt['network_g'].get('priors') or [])
    if not names:
        raise SystemExit(f'{args.opt}: network_g has no priors; nothing to test')
    dopt = dict(next(iter(opt['datasets'].values())), phase='val', scale=opt['scale'])
    ds = PriorPairedDataset(dopt)
    net = load_network_params(build_network(dict(opt['network_g'])), args.ckpt).eval()
    keys = batch_keys(names)
    n = len(ds) if not args.limit else min(args.limit, len(ds))
    items = [ds[i] for i in range(n)]
    conds = ['own priors', "another face's priors", 'blank priors'] + ([f'blank {p} only' for p in names]
                                                                       if len(names) > 1 else [])
    psnr = {c: [] for c in conds}
    with torch.no_grad():
        for i, it in enumerate(tqdm(items, desc='faces', unit='face')):
            other = items[(i + 1) % n]
            gt = tensor2img(it['gt'])
            own = {k: it[k] for k in keys}
            variants = {'own priors': own, "another face's priors": {k: other[k] for k in keys},
                        'blank priors': blank(own)}
            variants.update({f'blank {p} only': blank(own, p) for p in names if len(names) > 1})
            for cond, pri in variants.items():
                b = collate([dict(pri, lq=it['lq'])])
                sr = net(b.pop('lq'), b)
                psnr[cond].append(calculate_psnr(tensor2img(sr), gt, crop_border=0, test_y_channel=True))
    res = {c: sum(v) / len(v) for c, v in psnr.items()}
    own_minus = {c: paired_bootstrap(psnr['own priors'], v) for c, v in psnr.items() if c != 'own priors'}
    print(f'{n} faces, network priors {names}')
    print('| priors at test time | PSNR (dB) | own priors minus this (95 % CI) |')
    print('|---|---|---|')
    for c, v in res.items():
        d = own_minus.get(c)
        print(f'| {c} | {v:.3f} | ' + (f"{d['mean']:+.4f} [{d['lo']:+.4f}, {d['hi']:+.4f}]" if d else '') + ' |')
    if args.json:
        json.dump({'faces': n, 'priors': names, 'psnr': res, 'own_minus': own_minus, 'per_face_psnr': psnr},
                  open(args.json, 'w'), indent=1)


if __name__ == '__main__':
    main()
