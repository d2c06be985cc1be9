"""The layout of a prepared dataset root, defined once (prep writes it, options and validation read it):

    <root>/splits.json                         {"train": [keys], "val": [keys]}
    <root>/<split>/hr.lmdb                     BasicSR LMDB (PNG), HR faces
    <root>/<split>/lr_x<s>.lmdb                BasicSR LMDB, MATLAB-bicubic LR
    <root>/<split>/priors_x<s>/<prior>.lmdb    prior records (llvfsr_plugin.priors.record), from the x<s> LR
    <root>/skipped.txt                         inputs refused with --on-error skip, one per line, with the reason
"""
import json
import os
import re


def splits_json(root):
    return os.path.join(root, 'splits.json')


def read_splits(root):
    """{split: [keys]} of a prepared root (its splits.json)."""
    with open(splits_json(root)) as f:
        return json.load(f)


def skipped_txt(root):
    return os.path.join(root, 'skipped.txt')


def hr_path(root, split):
    return os.path.join(root, split, 'hr.lmdb')


def lr_path(root, split, scale):
    return os.path.join(root, split, f'lr_x{scale}.lmdb')


def prior_dir(root, split, scale):
    return os.path.join(root, split, f'priors_x{scale}')


def prior_path(root, split, scale, prior):
    return os.path.join(prior_dir(root, split, scale), f'{prior}.lmdb')


def parse(path):
    """The inverse of the paths above for a store: (root, scale or None, prior or None); None if `path` is
    not a store of this layout."""
    path = os.path.normpath(path[:-len('.partial')] if path.endswith('.partial') else path)
    name, parent = os.path.basename(path), os.path.basename(os.path.dirname(path))
    m = re.fullmatch(r'priors_x(\d+)', parent)
    if m and name.endswith('.lmdb'):
        return os.path.dirname(os.path.dirname(os.path.dirname(path))), int(m.group(1)), name[:-5]
    m = re.fullmatch(r'hr\.lmdb|lr_x(\d+)\.lmdb', name)
    if m:
        return os.path.dirname(os.path.dirname(path)), int(m.group(1)) if m.group(1) else None, None
    return None


def lr_scales(root, split):
    """The scales whose LR store exists under `<root>/<split>`."""
    found = [re.fullmatch(r'lr_x(\d+)\.lmdb', d) for d in os.listdir(os.path.join(root, split))]
    return sorted(int(m.group(1)) for m in found if m)
