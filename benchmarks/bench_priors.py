#!/usr/bin/env python
"""Offline prior extractors: faces/s and FaceMesh fallback rate, from LR faces made with MATLAB bicubic.

  python benchmarks/bench_priors.py --hr-dir ../shared/data/celebahq256/images/val [--limit 300] [--json out]
  python benchmarks/bench_priors.py --quick      # the bundled val faces
"""
import argparse
import json
import os
import time

import llvfsr_plugin  # noqa: F401
from llvfsr_plugin.prep.images import degrade, list_images, read_rgb
from llvfsr_plugin.priors.cli_args import default_extractors
from llvfsr_plugin.priors.extractors import Sample, build_extractor
from llvfsr_plugin.priors.extractors.map_extractors import FaceMeshRunner

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--hr-dir', default=os.path.join(HERE, 'demo_data', 'celebahq_demo', 'images'))
    ap.add_argument('--text-dir', default=None, help='default: <hr-dir>/../../text or the bundled text')
    ap.add_argument('--limit', type=int, default=300)
    ap.add_argument('--scales', type=int, nargs='+', default=[8, 16])
    ap.add_argument('--hr-size', type=int, default=256)
    ap.add_argument('--quick', action='store_true', help='bundled faces, 16 of them')
    ap.add_argument('--json', default=None)
    args = ap.parse_args(argv)
    if args.quick:
        args.limit = 16
    text_dir = args.text_dir or os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(args.hr_dir))), 'text')
    if not os.path.isdir(text_dir):
        text_dir = os.path.join(os.path.dirname(os.path.abspath(args.hr_dir)), 'text')
    paths = list_images(args.hr_dir)[:args.limit]
    hrs = {os.path.splitext(os.path.basename(p))[0]: read_rgb(p, allow_resize_to=args.hr_size) for p in paths}
    results = []
    encoders = default_extractors(text_dir, ['caption', 'description'])
    for scale in args.scales:
        samples = [Sample(k, degrade(hr, scale)) for k, hr in hrs.items()]
        lr = samples[0].lr.shape[0]
        FaceMeshRunner.get()._cache.clear()
        t = time.perf_counter()
        for s in samples:  # the mesh itself, once per face (mask and depth share it)
            FaceMeshRunner.get().landmarks(s.key, s.lr)
        t_mesh = time.perf_counter() - t
        found = sum(FaceMeshRunner.get().landmarks(s.key, s.lr) is not None for s in samples)
        row = {'scale': scale, 'lr': lr, 'faces': len(samples), 'facemesh_found': found,
               'fallback_rate': 1 - found / len(samples), 'facemesh_faces_per_s': len(samples) / t_mesh}
        for prior in ('mask', 'depth'):  # rasterising / interpolating from the cached mesh
            ex = build_extractor(prior, 'facemesh')
            t = time.perf_counter()
            ex.extract(samples)
            row[f'{prior}_faces_per_s_after_mesh'] = len(samples) / (time.perf_counter() - t)
        if scale == args.scales[0]:
            for prior, ex in encoders.items():
                t = time.perf_counter()
                ex.extract(samples)
                row[f'{prior}_minilm_faces_per_s'] = len(samples) / (time.perf_counter() - t)
        results.append(row)
        print(json.dumps(row), flush=True)
    print('\n| scale | LR | faces | FaceMesh found | fallback rate | FaceMesh faces/s | mask faces/s (after mesh) | '
          'depth faces/s (after mesh) |')
    print('|---|---|---|---|---|---|---|---|')
    for r in results:
        print(f"| x{r['scale']} | {r['lr']}px | {r['faces']} | {r['facemesh_found']} | {r['fallback_rate']:.1%} | "
              f"{r['facemesh_faces_per_s']:.0f} | {r['mask_faces_per_s_after_mesh']:.0f} | "
              f"{r['depth_faces_per_s_after_mesh']:.0f} |")
    r = results[0]
    print(f"\ntext (file + MiniLM): caption {r['caption_minilm_faces_per_s']:.0f} faces/s, "
          f"description {r['description_minilm_faces_per_s']:.0f} faces/s")
    if args.json:
        json.dump(results, open(args.json, 'w'), indent=1)


if __name__ == '__main__':
    main()
