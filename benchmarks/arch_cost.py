#!/usr/bin/env python
"""Parameters, FLOPs (torch.utils.flop_counter: every matmul/conv/attention counted) and CPU forward time
of the LLV-FSR variants, for the README table.

  python benchmarks/arch_cost.py [--threads 2] [--repeats 5] [--json out.json]
"""
import argparse
import json
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

import llvfsr_plugin  # noqa: F401
from basicsr.archs import build_network
from llvfsr_plugin.priors.contract import fake_priors

VARIANTS = [  # (row name, network options)
    ('LLV-FSR x8 (default)', dict(scale=8)),
    ('LLV-FSR x16 (default)', dict(scale=16)),
    ("LLV-FSR x8, SegA/DepA 'sft' (the released models' variant)", dict(scale=8, spatial='sft')),
    ('Model 1 x8 (no priors)', dict(scale=8, priors=[])),
    ('Model 2 x8 (concat fusion)', dict(scale=8, fusion='concat')),
    ("LLV-FSR x8, upsample 'pre'", dict(scale=8, upsample='pre')),
    ("LLV-FSR x8, transformer 'swin' (8x8 windows)", dict(scale=8, transformer='swin')),
    ("LLV-FSR x8, body 'hourglass' (C=64 on the neck, SFT)", dict(scale=8, body='hourglass', spatial='sft')),
    ("LLV-FSR x16, body 'hourglass'", dict(scale=16, body='hourglass', spatial='sft')),
    ("LLV-FSR x8, prior_tail (SFT at 64, 128, 256)", dict(scale=8, prior_tail=True, spatial='sft')),
    ("LLV-FSR x8, prior_tail, prior_tail_dim 16 (C/4)",
     dict(scale=8, prior_tail=True, prior_tail_dim=16, spatial='sft')),
    ("LLV-FSR x8, prior_tail at 64, 128 (prior_tail_skip 1), prior_tail_dim 16",
     dict(scale=8, prior_tail=True, prior_tail_dim=16, prior_tail_skip=1, spatial='sft')),
    ("Model 1 x8 + that prior tail (fusion none: mask and depth in the tail only)",
     dict(scale=8, priors=['mask', 'depth'], fusion='none', prior_tail=True, prior_tail_dim=16, prior_tail_skip=1,
          spatial='sft')),
    ("Model 1 x8, body 'hourglass'", dict(scale=8, body='hourglass', priors=[])),
]


def bench_priors(b):
    """Prior tensors at the sizes of the offline defaults: a one-line caption, a ten-line description,
    128 x 128 maps (`--prior-size`)."""
    return fake_priors(b, text_len={'caption': 20, 'description': 128}, size=128)


def measure(opts, repeats=5, hr=256):
    net = build_network(dict(type='LLVFSRArch', **opts)).eval()
    lq = torch.rand(1, 3, hr // opts['scale'], hr // opts['scale'])
    pri = bench_priors(1)
    params = sum(p.numel() for p in net.parameters())
    with torch.no_grad():
        fc = FlopCounterMode(display=False)
        with fc:
            net(lq, pri)
        flops = fc.get_total_flops()
        net(lq, pri)  # warm-up
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            net(lq, pri)
            times.append(time.perf_counter() - t)
    return {'params_M': params / 1e6, 'GFLOPs': flops / 1e9, 'cpu_ms': 1000 * sorted(times)[len(times) // 2]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--repeats', type=int, default=5)
    ap.add_argument('--json', default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    print(f'| network | params (M) | GFLOPs / face | CPU forward, 1 face, {args.threads} threads (ms) |')
    print('|---|---|---|---|')
    for name, opts in VARIANTS:
        r = measure(opts, args.repeats if opts.get('upsample') != 'pre' else 1)
        rows.append(dict(name=name, **opts, **r))
        print(f"| {name} | {r['params_M']:.2f} | {r['GFLOPs']:.2f} | {r['cpu_ms']:.0f} |", flush=True)
    if args.json:
        json.dump(rows, open(args.json, 'w'), indent=1)


if __name__ == '__main__':
    main()
