#!/usr/bin/env python
"""Does LandmarkNet draw better landmarks for the faces it was trained on than for new ones? Before a network
is trained on landmark-net maps of faces LandmarkNet has seen, measure how much better those maps are: a large
gap would teach the SR network to trust maps more than a user's photo will deserve.

  python benchmarks/landmark_net_seen.py --hr-dir ../shared/data/celebahq256/images/train \
      --val-dir ../shared/data/celebahq256/images/val --faces 300 --out benchmarks/results/<dir>/seen.json

Groups: faces of --hr-dir LandmarkNet trained on (its meta's `excluded_keys` are the ones it did not), faces of
--hr-dir it did not train on, and the faces of --val-dir (never trained on; part of them may be its hold-out,
which chose the epoch). Error per face: mean x-y distance over the 478 landmarks to FaceMesh on the HR face, in
pixels at 256 px, per scale, on the LR face degraded as prep does; seen minus unseen with a 95 % bootstrap interval
over faces (unpaired: other faces).
"""
import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(HERE, 'datasets_prep'))
from train_landmark_net import face_errors, label_faces  # noqa: E402

from llvfsr_plugin.cli import int_at_least  # noqa: E402
from llvfsr_plugin.prep.images import image_key, list_images  # noqa: E402
from llvfsr_plugin.priors.extractors.landmark_extractors import LANDMARK_NET, LandmarkNetRunner  # noqa: E402
from llvfsr_plugin.utils.stats import fmt_interval, unpaired_bootstrap  # noqa: E402


def errors(net, faces, scale):
    """Per-face errors of the faces FaceMesh could label."""
    keep = faces['found'].astype(bool)
    return face_errors(net, faces[f'lr_x{scale}'][keep], faces['landmarks'][keep], net.input_size).numpy()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--hr-dir', required=True, help='the folder of faces LandmarkNet was trained on (in part)')
    ap.add_argument('--val-dir', default=None, help='faces it never trained on')
    ap.add_argument('--weights', default=None, help=f'LandmarkNet weights (default: the shipped {LANDMARK_NET})')
    ap.add_argument('--faces', type=int_at_least(1), default=300, help='faces per group (the first by key)')
    ap.add_argument('--scales', type=int, nargs='+', default=[8, 16])
    ap.add_argument('--cache', default=None, help='npz of the labels (FaceMesh on the HR faces)')
    ap.add_argument('--out', default=None, help='JSON of the per-face errors and the differences')
    args = ap.parse_args(argv)

    runner = LandmarkNetRunner.get(args.weights, 'cpu')
    net = runner.net.eval()
    paths = sorted(list_images(args.hr_dir), key=image_key)
    seen = set(runner.possibly_seen([image_key(p) for p in paths]))  # the extractors' own test of "seen"
    groups = {'seen': [p for p in paths if image_key(p) in seen][:args.faces],
              'unseen': [p for p in paths if image_key(p) not in seen][:args.faces]}
    if args.val_dir:
        groups['val'] = sorted(list_images(args.val_dir), key=image_key)[:args.faces]
    result = {'weights': os.path.abspath(args.weights or LANDMARK_NET), 'groups': {}, 'seen_minus': {}}
    for name, group in list(groups.items()):
        if not group:
            print(f'[seen] no {name} faces in {args.val_dir if name == "val" else args.hr_dir}; that group is left out')
            del groups[name]
            continue
        faces = label_faces(group, args.scales, args.cache)
        result['groups'][name] = {'faces': int(faces['found'].sum()), 'of': len(group),
                                  **{f'x{s}': errors(net, faces, s).tolist() for s in args.scales}}
    for s in args.scales if 'seen' in groups else ():
        seen_err = np.array(result['groups']['seen'][f'x{s}'])
        line = [f'x{s}: seen {seen_err.mean():.3f} px']
        for other in [g for g in groups if g != 'seen']:
            err = np.array(result['groups'][other][f'x{s}'])
            diff = unpaired_bootstrap(seen_err, err)
            result['seen_minus'][f'{other}_x{s}'] = diff
            line.append(f'{other} {err.mean():.3f} px (seen - {other} {fmt_interval(diff)})')
        print(', '.join(line))
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=1)


if __name__ == '__main__':
    main()
