#!/usr/bin/env python
"""Would FaceMesh read more of x16's 16 px faces with a border around them, and would those maps say more?

FaceMesh finds no face in 39 of the 100 val faces of the x16 experiment (bicubic to 256 px; the mean-face map
stands in). Its detector expects a face smaller than the frame; these aligned crops fill it. This probe pads
the upsampled LR face with a black border (a fraction of its side on each edge), counts the faces found and
compares their 478 landmarks (mapped back to the unpadded 256 px frame) with FaceMesh's on the HR face: mean
absolute coordinate error in px of 256, against that of one fixed landmark set, the mean of the HR landmarks
(what a face template gives every face).

With a second argument, a Model 1 checkpoint, FaceMesh reads that network's SR output instead of the bicubic
face (the extractors' `first_pass`, row llvfsr_sft_sr): would maps drawn from a first SR pass say more than a
template at x16? The groups stay those of the bicubic face without border ("today").

    PYTHONPATH=. python benchmarks/results/quality_x16_tail_2026-12-01/facemesh_padding/probe.py \
        <out of quality_experiment.py --scale 16>/data [<out>/experiments/q_model1/models/net_g_7200.pth]
"""
import sys

import cv2
import numpy as np

from llvfsr_plugin.prep.images import decode_png
from llvfsr_plugin.prep.layout import hr_path, lr_path
from llvfsr_plugin.priors.extractors.map_extractors import FaceMeshRunner, FirstPass, mesh_landmarks, source_face
from llvfsr_plugin.priors.store import Store


def landmarks(mesh, img, frac):
    """[478, 2] in [0, 1] of `img` (FaceMesh on `img` with a black border of `frac` of its side), or None."""
    h = img.shape[0]
    p = int(round(h * frac))
    padded = cv2.copyMakeBorder(img, p, p, p, p, cv2.BORDER_CONSTANT, value=(0, 0, 0)) if p else img
    lm = mesh_landmarks(mesh, padded)
    return None if lm is None else (lm[:, :2] * (h + 2 * p) - p) / h


def main(root, first_pass=None):
    lr_st, hr_st = Store(lr_path(root, 'val', 16)), Store(hr_path(root, 'val'))
    keys = lr_st.keys()
    runner = FaceMeshRunner.get(upsample_to=256)  # the extractor's FaceMesh and upsampling
    mesh = runner.mesh
    faces = {k: decode_png(lr_st.get_bytes(k)) for k in keys}
    lr = {k: runner.upsample(face) for k, face in faces.items()}
    ref = {k: landmarks(mesh, decode_png(hr_st.get_bytes(k)), 0.0) for k in keys}
    print(f'HR faces read: {sum(r is not None for r in ref.values())}/{len(keys)}')
    today = {k: landmarks(mesh, lr[k], 0.0) is not None for k in keys}
    if first_pass:  # the image FaceMesh reads: the first pass's SR face, as the extractor makes it
        sr = FirstPass.get(first_pass)
        lr = {k: source_face(face, sr, runner.upsample_to) for k, face in faces.items()}
        print(f'FaceMesh on the SR output of {first_pass}')
    for frac in (0.0, 0.25, 0.5):
        got = {k: landmarks(mesh, lr[k], frac) for k in keys}
        for group, ks in (('found today', [k for k in keys if today[k]]),
                          ('missed today', [k for k in keys if not today[k]])):
            err = [np.abs(got[k] - ref[k]).mean() * 256 for k in ks if got[k] is not None and ref[k] is not None]
            found = sum(got[k] is not None for k in ks)
            print(f'border {frac:.2f}: {group}: {found}/{len(ks)} found; landmark error vs HR '
                  + (f'mean {np.mean(err):.2f} px, median {np.median(err):.2f} px' if err else '-'))
    mean = np.mean([r for r in ref.values() if r is not None], axis=0)
    for group, ks in (('all', keys), ('found today', [k for k in keys if today[k]]),
                      ('missed today', [k for k in keys if not today[k]])):
        err = [np.abs(mean - ref[k]).mean() * 256 for k in ks if ref[k] is not None]
        print(f'one template (mean of the HR landmarks) for every face: {group}: mean {np.mean(err):.2f} px, '
              f'median {np.median(err):.2f} px')


if __name__ == '__main__':
    main(*sys.argv[1:3])
