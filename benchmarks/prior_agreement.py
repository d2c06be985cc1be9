#!/usr/bin/env python
"""How good are the LR-derived map priors? Compares the mask and depth computed from each LR face with the
same extractor's maps computed from its HR face (the 'oracle' of the quality experiment's llvfsr_hrprior
row): per-label IoU and pixel accuracy of the mask, Pearson correlation and mean absolute error of depth,
on the stored map grid (64 x 64 for both with the default FaceMesh extractors; a coarser map is resized to
the finer one). Faces where either extractor fell back to the mean prior are counted and left out.

  python benchmarks/prior_agreement.py --lr-root benchmarks/results/quality_x8/data \
      --hr-root benchmarks/results/quality_x8/data_hrprior [--split val --scale 8 --json out.json]
"""
import argparse
import json

import numpy as np

from llvfsr_plugin.prep.layout import prior_path
from llvfsr_plugin.priors.contract import MASK_LABELS
from llvfsr_plugin.priors.extractors.map_extractors import resize_map
from llvfsr_plugin.priors.store import PriorStore


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--lr-root', required=True)
    ap.add_argument('--hr-root', required=True)
    ap.add_argument('--split', default='val')
    ap.add_argument('--scale', type=int, default=8)
    ap.add_argument('--json', default=None)
    args = ap.parse_args(argv)
    st = {(w, p): PriorStore(prior_path(root, args.split, args.scale, p))
          for w, root in (('lr', args.lr_root), ('hr', args.hr_root)) for p in ('mask', 'depth')}
    keys = sorted(set(st['lr', 'mask'].keys()) & set(st['hr', 'mask'].keys()))
    if not keys:
        raise SystemExit(f'no common keys between {st["lr", "mask"].path} and {st["hr", "mask"].path}')
    inter, union = np.zeros(len(MASK_LABELS)), np.zeros(len(MASK_LABELS))
    acc, corr, mae, fell_back = [], [], [], 0
    for k in keys:
        recs = {wp: s.get(k) for wp, s in st.items()}
        if any(m.get('fallback') for _, m in recs.values()):
            fell_back += 1
            continue
        lm, hm = recs['lr', 'mask'][0]['mask'], recs['hr', 'mask'][0]['mask']
        ld, hd = (recs[w, 'depth'][0]['depth'].astype(np.float32) for w in ('lr', 'hr'))
        size = max(lm.shape[0], hm.shape[0])
        lm, hm = resize_map(lm, size, True), resize_map(hm, size, True)
        ld, hd = resize_map(ld, size, False), resize_map(hd, size, False)
        acc.append(float((lm == hm).mean()))
        for c in range(len(MASK_LABELS)):
            inter[c] += np.logical_and(lm == c, hm == c).sum()
            union[c] += np.logical_or(lm == c, hm == c).sum()
        corr.append(float(np.corrcoef(ld.ravel(), hd.ravel())[0, 1]))
        mae.append(float(np.abs(ld - hd).mean()))
    iou = {MASK_LABELS[c]: float(inter[c] / union[c]) for c in range(len(MASK_LABELS)) if union[c] > 0}
    out = {'faces': len(keys), 'compared': len(acc), 'fell_back_either': fell_back,
           'mask_pixel_accuracy': float(np.mean(acc)), 'mask_iou': iou,
           'mask_miou_parts': float(np.mean([v for n, v in iou.items() if n not in ('background', 'face')])),
           'depth_pearson': float(np.mean(corr)), 'depth_mae': float(np.mean(mae))}
    print(f"{args.split} x{args.scale}: {out['compared']}/{out['faces']} faces compared "
          f"({fell_back} fell back on either side)")
    print(f"mask: pixel accuracy {out['mask_pixel_accuracy']:.3f}, mIoU of the parts {out['mask_miou_parts']:.3f}")
    print('  IoU ' + ', '.join(f'{n} {v:.2f}' for n, v in iou.items()))
    print(f"depth: Pearson r {out['depth_pearson']:.3f}, MAE {out['depth_mae']:.3f} (depth in [0, 1])")
    if args.json:
        json.dump(out, open(args.json, 'w'), indent=1)
    return out


if __name__ == '__main__':
    main()
