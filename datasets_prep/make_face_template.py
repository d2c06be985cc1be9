#!/usr/bin/env python
"""Build the face alignment template used for whole-photo inference (llvfsr_plugin/face_helper.py): where the
eye centres, nose tip and mouth corners sit in the aligned CelebA-HQ crops the networks are trained on.

  python datasets_prep/make_face_template.py --hr-dir ../shared/data/celebahq256/images/train --limit 1000

Runs FaceMesh on aligned HR faces and averages the five points (FaceMesh's normalised [0, 1] coordinates).
"""
import argparse

import cv2
import numpy as np
from tqdm import tqdm

from llvfsr_plugin.face_helper import TEMPLATE, five_points
from llvfsr_plugin.prep.images import list_images
from llvfsr_plugin.priors.extractors.map_extractors import FaceMeshRunner


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--hr-dir', required=True)
    ap.add_argument('--limit', type=int, default=1000)
    ap.add_argument('--out', default=TEMPLATE)
    args = ap.parse_args(argv)
    runner = FaceMeshRunner.get(upsample_to=256)
    pts = []
    for path in tqdm(list_images(args.hr_dir)[:args.limit], desc='template', unit='face'):
        lm = runner.landmarks(path, cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB))
        if lm is not None:
            pts.append(five_points(lm))
    pts = np.array(pts)
    np.savez(args.out, points=pts.mean(0).astype(np.float32), std=pts.std(0).astype(np.float32), n=len(pts))
    print(f'{args.out}: {len(pts)} faces; points (x, y in [0, 1]):\n{pts.mean(0).round(4)}\nstd (pixels at 256): '
          f'{(pts.std(0) * 256).round(1).tolist()}')


if __name__ == '__main__':
    main()
