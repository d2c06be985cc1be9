#!/usr/bin/env python
"""Build the FaceMesh *mean prior* used when no face is found in an LR image
(llvfsr_plugin/priors/extractors/map_extractors.py).

  python datasets_prep/make_mean_prior.py --hr-dir ../shared/data/celebahq256/images/train --limit 1000

Runs FaceMesh on aligned HR faces, takes the per-pixel most frequent label and the mean depth at 64x64.
"""
import argparse
import os

import cv2
import numpy as np
from tqdm import tqdm

from llvfsr_plugin.prep.images import list_images
from llvfsr_plugin.priors.contract import NUM_MASK_CLASSES
from llvfsr_plugin.priors.extractors.map_extractors import (
    MEAN_PRIOR,
    FaceMeshRunner,
    interpolate_depth,
    rasterize_regions,
)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--hr-dir', required=True)
    ap.add_argument('--limit', type=int, default=1000)
    ap.add_argument('--size', type=int, default=64)
    ap.add_argument('--out', default=MEAN_PRIOR)
    args = ap.parse_args(argv)
    runner = FaceMeshRunner.get(upsample_to=256)
    counts = np.zeros((NUM_MASK_CLASSES, args.size, args.size), np.int64)
    depth, n = np.zeros((args.size, args.size)), 0
    for path in tqdm(list_images(args.hr_dir)[:args.limit], desc='mean prior', unit='face'):
        rgb = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
        lm = runner.landmarks(path, rgb)
        if lm is None:
            continue
        lab = rasterize_regions(lm, args.size)
        np.add.at(counts, (lab, *np.indices(lab.shape)), 1)
        depth += interpolate_depth(lm, args.size)
        n += 1
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    np.savez_compressed(args.out, labels=counts.argmax(0).astype(np.uint8), depth=(depth / n).astype(np.float16),
                        num_faces=n)
    print(f'wrote {args.out} from {n} faces')


if __name__ == '__main__':
    main()
