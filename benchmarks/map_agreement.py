#!/usr/bin/env python
"""Do the mask and depth maps stored for the LR faces say more about each face than a mean face does?

A map prior can only help where it carries what the LR pixels hide. This compares, per face of a prepared
split, the stored LR-derived maps (whatever extractor made them) with maps FaceMesh draws from the HR face
(the reference; with --hr-root, the maps a store of HR-derived priors holds instead, e.g. the same extractor
run on the HR faces: quality_experiment's data_hrprior), next to the mean-face maps (the extractors'
fallback when no face is found): mask mIoU over the face labels present in either map (per face, and per
label pooled over faces), depth correlation. An LR map that does not beat the mean face hands the network
little it could not learn as a constant. With --from-images, the LR maps are instead drawn
by FaceMesh from a folder of images of the same faces (<key>.png or <key>_<anything>.png), e.g. a first-pass
SR output: would priors extracted after a first SR pass say more?

  python benchmarks/map_agreement.py --root runs/x16/data --scale 16 [--split val] [--limit 100] [--json out.json]
  python benchmarks/map_agreement.py --root runs/x16/data --scale 16 \
      --from-images runs/x16/results/q_model1/visualization/q_val
  python benchmarks/map_agreement.py --root runs/x8/data --hr-root runs/x8/data_hrprior --scale 8

Output: a table (mean, and LR minus mean face per face with a 95 % bootstrap interval), and with --json every
face's scores. Faces without a reference (FaceMesh cannot read the HR face, or the HR-derived store fell back
to the mean face) are left out and counted.
"""
import argparse
import glob
import json
import os
import sys
from functools import lru_cache

import numpy as np
from tqdm import tqdm

from llvfsr_plugin.errors import UserError
from llvfsr_plugin.prep.images import decode_png, read_rgb
from llvfsr_plugin.prep.layout import hr_path, prior_path
from llvfsr_plugin.priors.contract import MASK_LABELS
from llvfsr_plugin.priors.extractors.map_extractors import (
    FaceMeshDepth,
    FaceMeshMask,
    FaceMeshRunner,
    mean_map,
    resize_map,
)
from llvfsr_plugin.priors.store import PriorStore, Store
from llvfsr_plugin.utils.stats import paired_bootstrap


def label_counts(a, b):
    """Per label of MASK_LABELS: pixels in both label maps (intersection) and in either (union)."""
    labels = np.arange(len(MASK_LABELS))[:, None, None]
    return ((a == labels) & (b == labels)).sum((1, 2)), ((a == labels) | (b == labels)).sum((1, 2))


def counts_miou(inter, union):
    """Mean IoU over the face labels (not background) present in either map, from label_counts."""
    present = union[1:] > 0
    return float(np.mean(inter[1:][present] / union[1:][present]))


def mask_miou(a, b):
    """Mean IoU of two label maps over the face labels (not background) present in either."""
    return counts_miou(*label_counts(a, b))


@lru_cache(maxsize=None)
def facemesh_maps(size, depth_size):
    """The offline FaceMesh extractors at these map sizes: their maps from landmarks (`from_mesh`) are the ones
    a store holds (where FaceMesh finds no face a store holds the mean face, `mean_map`)."""
    return FaceMeshMask(prior_size=size), FaceMeshDepth(prior_size=depth_size)


def mesh_maps(lm, size, depth_size):
    """(mask, depth) FaceMesh draws from landmarks `lm`, or the mean face if `lm` is None."""
    mask, depth = facemesh_maps(size, depth_size)
    if lm is None:
        return mean_map('mask', size)['mask'], mean_map('depth', depth_size)['depth']
    return mask.from_mesh(lm)['mask'], depth.from_mesh(lm)['depth']


def depth_corr(a, b):
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else 0.0


def image_maps(folder, key, runner, size, depth_size):
    """FaceMesh maps of the image of `key` in `folder` (<key>.png or <key>_*.png), or None if no face is found."""
    paths = glob.glob(os.path.join(glob.escape(folder), f'{glob.escape(key)}.png')) + \
        glob.glob(os.path.join(glob.escape(folder), f'{glob.escape(key)}_*.png'))
    if len(paths) != 1:
        raise UserError(f'{folder}: expected one image of face {key!r} ({key}.png or {key}_<suffix>.png), found '
                        f'{len(paths)}')
    lm = runner.landmarks(f'img/{paths[0]}', read_rgb(paths[0]))
    return None if lm is None else mesh_maps(lm, size, depth_size)


def reference_maps(key, hr, hr_stores, runner, size, depth_size):
    """The reference maps of `key` at the LR maps' sizes: from the HR-derived prior stores if given, else FaceMesh
    on the HR face; None if there is none (no face read, or the HR-derived record is the mean-face fallback)."""
    if hr_stores:
        (mask, meta), (depth, _) = hr_stores['mask'].get(key), hr_stores['depth'].get(key)
        if meta.get('fallback'):
            return None
        return (resize_map(mask['mask'].reshape(mask['mask'].shape[-2:]), size, True),
                resize_map(depth['depth'].reshape(depth['depth'].shape[-2:]).astype(np.float32), depth_size, False))
    lm = runner.landmarks(f'hr/{key}', decode_png(hr.get_bytes(key)))
    return None if lm is None else mesh_maps(lm, size, depth_size)


def agreement(root, scale, split='val', limit=0, from_images=None, hr_root=None):
    """Per face: the stored LR maps and the mean-face maps, each against the reference maps.

    Args:
        root (str): a prepared dataset root (hr.lmdb, priors_x<scale>/mask.lmdb and depth.lmdb per split).
        scale (int): which LR's maps.  split (str): which split.  limit (int): first N faces (0: all).
        from_images (str): a folder of images of the split's faces: FaceMesh maps drawn from them (the mean
            face where it finds none) stand in for the stored ones (the stored ones give the map sizes).
        hr_root (str): a root whose priors_x<scale> stores hold maps derived from the HR faces: the reference
            (default: FaceMesh on the HR faces of `root`).
    Returns:
        dict: `faces` (key -> scores: lr_fallback, mask_lr, mask_mean_face, depth_lr, depth_mean_face),
        `hr_unread` (keys without a reference), `label_iou` ({'lr' / 'mean_face': {label: IoU pooled over
        faces}}).
    """
    hr = Store(hr_path(root, split))
    stores = {p: PriorStore(prior_path(root, split, scale, p)) for p in ('mask', 'depth')}
    hr_stores = {p: PriorStore(prior_path(hr_root, split, scale, p)) for p in ('mask', 'depth')} if hr_root else None
    inter, union = np.zeros((2, len(MASK_LABELS))), np.zeros((2, len(MASK_LABELS)))
    keys = sorted(stores['mask'].keys())[:limit or None]
    runner = FaceMeshRunner.get()
    faces, unread = {}, []
    for key in tqdm(keys, desc=f'map agreement x{scale} {split}', unit='face', file=sys.stderr):
        (mask, meta), (depth, _) = stores['mask'].get(key), stores['depth'].get(key)
        mask, depth = mask['mask'], depth['depth']
        if from_images:
            maps = image_maps(from_images, key, runner, mask.shape[-1], depth.shape[-1])
            meta = {'fallback': maps is None}
            mask, depth = maps or mesh_maps(None, mask.shape[-1], depth.shape[-1])
        size = mask.shape[-1]
        ref = reference_maps(key, hr, hr_stores, runner, size, depth.shape[-1])
        if ref is None:
            unread.append(key)
            continue
        ref_mask, ref_depth = ref
        mean_face_mask, mean_face_depth = mesh_maps(None, size, depth.shape[-1])
        counts = [label_counts(m, ref_mask) for m in (mask.reshape(ref_mask.shape), mean_face_mask)]
        for i, (i_c, u_c) in enumerate(counts):
            inter[i] += i_c
            union[i] += u_c
        faces[key] = {
            'lr_fallback': bool(meta.get('fallback')),
            'mask_lr': counts_miou(*counts[0]),
            'mask_mean_face': counts_miou(*counts[1]),
            'depth_lr': depth_corr(depth, ref_depth),
            'depth_mean_face': depth_corr(mean_face_depth, ref_depth)}
    label_iou = {w: {n: float(inter[i, c] / union[i, c]) for c, n in enumerate(MASK_LABELS) if union[i, c]}
                 for i, w in enumerate(('lr', 'mean_face'))}
    return {'faces': faces, 'hr_unread': unread, 'label_iou': label_iou}


def summary(result):
    faces = list(result['faces'].values())
    if not faces:
        raise UserError('map_agreement: no face has a reference (FaceMesh read none of the HR faces, or every '
                        'HR-derived record is the mean-face fallback); nothing to compare')
    col = {k: [f[k] for f in faces] for k in faces[0]}
    out = {'faces': len(faces), 'hr_unread': len(result['hr_unread']),
           'lr_fallback': float(np.mean(col['lr_fallback']))}
    for m in ('mask', 'depth'):
        out[m] = {'lr': float(np.mean(col[f'{m}_lr'])), 'mean_face': float(np.mean(col[f'{m}_mean_face'])),
                  'lr_minus_mean_face': paired_bootstrap(col[f'{m}_lr'], col[f'{m}_mean_face'])}
    out['mask_label_iou'] = result['label_iou']
    return out


def table(s, scale, source='LR extractor', maps='LR maps', reference='FaceMesh on the HR face'):
    rows = [f'x{scale}: {s["faces"]} faces ({s["hr_unread"]} without a reference), {source} fell back to the '
            f'mean face on {100 * s["lr_fallback"]:.0f} %', '',
            f'| map (vs {reference}) | {maps} | mean face | {maps} − mean face (95 % CI) | faces where '
            f'{maps} are better |',
            '|---|---|---|---|---|']
    for m, what in (('mask', 'mask mIoU'), ('depth', 'depth correlation')):
        d = s[m]['lr_minus_mean_face']
        rows.append(f'| {what} | {s[m]["lr"]:.3f} | {s[m]["mean_face"]:.3f} | {d["mean"]:+.3f} '
                    f'[{d["lo"]:+.3f}, {d["hi"]:+.3f}] | {100 * d["better"]:.0f} % |')
    iou = s['mask_label_iou']
    rows += ['', f'Mask IoU per label, pooled over faces ({maps} / mean face): ' + ', '.join(
        f'{n} {v:.2f} / {iou["mean_face"].get(n, float("nan")):.2f}' for n, v in iou['lr'].items())]
    return '\n'.join(rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--root', required=True, help='a prepared dataset root (datasets_prep/make_dataset.py)')
    ap.add_argument('--scale', type=int, required=True)
    ap.add_argument('--split', default='val')
    ap.add_argument('--limit', type=int, default=0, help='first N faces (0: all)')
    ap.add_argument('--hr-root', default=None,
                    help='reference maps from this root\'s HR-derived prior stores instead of FaceMesh on the HR faces')
    ap.add_argument('--from-images', default=None,
                    help='draw the LR maps with FaceMesh from these images of the faces instead (e.g. SR outputs)')
    ap.add_argument('--json', default=None, help='write the summary and every face\'s scores here')
    args = ap.parse_args(argv)
    try:
        result = agreement(args.root, args.scale, args.split, args.limit, args.from_images, args.hr_root)
        s = summary(result)
    except (UserError, FileNotFoundError) as e:
        sys.exit(f'error: {e}')
    source, maps = ((f'FaceMesh on {args.from_images}', 'image maps') if args.from_images else
                    ('LR extractor', 'LR maps'))
    reference = f'the maps of {args.hr_root}' if args.hr_root else 'FaceMesh on the HR face'
    print(table(s, args.scale, source, maps, reference))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(s, per_face=result['faces'], hr_unread_keys=result['hr_unread']), f, indent=1)


if __name__ == '__main__':
    main()
