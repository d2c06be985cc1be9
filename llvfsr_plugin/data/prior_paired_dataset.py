"""PriorPairedDataset: LR/HR pairs (BasicSR LMDB or folders) plus precomputed priors (Sec. 3.3).

Options (YAML `datasets: train:`):
    type: PriorPairedDataset
    dataroot_gt / dataroot_lq: BasicSR LMDBs (`io_backend: {type: lmdb}`) or folders (`type: disk`)
    filename_tmpl: '{}'                 # folders: lq name template, as in PairedImageDataset
    priors: [caption, description, mask, depth]   # any subset; [] for baselines
    prior_roots: {caption: path.lmdb, ...}        # one store per prior (LMDB dir or folder of .llvp)
    prior_extractors: {mask: facemesh, ...}       # optional: refuse stores made by another extractor
    use_hflip / use_rot: augment LR, HR, mask and depth identically (text is unchanged)
    scale: filled in by BasicSR from the top-level `scale`
Returns `lq`, `gt` (float [3, H, W], RGB, [0, 1]), `lq_path`, `gt_path` and the prior tensors named by
`llvfsr_plugin.priors.record.tensor_keys`. `collate_fn` pads text tokens to the longest in the batch.
Everything that can be checked is checked at construction: missing keys, meta vs scale, LR/HR sizes.
"""
import difflib
import os

import numpy as np
import torch
from torch.utils import data as data

from basicsr.data.data_util import paired_paths_from_folder, paired_paths_from_lmdb
from basicsr.utils import imfrombytes, img2tensor
from basicsr.utils.registry import DATASET_REGISTRY
from llvfsr_plugin.priors.record import PRIOR_NAMES, TEXT_PRIORS, arrays_to_tensors, tensor_keys
from llvfsr_plugin.priors.store import PriorStore, Store


class DatasetOptionError(ValueError):
    pass


def check_prior_names(names, where):
    bad = [n for n in names if n not in PRIOR_NAMES]
    if bad:
        hints = {n: difflib.get_close_matches(n, PRIOR_NAMES, n=1) for n in bad}
        hint = '; '.join(f'{n!r} -> did you mean {h[0]!r}?' for n, h in hints.items() if h)
        raise DatasetOptionError(f'{where}: unknown prior name(s) {bad}. Known: {list(PRIOR_NAMES)}. {hint}')


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

    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        name = opt.get('name', 'PriorPairedDataset')
        self.where = f'dataset {name!r}'
        self.lmdb = opt.get('io_backend', {'type': 'disk'})['type'] == 'lmdb'
        self.scale = opt.get('scale')
        for k in ('dataroot_gt', 'dataroot_lq'):
            if not opt.get(k):
                raise DatasetOptionError(f'{self.where}: option `{k}` is required')
            if not os.path.exists(opt[k]):
                raise DatasetOptionError(f'{self.where}: `{k}` not found: {opt[k]} (build it with '
                                         f'datasets_prep/make_dataset.py)')
        self.gt_folder, self.lq_folder = opt['dataroot_gt'], opt['dataroot_lq']
        if self.lmdb:
            self.img_stores = {'lq': Store(self.lq_folder), 'gt': Store(self.gt_folder)}
            self.paths = paired_paths_from_lmdb([self.lq_folder, self.gt_folder], ['lq', 'gt'])
        else:
            self.paths = paired_paths_from_folder([self.lq_folder, self.gt_folder], ['lq', 'gt'],
                                                  opt.get('filename_tmpl', '{}'))
        if not self.paths:
            raise DatasetOptionError(f'{self.where}: no images in {self.lq_folder}')
        self.keys = [os.path.splitext(os.path.basename(p['lq_path']))[0] for p in self.paths]

        self.priors = tuple(opt.get('priors') or ())
        check_prior_names(self.priors, f'{self.where} option `priors`')
        roots = dict(opt.get('prior_roots') or {})
        check_prior_names(list(roots), f'{self.where} option `prior_roots`')
        self.stores = {}
        for p in self.priors:
            if p not in roots:
                raise DatasetOptionError(f'{self.where}: prior {p!r} is listed in `priors` but has no path in '
                                         f'`prior_roots`')
            self.stores[p] = PriorStore(roots[p])
        self._check_consistency()

    # ------------------------------------------------------------------------------------ start-up checks
    def _check_consistency(self):
        keyset = set(self.keys)
        expect = dict(self.opt.get('prior_extractors') or {})
        for p, store in self.stores.items():
            meta = store.meta
            if p in expect and meta.get('extractor') != expect[p]:
                raise DatasetOptionError(f'{self.where}: {store.path} was made by extractor '
                                         f'{meta.get("extractor")!r}, but `prior_extractors.{p}` asks for '
                                         f'{expect[p]!r}; point prior_roots.{p} at a store made by it')
            if meta.get('prior') != p:
                raise DatasetOptionError(f'{self.where}: {store.path} holds prior {meta.get("prior")!r}, '
                                         f'but `prior_roots.{p}` points at it')
            if self.scale is not None and meta.get('scale') not in (None, self.scale):
                raise DatasetOptionError(
                    f'{self.where}: {store.path} was computed from x{meta["scale"]} LR images, but this run '
                    f'uses scale {self.scale}; priors come from the LR image, so use the x{self.scale} store')
            missing = sorted(keyset - set(store.keys()))
            if missing:
                raise DatasetOptionError(f'{self.where}: {len(missing)} image key(s) missing in prior store '
                                         f'{store.path}, e.g. {missing[:5]}; rerun the prior extraction')
        # LR/HR scale from the first pair (BasicSR's meta_info has sizes for LMDBs)
        lq, gt = self._load_pair(0)
        if self.scale is not None and (gt.shape[0] != lq.shape[0] * self.scale or
                                       gt.shape[1] != lq.shape[1] * self.scale):
            raise DatasetOptionError(f'{self.where}: HR {gt.shape[:2]} is not x{self.scale} of LR {lq.shape[:2]} '
                                     f'for key {self.keys[0]!r}; check dataroot_lq/dataroot_gt and `scale`')

    def prior_meta(self):
        """{prior: store meta}: used by LLVFSRModel to check the network options."""
        return {p: s.meta for p, s in self.stores.items()}

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
        loaded = {p: self.stores[p].get(key)[0] for p in self.priors}
        maps = [loaded['mask']['labels'] if 'mask' in loaded else None,
                loaded['depth']['depth'] if 'depth' in loaded else None]
        if self.opt.get('phase') == 'train':
            hflip = self.opt.get('use_hflip', False) and np.random.random() < 0.5
            rot = self.opt.get('use_rot', False)
            vflip, rot90 = rot and np.random.random() < 0.5, rot and np.random.random() < 0.5
            present = [m for m in maps if m is not None]
            img_gt, img_lq, *present = augment_arrays([img_gt, img_lq, *present], hflip, vflip, rot90)
            it = iter(present)
            maps = [next(it) if m is not None else None for m in maps]
        if maps[0] is not None:
            loaded['mask'] = {'labels': maps[0]}
        if maps[1] is not None:
            loaded['depth'] = {'depth': maps[1]}
        img_gt, img_lq = img2tensor([img_gt, img_lq], bgr2rgb=True, float32=True)
        out = {'lq': img_lq, 'gt': img_gt, 'lq_path': self.paths[index]['lq_path'],
               'gt_path': self.paths[index]['gt_path'], 'key': key}
        for p in self.priors:
            out.update(arrays_to_tensors(p, loaded[p]))
        return out

    def __len__(self):
        return len(self.paths)

    @staticmethod
    def collate_fn(batch):
        """Default collate, except text tokens/masks are right-padded to the longest in the batch."""
        batch = [dict(b) for b in batch]
        for p in TEXT_PRIORS:
            tk, mk = f'{p}_tokens', f'{p}_token_mask'
            if tk not in batch[0]:
                continue
            t_max = max(b[tk].shape[0] for b in batch)
            for b in batch:
                pad = t_max - b[tk].shape[0]
                if pad:
                    b[tk] = torch.nn.functional.pad(b[tk], (0, 0, 0, pad))
                    b[mk] = torch.nn.functional.pad(b[mk], (0, pad), value=False)
        return torch.utils.data.default_collate(batch)


def prior_batch_keys(priors):
    """Tensor names a batch holds for `priors` (used by LLVFSRModel.feed_data)."""
    return [k for p in priors for k in tensor_keys(p)]
