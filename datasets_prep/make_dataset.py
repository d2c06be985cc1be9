#!/usr/bin/env python
"""HR faces -> HR and LR (x8, x16, ...) BasicSR LMDBs per split, with MATLAB bicubic degradation.

Examples
  # MMCelebA-HQ (24,000 train / 6,000 test official split; see README "Prep"):
  python datasets_prep/make_dataset.py --hr-dir CelebAMask-HQ/CelebA-HQ-img --split-csv mmceleba_split.csv \
      --out datasets/mmcelebahq --scales 8 16 --hr-size 256
  # any folder of aligned square faces, 5% held out for validation:
  python datasets_prep/make_dataset.py --hr-dir my_faces/ --out datasets/my_faces --val-fraction 0.05

Output: <out>/<split>/hr.lmdb, <out>/<split>/lr_x<s>.lmdb (BasicSR format: PairedImageDataset reads them),
<out>/splits.json, <out>/skipped.txt (files refused with --on-error skip, and why).
Resumable: rerunning continues where a killed run stopped; finished LMDBs are left alone.
"""
import argparse
import csv
import json
import os
import random
import sys

from llvfsr_plugin.cli import command, int_at_least
from llvfsr_plugin.errors import OptionError
from llvfsr_plugin.prep.images import image_key, list_images
from llvfsr_plugin.prep.pipeline import make_image_lmdbs, split_problems


def read_split_csv(path):
    """CSV with columns `image` (path or file name) and `split`; extra columns are ignored."""
    splits = {}
    with open(path, newline='', encoding='utf-8') as f:
        rows = list(csv.DictReader(f))
    if not rows or 'split' not in rows[0] or 'image' not in rows[0]:
        raise OptionError(f'{path}: needs columns `image` and `split` (got {list(rows[0]) if rows else "no rows"})')
    for r in rows:
        key = os.path.splitext(os.path.basename(r['image']))[0]
        splits.setdefault(r['split'], []).append(key)
    return splits


def main(argv=None):
    return command('make_dataset.py', _main, argv)


def _main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--hr-dir', required=True, help='folder of aligned, square HR faces')
    ap.add_argument('--out', required=True, help='output dataset root')
    ap.add_argument('--scales', type=int_at_least(1), nargs='+', default=[8, 16],
                    help='LR scales (default: 8 16)')
    ap.add_argument('--hr-size', type=int_at_least(0), default=256,
                    help='resize HR to this size first (paper: 256; 128 for fast CPU work; 0 = keep)')
    g = ap.add_mutually_exclusive_group()
    g.add_argument('--split-csv', help='CSV with `image` and `split` columns (e.g. the MMCelebA-HQ split)')
    g.add_argument('--split-json', help='JSON {"train": [keys], "val": [keys], ...}')
    g.add_argument('--val-fraction', type=float, default=None, help='random hold-out fraction (seed 0)')
    ap.add_argument('--splits', nargs='+', default=None, help='only build these splits')
    ap.add_argument('--limit', type=int_at_least(1), default=None,
                    help='at most this many images per split (debugging)')
    ap.add_argument('--on-error', choices=['skip', 'fail'], default='fail',
                    help='bad input image: stop with its name (fail) or skip it and list it in skipped.txt')
    ap.add_argument('--overwrite', action='store_true', help='rebuild LMDBs that already exist')
    ap.add_argument('--workers', type=int_at_least(1), default=min(4, os.cpu_count() or 1))
    ap.add_argument('--wait', action='store_true', help='if another prep process writes --out, wait for it to end '
                    '(default: stop at once)')
    args = ap.parse_args(argv)
    if args.val_fraction is not None and not 0 < args.val_fraction < 1:
        ap.error(f'--val-fraction must be between 0 and 1, got {args.val_fraction}')
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise OptionError(f'--out {args.out} is a file; give a folder for the dataset root')

    keys_on_disk = {image_key(p): p for p in list_images(args.hr_dir)}  # refuses face.jpg + face.png
    if not keys_on_disk:
        raise OptionError(f'no images in {args.hr_dir}')
    if args.split_csv:
        splits = read_split_csv(args.split_csv)
    elif args.split_json:
        splits = json.load(open(args.split_json))
    else:
        keys = sorted(keys_on_disk)
        random.Random(0).shuffle(keys)
        n_val = max(1, int(round(len(keys) * (args.val_fraction or 0.05))))
        splits = {'train': sorted(keys[n_val:]), 'val': sorted(keys[:n_val])}
    problems = split_problems(splits, args.split_csv or args.split_json or 'the split')
    if problems:
        raise OptionError('; '.join(problems))
    unknown = [s for s in args.splits or [] if s not in splits]
    if unknown:
        raise OptionError(f'--splits {unknown}: not in the split file (it has {sorted(splits)})')
    if args.splits:
        splits = {s: splits[s] for s in args.splits}
    files = {}
    for split, keys in splits.items():
        absent = [k for k in keys if k not in keys_on_disk]
        if absent:
            raise OptionError(f'split {split!r}: {len(absent)} image(s) not in {args.hr_dir}, e.g. {absent[:5]}')
        keys = keys[:args.limit] if args.limit else keys
        files[split] = [(k, keys_on_disk[k]) for k in keys]
    make_image_lmdbs(files, args.out, args.scales, args.hr_size or None, args.on_error, args.overwrite, args.workers,
                     args.wait)


if __name__ == '__main__':
    sys.exit(main())
