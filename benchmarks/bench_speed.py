#!/usr/bin/env python
"""Speed and memory of LLV-FSR and baselines, in one process with one setting (results: markdown + JSON).

  python benchmarks/bench_speed.py --quick            # about 7 min on 2 cores: x8 only, fewer repeats
  python benchmarks/bench_speed.py --json bench.json  # the full run (x8 and x16)

Measures, per network: params, FLOPs (torch.utils.flop_counter), forward ms/face at batch 1 and 16,
train-step ms at batch 8 (L1 + Adam), peak RSS growth; ratios against the first row; LLV-FSR's achieved
GFLOP/s next to this machine's fp32 matmul GFLOP/s; channels_last / bf16 / torch.compile variants of the
LLV-FSR forward; PriorPairedDataset samples/s with 0/1/2 workers vs the train step; end-to-end inference
ms/face (offline priors + network), and of the released x8 model with maps from the LR face vs from a first SR
pass through the released Model 1 (`first_pass=`). Times are the minimum over the repeats (as Python's `timeit` advises:
on a shared VM the spread is other tenants' noise, not the code's).
"""
import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import torch

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(HERE, 'benchmarks'))

import llvfsr_plugin  # noqa: E402,F401
from basicsr.archs import build_network  # noqa: E402
from llvfsr_plugin import options as O  # noqa: E402
from llvfsr_plugin import training  # noqa: E402
from llvfsr_plugin.prep.images import decode_png  # noqa: E402
from llvfsr_plugin.priors.contract import PAPER_PRIORS, collate, to_tensors  # noqa: E402
from llvfsr_plugin.priors.extractors import Sample  # noqa: E402
from llvfsr_plugin.priors.store import Store  # noqa: E402

from arch_cost import bench_priors  # noqa: E402


def nets(scale):
    yield 'LLV-FSR (default)', dict(type='LLVFSRArch', scale=scale), True
    yield 'Model 1 (no priors)', dict(type='LLVFSRArch', scale=scale, priors=[]), False
    yield 'Model 2 (concat)', dict(type='LLVFSRArch', scale=scale, fusion='concat'), True
    yield 'LLV-FSR, SFT SegA/DepA (chosen)', dict(type='LLVFSRArch', scale=scale, spatial='sft'), True
    yield 'LLV-FSR, hourglass', dict(type='LLVFSRArch', scale=scale, body='hourglass', spatial='sft'), True
    yield 'LLV-FSR, LR body + prior tail', dict(type='LLVFSRArch', scale=scale, prior_tail=True, spatial='sft'), True
    yield 'LLV-FSR, LR body + prior tail, C/4 map features', dict(type='LLVFSRArch', scale=scale, prior_tail=True,
                                                                  prior_tail_dim=16, spatial='sft'), True
    yield 'LLV-FSR, LR body + prior tail, C/4, finest x2 unmodulated', dict(
        type='LLVFSRArch', scale=scale, prior_tail=True, prior_tail_dim=16, prior_tail_skip=1, spatial='sft'), True
    yield 'EDSR (16 blocks, 64 ch)', O.baseline_network_opt('EDSR', scale), False
    yield 'RCAN (10x20, 64 ch)', O.baseline_network_opt('RCAN', scale), False
    yield 'SwinIR (4x6, 60 ch)', O.baseline_network_opt('SwinIR', scale), False


def timeit(fn, repeats, warmup=1):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return min(ts)


def _proc_status_mb(field):
    for ln in open('/proc/self/status'):
        if ln.startswith(field + ':'):
            return int(ln.split()[1]) / 1024
    return float('nan')


def train_peak_mb(opt, with_priors, scale):
    """Peak RSS growth (MB) of two train steps (batch 8, Adam) in a fresh process: in a shared process the
    allocator keeps earlier rows' freed pages resident and later rows would look free."""
    out = subprocess.run([sys.executable, os.path.abspath(__file__), '--_train-peak',
                          json.dumps([opt, with_priors, scale])], capture_output=True, text=True,
                         env=dict(os.environ, OMP_NUM_THREADS=str(torch.get_num_threads())))
    if out.returncode:
        return float('nan')
    return float(out.stdout.strip().splitlines()[-1])


def train_step(net, with_priors, scale):
    """One L1 + Adam step at batch 8 (the paper's optimizer settings) on fixed random data."""
    lr = 256 // scale
    x8, p8, gt = torch.rand(8, 3, lr, lr), bench_priors(8), torch.rand(8, 3, 256, 256)
    opt_ = torch.optim.Adam(net.parameters(), 2e-4, betas=(0.9, 0.99), eps=1e-8)
    net.train()

    def step():
        opt_.zero_grad()
        torch.nn.functional.l1_loss(net(x8, p8) if with_priors else net(x8), gt).backward()
        opt_.step()
    return step


def _train_peak_child(spec):
    opt, with_priors, scale = json.loads(spec)
    step = train_step(build_network(dict(opt)), with_priors, scale)
    gc.collect()
    base = _proc_status_mb('VmRSS')
    for _ in range(2):
        step()
    print(_proc_status_mb('VmHWM') - base)


def round_robin(calls, repeats):
    """{name: fn} -> {name: min seconds}, timed in interleaved rounds after one warm-up round, so a slow
    phase of a shared machine hits every row alike instead of whichever row happened to run then."""
    ts = {n: [] for n in calls}
    for r in range(repeats + 1):
        for n, fn in calls.items():
            t = time.perf_counter()
            fn()
            if r:
                ts[n].append(time.perf_counter() - t)
    return {n: min(v) for n, v in ts.items()}


def bench_nets(specs, scale, repeats, quick):
    """specs: [(name, network opt, takes priors)] -> {name: measurements}; times are interleaved."""
    from torch.utils.flop_counter import FlopCounterMode
    lr = 256 // scale
    x1, p1 = torch.rand(1, 3, lr, lr), bench_priors(1)
    x16, p16 = torch.rand(16, 3, lr, lr), bench_priors(16)
    res, nets_, calls = {}, {}, {}
    for name, opt, with_priors in specs:
        net = build_network(dict(opt)).eval()
        call = (lambda x, p, net=net: net(x, p)) if with_priors else (lambda x, p, net=net: net(x))
        with torch.no_grad():
            fc = FlopCounterMode(display=False)
            with fc:
                call(x1, p1)
        res[name] = {'params_M': sum(p.numel() for p in net.parameters()) / 1e6, 'GFLOPs': fc.get_total_flops() / 1e9}
        nets_[name], calls[name] = net, call
    with torch.no_grad():
        t1 = round_robin({n: (lambda c=c: c(x1, p1)) for n, c in calls.items()}, repeats)
        t16 = {} if quick else round_robin({n: (lambda c=c: c(x16, p16)) for n, c in calls.items()},
                                           max(1, repeats // 3))
    for name, r in res.items():
        r['fwd_b1_ms'] = t1[name] * 1e3
        r['achieved_GFLOPs_per_s'] = r['GFLOPs'] / t1[name]
        r['fwd_b16_ms_per_face'] = t16[name] * 1e3 / 16 if name in t16 else float('nan')
    steps = {}
    for name, opt, with_priors in specs:
        steps[name] = train_step(nets_[name], with_priors, scale)
        res[name]['peak_rss_growth_MB'] = train_peak_mb(opt, with_priors, scale)
    for name, t in round_robin(steps, max(1, repeats // 2)).items():
        res[name]['train_b8_ms'] = t * 1e3
    return res


def matmul_gflops(n=1024, repeats=10):
    a, b = torch.rand(n, n), torch.rand(n, n)
    t = timeit(lambda: a @ b, repeats, warmup=2)
    return 2 * n ** 3 / t / 1e9


def variants(scale, repeats):
    """LLV-FSR forward (batch 1): the default (fp32, channels_last), NCHW, bf16 autocast, torch.compile."""
    net = build_network(dict(type='LLVFSRArch', scale=scale)).eval()
    net_nchw = build_network(dict(type='LLVFSRArch', scale=scale, channels_last=False)).eval()
    x, p = torch.rand(1, 3, 256 // scale, 256 // scale), bench_priors(1)

    def bf16():
        with torch.autocast('cpu', dtype=torch.bfloat16):
            return net(x, p)
    calls = {'default (fp32, channels_last)': lambda: net(x, p), 'NCHW (channels_last: false)': lambda: net_nchw(x, p),
             'bf16_autocast': bf16}
    out = {}
    with torch.no_grad():
        try:
            t = time.perf_counter()
            cnet = torch.compile(net)
            cnet(x, p)
            out['compile_time_s'] = time.perf_counter() - t
            calls['torch_compile'] = lambda: cnet(x, p)
        except Exception as e:  # no compiler toolchain etc.
            out['torch_compile'] = f'failed: {type(e).__name__}: {str(e)[:120]}'
        out.update({k: v * 1e3 for k, v in round_robin(calls, repeats).items()})
    return out


def loader_speed(root, workers_list, seconds=6):
    training.install()  # the text collate and spawn-safe workers, as under the `basicsr` CLI
    from basicsr.data import build_dataloader, build_dataset  # after install(): the patched builder
    out = {}
    for w in workers_list:
        opt = dict(O.dataset_opt(root, 'train', 8, PAPER_PRIORS, phase='train', workers=w), phase='train', scale=8,
                   dataset_enlarge_ratio=50)
        dl = build_dataloader(build_dataset(opt), opt, num_gpu=0, dist=False, sampler=None, seed=0)
        n, t = 0, time.perf_counter()
        for b in dl:
            n += b['lq'].shape[0]
            if time.perf_counter() - t > seconds:
                break
        out[w] = n / (time.perf_counter() - t)
        del dl
        gc.collect()
    return out


def build_tiny_root(tmp):
    from llvfsr_plugin.prep.pipeline import extract_priors, make_image_lmdbs
    from llvfsr_plugin.priors.cli_args import default_extractors
    demo = os.path.join(HERE, 'demo_data', 'celebahq_demo')
    import csv
    keys = [r['celebahq_idx'] for r in csv.DictReader(open(f'{demo}/index.csv')) if r['split'] == 'train'][:16]
    root = os.path.join(tmp, 'data')
    make_image_lmdbs({'train': [(k, f'{demo}/images/{k}.jpg') for k in keys]}, root, [8], 256)
    t = time.perf_counter()
    ex = default_extractors(f'{demo}/text')
    extract_priors(root, ['train'], [8], ex)
    return root, ex, len(keys) / (time.perf_counter() - t)


def released_e2e(repeats, per_round=4):
    """ms/face of `LLVFSRRestorer.super_resolve` (maps, then the network) with the released x8 models: LLV-FSR
    (SFT in the LR body) on FaceMesh maps drawn from the LR face and from a first SR pass through the released
    Model 1, the light and the coarse prior tail on LandmarkNet's maps (2026-12-02) and the default model (the SFT
    body alone on those maps, 2026-12-03). Rounds are interleaved and each round takes new demo faces (the extractors
    cache by face); minimum over rounds."""
    import csv

    from llvfsr_plugin.prep.images import degrade, read_rgb
    from llvfsr_plugin.restorer import LLVFSRRestorer
    from llvfsr_plugin.utils.checkpoint import ZOO
    demo = os.path.join(HERE, 'demo_data', 'celebahq_demo')
    net, first = f'{ZOO}/LLVFSR_x8_celebahq256.pth', f'{ZOO}/Model1_x8_celebahq256.pth'
    runs = {'LR maps': LLVFSRRestorer(net, device='cpu', log=lambda *a: None),
            'first-pass maps': LLVFSRRestorer(net, device='cpu', log=lambda *a: None,
                                              extractors={p: ('facemesh', {'first_pass': first})
                                                          for p in ('mask', 'depth')}),
            'landmark-net light tail': LLVFSRRestorer(f'{ZOO}/LLVFSR_tail_lm_x8_celebahq256.pth', device='cpu',
                                                      log=lambda *a: None),
            'landmark-net coarse tail': LLVFSRRestorer(f'{ZOO}/LLVFSR_tail_coarse_lm_x8_celebahq256.pth', device='cpu',
                                                       log=lambda *a: None),
            'landmark-net SFT body (default)': LLVFSRRestorer(device='cpu', log=lambda *a: None)}
    rows = list(csv.DictReader(open(f'{demo}/index.csv')))[:(repeats + 1) * per_round]
    faces = [degrade(read_rgb(f"{demo}/{r['image']}", allow_resize_to=256), 8) for r in rows]
    ts = {n: [] for n in runs}
    for r in range(repeats + 1):
        chunk = faces[r * per_round:(r + 1) * per_round]
        for n, restorer in runs.items():
            t = time.perf_counter()
            restorer.super_resolve(chunk)
            if r:
                ts[n].append((time.perf_counter() - t) / len(chunk))
    return {n: min(v) * 1e3 for n, v in ts.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--quick', action='store_true')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--json', default=None)
    ap.add_argument('--_train-peak', default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args._train_peak:
        return _train_peak_child(args._train_peak)
    os.environ.setdefault('GLOG_minloglevel', '2')
    scales = [8] if args.quick else [8, 16]
    repeats = 3 if args.quick else 7
    res = {'date': time.strftime('%Y-%m-%d'), 'threads': args.threads, 'torch': torch.__version__,
           'cpu': next((ln.split(':')[1].strip() for ln in open('/proc/cpuinfo') if ln.startswith('model name')), '?'),
           'matmul_fp32_GFLOPs_per_s': matmul_gflops(), 'nets': {}}
    for scale in scales:
        specs = [s for s in nets(scale) if not (args.quick and s[0].startswith(('RCAN', 'SwinIR')))]
        rows = bench_nets(specs, scale, repeats, args.quick)
        for name, r in rows.items():
            print(f'x{scale} {name}: ' + ', '.join(f'{k}={v:.2f}' for k, v in r.items()), flush=True)
        res['nets'][f'x{scale}'] = rows
    res['llvfsr_variants_x8_ms'] = variants(8, repeats)
    print('variants', res['llvfsr_variants_x8_ms'], flush=True)
    tmp = tempfile.mkdtemp()
    try:
        root, ex, prep_fps = build_tiny_root(tmp)
        res['offline_prep_priors_faces_per_s'] = prep_fps
        res['loader_samples_per_s'] = loader_speed(root, [0] if args.quick else [0, 1, 2])
        res['train_step_samples_per_s_x8'] = 8 / (res['nets']['x8']['LLV-FSR (default)']['train_b8_ms'] / 1e3)
        lr_s = Store(f'{root}/train/lr_x8.lmdb')
        keys = lr_s.keys()[:8]
        net = build_network(dict(type='LLVFSRArch', scale=8)).eval()
        t = time.perf_counter()
        t_pri = 0
        for k in keys:  # end-to-end: priors from the LR face, then the network, one face at a time
            s = Sample(k, decode_png(lr_s.get_bytes(k)), f'{HERE}/demo_data/celebahq_demo/text/{k}.txt')
            tp = time.perf_counter()
            item = {'lq': torch.from_numpy(s.lr).permute(2, 0, 1).float() / 255}
            for p, e in ex.items():
                item.update(to_tensors(p, e.extract([s])[0][0]))
            t_pri += time.perf_counter() - tp
            b = collate([item])
            with torch.no_grad():
                net(b.pop('lq'), b)
        res['e2e_inference_ms_per_face'] = (time.perf_counter() - t) / len(keys) * 1e3
        res['e2e_priors_ms_per_face'] = t_pri / len(keys) * 1e3
        res['e2e_released_x8_ms_per_face'] = released_e2e(repeats)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(render(res))
    if args.json:
        json.dump(res, open(args.json, 'w'), indent=1, default=str)


def ms(v):
    """A time in ms for the table; '-' where it was not measured (NaN: --quick skips batch 16)."""
    return '-' if v != v else f'{v:.0f}'


def render(res):
    lines = [f"{res['date']}, {res['cpu']}, {res['threads']} threads, torch {res['torch']}; "
             f"fp32 matmul {res['matmul_fp32_GFLOPs_per_s']:.0f} GFLOP/s", '']
    for scale, rows in res['nets'].items():
        first = next(iter(rows.values()))
        lines += [f'**{scale}** (ratios vs LLV-FSR)', '',
                  '| network | params (M) | GFLOPs | fwd b1 (ms) | fwd b16 (ms/face) | train b8 (ms) '
                  '| train-step peak memory (MB) |',
                  '|---|---|---|---|---|---|---|']
        for n, r in rows.items():
            lines.append(f"| {n} | {r['params_M']:.2f} | {r['GFLOPs']:.2f} | {r['fwd_b1_ms']:.0f} "
                         f"({r['fwd_b1_ms'] / first['fwd_b1_ms']:.2f}x) | {ms(r['fwd_b16_ms_per_face'])} | "
                         f"{r['train_b8_ms']:.0f} ({r['train_b8_ms'] / first['train_b8_ms']:.2f}x) | "
                         f"{r['peak_rss_growth_MB']:.0f} |")
        lines.append('')
    r = res['nets']['x8']['LLV-FSR (default)']
    lines.append(f"LLV-FSR x8 forward achieves {r['achieved_GFLOPs_per_s']:.1f} GFLOP/s = "
                 f"{r['achieved_GFLOPs_per_s'] / res['matmul_fp32_GFLOPs_per_s']:.0%} of fp32 matmul.")
    lines.append(f"LLV-FSR x8 forward variants (ms): {res['llvfsr_variants_x8_ms']}")
    lines.append(f"PriorPairedDataset samples/s by workers: "
                 f"{ {k: round(v) for k, v in res['loader_samples_per_s'].items()} } vs train step "
                 f"{res['train_step_samples_per_s_x8']:.1f} samples/s")
    lines.append("offline prior prep (all four priors, 256 px HR, x8): "
                 f"{res['offline_prep_priors_faces_per_s']:.1f} faces/s; "
                 f"end-to-end inference {res['e2e_inference_ms_per_face']:.0f} ms/face, of which priors "
                 f"{res['e2e_priors_ms_per_face']:.0f} ms")
    e2e = res.get('e2e_released_x8_ms_per_face')
    tails = {k: v for k, v in (e2e or {}).items() if 'tail' in k}
    if e2e:
        lines.append(f"released x8 LLV-FSR end to end (FaceMesh maps + network, per face): LR maps "
                     f"{e2e['LR maps']:.0f} ms, first-pass maps (Model 1 first) {e2e['first-pass maps']:.0f} ms "
                     f"({e2e['first-pass maps'] / e2e['LR maps']:.2f}x)"
                     + ''.join(f"; {k} {v:.0f} ms ({v / e2e['LR maps']:.2f}x)" for k, v in tails.items()))
    return '\n'.join(lines)


if __name__ == '__main__':
    main()
