#!/usr/bin/env python
"""Train LandmarkNet, the `landmark-net` map extractor (llvfsr_plugin/priors/extractors/landmark_extractors.py):
LR face -> the FaceMesh landmarks of its HR face.

  python datasets_prep/train_landmark_net.py --hr-dir ../shared/data/celebahq256/images/train \
      --holdout-dir ../shared/data/celebahq256/images/val --exclude-root runs/x16/data --scales 8 16

Labels: FaceMesh (refined, 478 points) on every HR face (faces it cannot read are left out and counted). Inputs:
the HR face degraded as prep does (MATLAB bicubic x1/s, a scale drawn per face and epoch from --scales),
resized to the net's input. Faces of --exclude-root (every split of a prepared root, e.g. a quality
experiment's) are left out of training and hold-out, so the maps the net draws for that experiment's faces are
as good as for any unseen face, in training and in validation alike. Horizontal flips (landmarks mirrored by
the mesh's own symmetry) double the faces. The net of the epoch with the lowest hold-out error is written, with
what it was trained on and its hold-out error per scale in its meta (pixels at 256 px, mean over landmarks of
the x-y distance to FaceMesh on the HR face). Landmarks and LR faces are cached beside the output (--cache).
"""
import argparse
import math
import os
import random
import sys
import time

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from llvfsr_plugin.errors import UserError
from llvfsr_plugin.prep.images import degrade, image_key, list_images, read_rgb
from llvfsr_plugin.prep.layout import read_splits, splits_json
from llvfsr_plugin.priors.extractors.landmark_extractors import (
    LANDMARK_NET,
    NUM_LANDMARKS,
    LandmarkNet,
    lr_input,
    save_landmark_net,
)
from llvfsr_plugin.priors.extractors.map_extractors import FaceMeshRunner

HR_SIZE = 256  # landmark errors are reported in pixels at this size


def excluded_keys(roots):
    keys = set()
    for root in roots or []:
        path = splits_json(root)
        if not os.path.isfile(path):
            raise UserError(f'--exclude-root {root}: no splits.json there (a root prepared by make_dataset.py)')
        keys |= {k for split in read_splits(root).values() for k in split}
    return keys


def label_faces(paths, scales, cache):
    """FaceMesh landmarks of each HR face and its LR faces per scale, cached in `cache` (npz) by key."""
    data = dict(np.load(cache, allow_pickle=False)) if cache and os.path.isfile(cache) else {}
    known = set(data.get('keys', np.array([], str)).tolist())
    cached = {int(k[4:]) for k in data if k.startswith('lr_x')}
    if data and set(scales) - cached:
        raise UserError(f'--cache {cache} holds no LR faces at x{sorted(set(scales) - cached)}: pass a new --cache '
                        f'for these scales')
    scales = sorted(set(scales) | cached)  # faces added to a cache get every scale it holds
    todo = [p for p in paths if image_key(p) not in known]
    if todo:
        runner = FaceMeshRunner.get(upsample_to=HR_SIZE)
        new = {'keys': [], 'landmarks': [], 'found': [], **{f'lr_x{s}': [] for s in scales}}
        for p in tqdm(todo, desc='FaceMesh on HR faces', unit='face'):
            hr = read_rgb(p, allow_resize_to=HR_SIZE)
            lm = runner.landmarks(None, hr)
            new['keys'].append(image_key(p))
            new['found'].append(lm is not None)
            new['landmarks'].append(lm.astype(np.float32) if lm is not None else np.zeros((NUM_LANDMARKS, 3), 'f4'))
            for s in scales:
                new[f'lr_x{s}'].append(degrade(hr, s))
        for k, v in new.items():
            v = np.array(v)
            data[k] = np.concatenate([data[k], v]) if k in data else v
        if cache:
            np.savez(cache + '.part.npz', **data)
            os.replace(cache + '.part.npz', cache)
    index = {k: i for i, k in enumerate(data['keys'].tolist())}
    rows = [index[image_key(p)] for p in paths]
    return {k: v[rows] for k, v in data.items()}


def mirror_permutation(mean):
    """Landmark i of a face -> the index of its mirror image: the one-to-one matching of the mean shape with its
    mirror image (x about the shape's centre) of least total distance; None unless it is its own inverse."""
    from scipy.optimize import linear_sum_assignment
    flipped = mean[:, :2].copy()
    flipped[:, 0] = 2 * mean[:, 0].mean() - flipped[:, 0]
    _, perm = linear_sum_assignment(((flipped[:, None] - mean[None, :, :2]) ** 2).sum(-1))
    return perm if np.array_equal(perm[perm], np.arange(len(perm))) else None


def shape_model(landmarks, num_coeffs):
    """Mean and the first `num_coeffs` principal components (scaled by their standard deviation)."""
    flat = landmarks.reshape(len(landmarks), -1).astype(np.float64)
    mean = flat.mean(0)
    _, s, vt = np.linalg.svd(flat - mean, full_matrices=False)
    std = s[:num_coeffs] / math.sqrt(len(flat) - 1)
    explained = float((s[:num_coeffs] ** 2).sum() / (s ** 2).sum())
    return mean.astype(np.float32), (vt[:num_coeffs] * std[:, None]).astype(np.float32), explained


def xy_error(pred, target):
    """Mean x-y landmark distance in pixels at HR_SIZE, per face."""
    return ((pred[..., :2] - target[..., :2]) * HR_SIZE).norm(dim=-1).mean(-1)


def batches(faces, scales, size, batch, rng, perm=None):
    """Shuffled (inputs, landmarks) batches; a scale per face, half the faces mirrored when `perm` is given."""
    order = rng.permutation(len(faces['keys']))
    for i in range(0, len(order), batch):
        idx = order[i:i + batch]
        xs, ys = [], []
        for j in idx:
            lr = faces[f'lr_x{scales[rng.integers(len(scales))]}'][j]
            lm = faces['landmarks'][j].copy()
            if perm is not None and rng.random() < 0.5:
                lr, lm = lr[:, ::-1], lm[perm]
                lm[:, 0] = 1 - lm[:, 0]  # x of the mirrored image (the centre of a pixel at x lands at 1 - x)
            xs.append(lr_input(lr, size))
            ys.append(torch.from_numpy(lm))
        yield torch.stack(xs), torch.stack(ys)


@torch.no_grad()
def face_errors(net, lrs, landmarks, size):
    """Per-face x-y error (pixels at HR_SIZE) of the net's landmarks from LR faces `lrs` against `landmarks`."""
    x = torch.stack([lr_input(lr, size) for lr in lrs])
    pred = torch.cat([net(x[i:i + 256]) for i in range(0, len(x), 256)])
    return xy_error(pred, torch.from_numpy(landmarks))


def holdout_error(net, faces, scales, size):
    net.eval()
    out = {f'x{s}': float(face_errors(net, faces[f'lr_x{s}'], faces['landmarks'], size).mean()) for s in scales}
    net.train()
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--hr-dir', nargs='+', required=True, help='folders of aligned HR faces to train on')
    ap.add_argument('--holdout-dir', nargs='*', default=[], help='folders of faces held out (error, epoch choice)')
    ap.add_argument('--holdout-fraction', type=float, default=0.05,
                    help='without --holdout-dir: this share of the training faces is held out')
    ap.add_argument('--exclude-root', nargs='*', default=[], help='prepared roots whose faces are left out')
    ap.add_argument('--scales', type=int, nargs='+', default=[8, 16])
    ap.add_argument('--input-size', type=int, default=32)
    ap.add_argument('--coeffs', type=int, default=80, help='shape-model components the net predicts')
    ap.add_argument('--epochs', type=int, default=40)
    ap.add_argument('--batch', type=int, default=64)
    ap.add_argument('--lr', type=float, default=2e-3)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--limit', type=int, default=None, help='at most this many training faces (a smoke run)')
    ap.add_argument('--cache', default=None, help='npz of landmarks and LR faces (default: beside --out)')
    ap.add_argument('--out', default=LANDMARK_NET)
    args = ap.parse_args(argv)
    try:
        return train(args)
    except UserError as e:
        sys.exit(f'[landmark-net] {e}')


def train(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    skip = excluded_keys(args.exclude_root)
    train_paths = [p for d in args.hr_dir for p in list_images(d) if image_key(p) not in skip][:args.limit]
    hold_paths = [p for d in args.holdout_dir for p in list_images(d) if image_key(p) not in skip]
    if not args.holdout_dir:
        random.Random(args.seed).shuffle(train_paths)
        n = max(1, int(len(train_paths) * args.holdout_fraction))
        train_paths, hold_paths = train_paths[n:], train_paths[:n]
    if not train_paths or not hold_paths:
        raise UserError(f'{len(train_paths)} training and {len(hold_paths)} hold-out faces left after '
                        f'--exclude-root: give more faces')
    cache = args.cache or os.path.splitext(args.out)[0] + '_labels.npz'
    os.makedirs(os.path.dirname(os.path.abspath(cache)), exist_ok=True)
    faces = label_faces(train_paths + hold_paths, args.scales, cache)
    n_train = len(train_paths)
    split = {'train': np.arange(len(faces['keys'])) < n_train}
    split['holdout'] = ~split['train']
    lost = {k: int((~faces['found'][m]).sum()) for k, m in split.items()}
    sets = {k: {f: v[m & faces['found']] for f, v in faces.items()} for k, m in split.items()}
    print(f'[landmark-net] {len(sets["train"]["keys"])} training / {len(sets["holdout"]["keys"])} hold-out faces '
          f'(FaceMesh found no face in {lost["train"]} / {lost["holdout"]}; left out)')
    mean, basis, explained = shape_model(sets['train']['landmarks'], args.coeffs)
    perm = mirror_permutation(mean.reshape(NUM_LANDMARKS, 3))
    net = LandmarkNet(mean, basis, args.input_size)
    opt = torch.optim.Adam(net.parameters(), args.lr, weight_decay=1e-5)
    steps = args.epochs * math.ceil(len(sets['train']['keys']) / args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, args.lr, total_steps=steps, pct_start=0.1)
    zscale = torch.tensor([1.0, 1.0, 0.5]) * HR_SIZE  # loss in pixels at 256 px; z (depth) weighs half
    best, history, t0 = None, [], time.time()
    for epoch in range(1, args.epochs + 1):
        losses = []
        for x, y in tqdm(batches(sets['train'], args.scales, args.input_size, args.batch, rng, perm),
                         desc=f'epoch {epoch}/{args.epochs}', total=math.ceil(len(sets['train']['keys']) / args.batch),
                         leave=False):
            loss = F.l1_loss(net(x) * zscale, y * zscale)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        err = holdout_error(net, sets['holdout'], args.scales, args.input_size)
        history.append({'epoch': epoch, 'train_loss': float(np.mean(losses)), 'holdout_px': err})
        print(f'[landmark-net] epoch {epoch}: train L1 {np.mean(losses):.3f}, hold-out x-y error (px at 256) '
              + ', '.join(f'{k} {v:.3f}' for k, v in err.items()), flush=True)
        score = float(np.mean(list(err.values())))
        if best is None or score < best[0]:
            best = (score, epoch, {k: v.clone() for k, v in net.state_dict().items()}, err)
    net.load_state_dict(best[2])
    mean_face = torch.from_numpy(mean).view(1, NUM_LANDMARKS, 3)
    mean_err = float(xy_error(mean_face, torch.from_numpy(sets['holdout']['landmarks'])).mean())
    meta = {'trained_on': sorted({os.path.abspath(d) for d in args.hr_dir}), 'train_faces': len(sets['train']['keys']),
            'holdout_faces': len(sets['holdout']['keys']), 'excluded_keys': sorted(skip),
            'scales': args.scales, 'epochs': args.epochs, 'best_epoch': best[1], 'holdout_px': best[3],
            'holdout_px_mean_face': mean_err, 'shape_variance_explained': explained, 'flips': perm is not None,
            'seed': args.seed, 'train_minutes': (time.time() - t0) / 60, 'history': history}
    save_landmark_net(net, args.out, meta)
    print(f'[landmark-net] wrote {args.out}: epoch {best[1]}, hold-out error (px at 256) '
          + ', '.join(f'{k} {v:.3f}' for k, v in best[3].items()) + f' (mean face: {mean_err:.3f})')
    return meta


if __name__ == '__main__':
    main()
