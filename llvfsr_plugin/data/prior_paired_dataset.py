"""PriorPairedDataset: LR/HR pairs (BasicSR LMDB or folders) plus precomputed priors (Sec. 3.3).

Options (YAML `datasets: train:`; `llvfsr_plugin.options.dataset_opt` builds them):
    type: PriorPairedDataset
    dataroot_gt / dataroot_lq: BasicSR LMDBs (`io_backend: {type: lmdb}`) or folders (`type: disk`)
    filename_tmpl: '{}'                 # folders: lq name template, as in PairedImageDataset
    priors: [caption, description, mask, depth]   # names of the prior contract; [] for baselines
    prior_roots: {caption: path.lmdb, ...}        # one store per prior (LMDB dir or folder of .llvp)
    prior_extractors: {mask: facemesh, ...}       # optional: refuse stores made by another extractor
    gt_size: 128                        # train only, optional: random HR crops of this side (LR crops of
        gt_size / scale) with every map prior cropped to the same face region; whole faces when unset
    use_hflip / use_rot: augment LR, HR and every map prior identically (text is unchanged); a mirrored
        label map gets its left_* / right_* labels swapped
    prior_dropout: 0.1 or {caption: 0.3, ...}   # train only: each prior of a sample is blanked with this
        probability (`contract.blank_like`), so one network also answers "without X" and runs without text
    scale: filled in by BasicSR from the top-level `scale`
Returns `lq`, `gt` (float [3, H, W], RGB, [0, 1]), `lq_path`, `gt_path`, `key` and each prior's batch
tensors (`contract.PriorSpec.batch_keys`). `collate_fn` pads text tokens to the longest in the batch.
Everything that can be checked is checked at construction: missing keys, meta vs scale, LR/HR sizes.
"""
import os

import cv2
import numpy as np
from torch.utils import data as data

from basicsr.data.data_util import paired_paths_from_folder, paired_paths_from_lmdb
from basicsr.utils import imfrombytes, img2tensor
from basicsr.utils.registry import DATASET_REGISTRY
from llvfsr_plugin.errors import OptionError
from llvfsr_plugin.priors.contract import (
    PRIORS,
    blank_like,
    canonical,
    check_prior_names,
    collate,
    mirror_permutation,
    to_tensors,
)
from llvfsr_plugin.priors.store import PriorStore, Store, provenance_problem


def crop_region(a, top, left, size, lr_side):
    """The part of map `a` (any side) covering the LR crop [top, top + size) x [left, left + size) of an LR
    image `lr_side` pixels high and wide, at the map's own resolution (resized when the map grid does not divide
    evenly, so every crop of one store has one shape)."""
    f = a.shape[0] / lr_side
    y0, x0, n = round(top * f), round(left * f), max(1, round(size * f))
    out = a[y0:y0 + n, x0:x0 + n]
    if out.shape[:2] != (n, n):
        out = cv2.resize(np.ascontiguousarray(a), (round(lr_side * f),) * 2)[y0:y0 + n, x0:x0 + n]
    return np.ascontiguousarray(out)


def augment_arrays(arrays, hflip, vflip, rot90):
    """The same flips / transpose on every HxW(xC) array (BasicSR's `augment` convention)."""
    out = []
    for a in arrays:
        if hflip:
            a = a[:, ::-1]
        if vflip:
            a = a[::-1]
        if rot90:
            a = a.transpose(1, 0, *range(2, a.ndim))
        out.append(np.ascontiguousarray(a))
    return out


@DATASET_REGISTRY.register()
class PriorPairedDataset(data.Dataset):

    collate_fn = staticmethod(collate)

    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        name = opt.get('name', 'PriorPairedDataset')
        self.where = f'dataset {name!r}'
        self.lmdb = opt.get('io_backend', {'type': 'disk'})['type'] == 'lmdb'
        self.scale = opt.get('scale')
        for k in ('dataroot_gt', 'dataroot_lq'):
            if not opt.get(k):
                raise OptionError(f'{self.where}: option `{k}` is required')
            if not os.path.exists(opt[k]):
                raise OptionError(f'{self.where}: `{k}` not found: {opt[k]} (build it with '
                                  f'datasets_prep/make_dataset.py)')
        self.gt_folder, self.lq_folder = opt['dataroot_gt'], opt['dataroot_lq']
        if self.lmdb:
            self.img_stores = {'lq': Store(self.lq_folder), 'gt': Store(self.gt_folder)}
            self.paths = paired_paths_from_lmdb([self.lq_folder, self.gt_folder], ['lq', 'gt'])
        else:
            self.paths = paired_paths_from_folder([self.lq_folder, self.gt_folder], ['lq', 'gt'],
                                                  opt.get('filename_tmpl', '{}'))
        if not self.paths:
            raise OptionError(f'{self.where}: no images in {self.lq_folder}')
        self.keys = [os.path.splitext(os.path.basename(p['lq_path']))[0] for p in self.paths]

        requested = list(opt.get('priors') or ())
        check_prior_names(requested, f'{self.where} option `priors`')
        self.priors = canonical(requested)
        roots = dict(opt.get('prior_roots') or {})
        check_prior_names(list(roots), f'{self.where} option `prior_roots`')
        self.stores = {}
        for p in self.priors:
            if p not in roots:
                raise OptionError(f'{self.where}: prior {p!r} is listed in `priors` but has no path in '
                                  f'`prior_roots`')
            self.stores[p] = PriorStore(roots[p])
        drop = opt.get('prior_dropout') or 0
        self.dropout = {p: float(drop.get(p, 0) if isinstance(drop, dict) else drop) for p in self.priors}
        bad = {p: v for p, v in self.dropout.items() if not 0 <= v <= 1}
        if bad or (isinstance(drop, dict) and set(drop) - set(self.priors)):
            raise OptionError(f'{self.where}: prior_dropout must be a probability in [0, 1] (or a mapping of the '
                              f'dataset\'s priors to one), got {drop!r}')
        self._check_consistency()
        self.maps = [p for p in self.priors if PRIORS[p].kind == 'map']  # augmented with the images
        # label maps whose labels have a side: mirroring the face swaps left_* and right_*
        self.mirror = {p: mirror_permutation(self.stores[p].meta) for p in self.maps if PRIORS[p].values == 'labels'}

    # ------------------------------------------------------------------------------------ start-up checks
    def _check_consistency(self):
        keyset = set(self.keys)
        lq, gt = (self.img_stores['lq'], self.img_stores['gt']) if self.lmdb else (None, None)
        pairs = [(lq, gt, 'hr_sha256')] + [(s, lq, 'lr_sha256') for s in self.stores.values()] if self.lmdb else []
        for derived, source, field in pairs:
            problem = provenance_problem(derived, source, field)
            if problem:
                raise OptionError(f'{self.where}: {problem}; point the options at stores made together '
                                  f'(datasets_prep/make_dataset.py, extract_priors.py)')
        expect = dict(self.opt.get('prior_extractors') or {})
        for p, store in self.stores.items():
            meta = store.meta
            if p in expect and meta.get('extractor') != expect[p]:
                raise OptionError(f'{self.where}: {store.path} was made by extractor {meta.get("extractor")!r}, '
                                  f'but `prior_extractors.{p}` asks for {expect[p]!r}; point prior_roots.{p} at '
                                  f'a store made by it')
            if meta.get('prior') != p:
                raise OptionError(f'{self.where}: {store.path} holds prior {meta.get("prior")!r}, '
                                  f'but `prior_roots.{p}` points at it')
            if self.scale is not None and meta.get('scale') not in (None, self.scale):
                raise OptionError(
                    f'{self.where}: {store.path} was computed from x{meta["scale"]} LR images, but this run '
                    f'uses scale {self.scale}; priors come from the LR image, so use the x{self.scale} store')
            missing = sorted(keyset - set(store.keys()))
            if missing:
                raise OptionError(f'{self.where}: {len(missing)} image key(s) missing in prior store '
                                  f'{store.path}, e.g. {missing[:5]}; rerun the prior extraction')
        # LR/HR scale from the first pair (BasicSR's meta_info has sizes for LMDBs)
        lq, gt = self._load_pair(0)
        if self.scale is not None and (gt.shape[0] != lq.shape[0] * self.scale or
                                       gt.shape[1] != lq.shape[1] * self.scale):
            raise OptionError(f'{self.where}: HR {gt.shape[:2]} is not x{self.scale} of LR {lq.shape[:2]} '
                              f'for key {self.keys[0]!r}; check dataroot_lq/dataroot_gt and `scale`')

    def prior_meta(self):
        """{prior: store meta}: how each prior of this dataset was made."""
        return {p: s.meta for p, s in self.stores.items()}

    @staticmethod
    def store_meta(opt):
        """{prior: store meta} of the stores a dataset option names, without building the dataset (stores that
        cannot be read are left out: the dataset reports them, naming itself)."""
        out = {}
        for p, path in (opt.get('prior_roots') or {}).items():
            try:
                out[p] = PriorStore(path).meta
            except (OSError, ValueError):
                pass
        return out

    @staticmethod
    def lr_size(opt):
        """The side of the (square) LR images a dataset option names, from the LMDB's meta_info.txt or the
        first image of a folder; None when it cannot be read."""
        lq = opt.get('dataroot_lq') or ''
        try:
            if os.path.isfile(os.path.join(lq, 'meta_info.txt')):
                with open(os.path.join(lq, 'meta_info.txt')) as f:
                    return int(f.readline().split('(')[1].split(',')[0])
            first = sorted(os.listdir(lq))[0]
            return cv2.imread(os.path.join(lq, first), cv2.IMREAD_UNCHANGED).shape[0]
        except (OSError, IndexError, ValueError, AttributeError):
            return None

    # ------------------------------------------------------------------------------------------- loading
    def _load_pair(self, index):
        paths = self.paths[index]
        imgs = []
        for which in ('lq', 'gt'):
            where = paths[f'{which}_path']
            try:
                if self.lmdb:  # our Store shares one read-only env per path per process (py-lmdb needs that)
                    raw = self.img_stores[which].get_bytes(where)
                else:
                    with open(where, 'rb') as f:
                        raw = f.read()
            except (KeyError, OSError) as e:
                raise IOError(f'{self.where}: cannot read {which} image {where!r}: {e}') from e
            img = imfrombytes(raw, float32=True) if raw else None
            if img is None:
                raise IOError(f'{self.where}: cannot decode {which} image {where!r}')
            imgs.append(img)
        return imgs

    def __getitem__(self, index):
        key = self.keys[index]
        img_lq, img_gt = self._load_pair(index)
        arrays = {p: self.stores[p].get(key)[0] for p in self.priors}
        train = self.opt.get('phase') == 'train'
        if train and self.opt.get('gt_size'):
            img_gt, img_lq = self._random_crop(img_gt, img_lq, arrays, key)
        if train:
            hflip = self.opt.get('use_hflip', False) and np.random.random() < 0.5
            rot = self.opt.get('use_rot', False)
            vflip, rot90 = rot and np.random.random() < 0.5, rot and np.random.random() < 0.5
            img_gt, img_lq, *flipped = augment_arrays([img_gt, img_lq] + [arrays[p][p] for p in self.maps],
                                                      hflip, vflip, rot90)
            mirrored = (hflip + vflip + rot90) % 2 == 1  # an odd number of reflections swaps left and right
            for p, a in zip(self.maps, flipped):
                perm = self.mirror.get(p)
                arrays[p] = {p: perm[a] if mirrored and perm is not None else a}
        img_gt, img_lq = img2tensor([img_gt, img_lq], bgr2rgb=True, float32=True)
        out = {'lq': img_lq, 'gt': img_gt, 'lq_path': self.paths[index]['lq_path'],
               'gt_path': self.paths[index]['gt_path'], 'key': key}
        for p in self.priors:
            t = to_tensors(p, arrays[p])
            out.update(blank_like(p, t) if train and self.dropout[p] and np.random.random() < self.dropout[p] else t)
        return out

    def _random_crop(self, img_gt, img_lq, arrays, key):
        """A random gt_size crop of HR, the matching LR crop, and the same face region of every map (in place)."""
        scale, gt_size = self.scale or img_gt.shape[0] // img_lq.shape[0], int(self.opt['gt_size'])
        size = gt_size // scale
        h, w = img_lq.shape[:2]
        if gt_size % scale or size > min(h, w):
            raise OptionError(f'{self.where}: gt_size {gt_size} must be a multiple of scale {scale} and at most the HR '
                              f'size {h * scale} (image {key!r})')
        top, left = np.random.randint(0, h - size + 1), np.random.randint(0, w - size + 1)
        for p in self.maps:
            arrays[p] = {p: crop_region(arrays[p][p], top, left, size, h)}
        return (img_gt[top * scale:(top + size) * scale, left * scale:(left + size) * scale],
                img_lq[top:top + size, left:left + size])

    def __len__(self):
        return len(self.paths)
