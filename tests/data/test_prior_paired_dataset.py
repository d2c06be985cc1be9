"""PriorPairedDataset: items, augmentation alignment, collate, start-up checks, corrupt records."""
import json
import shutil
import struct
import zlib

import numpy as np
import pytest
import torch

from llvfsr_plugin.data.prior_paired_dataset import PriorPairedDataset, augment_arrays
from llvfsr_plugin.errors import OptionError, RecordError
from llvfsr_plugin.prep.layout import prior_path
from llvfsr_plugin.prep.pipeline import validate
from llvfsr_plugin.priors.contract import batch_keys
from llvfsr_plugin.priors.record import encode_record

from helpers import dataset_opt, demo_keys, tamper


def _copy(root, tmp_path):
    dst = str(tmp_path / 'copy')
    shutil.copytree(root, dst)
    return dst


def test_augmentation_keeps_maps_aligned():
    """An asymmetric pattern at LR size, upscaled exactly to mask, depth (2x) and HR (8x) sizes: after
    every flip/rot combination each map must still be the exact upscaling of the augmented LR."""
    base = np.zeros((8, 8), np.uint8)
    base[1, 1:6] = 1  # an L shape: no flip or transpose maps it onto itself
    base[1:4, 5] = 2
    up = lambda a, f: np.kron(a, np.ones((f, f), a.dtype))  # noqa: E731
    lr, hr = np.repeat(base[..., None], 3, 2).astype(np.float32), np.repeat(up(base, 8)[..., None], 3, 2)
    mask, depth = up(base, 2), up(base, 2).astype(np.float16) / 2
    seen = set()
    for hflip in (False, True):
        for vflip in (False, True):
            for rot in (False, True):
                h, lo, m, d = augment_arrays([hr.astype(np.float32), lr, mask, depth], hflip, vflip, rot)
                np.testing.assert_array_equal(up(lo[..., 0], 8), h[..., 0])
                np.testing.assert_array_equal(up(lo[..., 0].astype(np.uint8), 2), m)
                np.testing.assert_array_equal(m.astype(np.float16) / 2, d)
                seen.add(lo[..., 0].tobytes())
    assert len(seen) == 8  # the 8 dihedral transforms are all different: the test would see a mismatch


def test_dataset_items_and_collate(tiny_root):
    ds = PriorPairedDataset(dict(dataset_opt(tiny_root, 'train'), phase='train', scale=8))
    item = ds[0]
    assert item['lq'].shape == (3, 16, 16) and item['gt'].shape == (3, 128, 128)
    assert set(batch_keys(('caption', 'description', 'mask', 'depth'))) <= set(item)
    assert item['mask'].dtype == torch.int64 and item['depth'].shape == (1, 128, 128)  # the default prior_size
    batch = PriorPairedDataset.collate_fn([ds[i] for i in range(4)])
    t = batch['description_tokens']
    lengths = [ds[i]['description_tokens'].shape[0] for i in range(4)]
    assert t.shape == (4, max(lengths), 384)
    assert batch['description_token_mask'].sum(1).tolist() == lengths  # padding is masked out


def test_dataset_start_up_errors(tiny_root, tmp_path):
    base = dict(dataset_opt(tiny_root, 'train'), phase='train')
    with pytest.raises(OptionError, match=r"unknown prior name\(s\) \['dept'\].*did you mean 'depth'"):
        PriorPairedDataset(dict(base, priors=['caption', 'dept']))
    with pytest.raises(OptionError, match='computed from x8 LR images, but this run uses scale 16'):
        PriorPairedDataset(dict(base, scale=16))
    with pytest.raises(OptionError, match="holds prior 'mask'"):
        roots = dict(base['prior_roots'], depth=base['prior_roots']['mask'])
        PriorPairedDataset(dict(base, prior_roots=roots, scale=8))
    root = _copy(tiny_root, tmp_path)
    key = demo_keys('train', 8)[2]
    tamper(prior_path(root, 'train', 8, 'caption'), key)
    with pytest.raises(OptionError, match=rf"1 image key\(s\) missing in prior store .*caption.lmdb.*'{key}'"):
        PriorPairedDataset(dict(dataset_opt(root, 'train'), phase='train', scale=8))


def test_nan_prior_named_at_read(tiny_root, tmp_path):
    root = str(tmp_path / 'd')
    shutil.copytree(tiny_root, root)
    key = demo_keys('val', 4)[0]
    bad = np.full((64, 64), np.nan, np.float16)
    blob = encode_record({'depth': np.zeros((64, 64), np.float16)})  # then smuggle NaNs past the writer
    head_len = struct.unpack_from('<I', blob, 5)[0]
    header = json.loads(blob[9:9 + head_len])
    header['crc32'] = zlib.crc32(bad.tobytes())
    h = json.dumps(header, sort_keys=True).encode()
    tamper(prior_path(root, 'val', 8, 'depth'), key, b'LLVP1' + struct.pack('<I', len(h)) + h + bad.tobytes())
    ds = PriorPairedDataset(dict(dataset_opt(root, 'val'), phase='val', scale=8))
    idx = ds.keys.index(key)
    with pytest.raises(RecordError, match=rf"depth.lmdb\[{key}\].*NaN/inf"):
        ds[idx]
    assert any('NaN/inf' in p for p in validate(root, verbose=False))


def test_prior_store_from_another_extractor_refused(tiny_root):
    with pytest.raises(OptionError, match=r"made by extractor 'facemesh', but `prior_extractors.mask` asks "
                                                 r"for 'sam'"):
        PriorPairedDataset(dict(dataset_opt(tiny_root, 'val'), phase='val', scale=8, prior_extractors={'mask': 'sam'}))



def _forced(monkeypatch, draws):
    """np.random.random returns `draws` in order (hflip, vflip, rot90 decisions of __getitem__)."""
    it = iter(draws)
    monkeypatch.setattr(np.random, 'random', lambda: next(it))


@pytest.mark.parametrize('hflip, vflip, rot90, swapped', [(True, False, False, True), (False, True, False, True),
                                                          (True, True, False, False), (True, True, True, True)])
def test_mirrored_mask_swaps_left_and_right_labels(tiny_root, monkeypatch, hflip, vflip, rot90, swapped):
    """A mirrored face's left eye is the right eye: an odd number of reflections (hflip, vflip, transpose)
    swaps the left_* / right_* labels of the mask; an even number (a rotation) keeps them. Depth only moves."""
    from llvfsr_plugin.priors.contract import MASK_LABELS
    plain = PriorPairedDataset(dict(dataset_opt(tiny_root, 'val'), phase='val', scale=8))
    aug = PriorPairedDataset(dict(dataset_opt(tiny_root, 'val'), phase='train', scale=8, use_hflip=True, use_rot=True))
    swap = np.arange(len(MASK_LABELS))
    for a, b in (('left_brow', 'right_brow'), ('left_eye', 'right_eye')):
        i, j = MASK_LABELS.index(a), MASK_LABELS.index(b)
        swap[i], swap[j] = j, i
    checked = 0
    for idx in range(len(plain)):
        ref = plain[idx]
        _forced(monkeypatch, [0.0 if hflip else 0.9, 0.0 if vflip else 0.9, 0.0 if rot90 else 0.9])
        item = aug[idx]
        m, d = ref['mask'][0].numpy(), ref['depth'][0].numpy()
        m, d = augment_arrays([m, d], hflip, vflip, rot90)
        expect = swap[m] if swapped else m
        np.testing.assert_array_equal(item['mask'][0].numpy(), expect)
        np.testing.assert_array_equal(item['depth'][0].numpy(), d)
        left = MASK_LABELS.index('left_eye')
        checked += int((m == left).any())
    assert checked >= 3  # the faces really have labelled eyes: the swap was exercised


def test_prior_dropout_blanks_priors_in_training_only(tiny_root):
    always = dict(dataset_opt(tiny_root, 'train'), phase='train', scale=8, use_hflip=False,
                  prior_dropout={'caption': 1.0, 'mask': 1.0})
    item = PriorPairedDataset(always)[0]
    assert item['caption_tokens'].shape == (1, 384) and not item['caption_tokens'].any()
    assert item['caption_token_mask'].tolist() == [True] and not item['mask'].any()
    assert item['description_tokens'].shape[0] > 1 and item['depth'].any()  # the others untouched
    never = PriorPairedDataset(dict(always, prior_dropout=0))[0]
    val = PriorPairedDataset(dict(always, phase='val'))[0]
    for k in ('caption_tokens', 'mask'):
        assert torch.equal(never[k], val[k]) and val[k].any()  # no dropout at validation
    batch = PriorPairedDataset.collate_fn([item, never])  # a blank text pads like any short text
    assert batch['caption_token_mask'].sum(1).tolist() == [1, never['caption_tokens'].shape[0]]
    with pytest.raises(OptionError, match='prior_dropout must be a probability'):
        PriorPairedDataset(dict(always, prior_dropout=1.5))


def test_random_crop_keeps_maps_on_the_same_face_region(tiny_root):
    """gt_size: HR, LR and every map are cut from one face region (found back by locating the LR crop in the
    whole LR face); validation keeps whole faces; a gt_size that does not fit is named."""
    opt = dict(dataset_opt(tiny_root, 'train', use_hflip=False, gt_size=64), scale=8, phase='train')
    ds = PriorPairedDataset(opt)
    whole = PriorPairedDataset(dict(opt, phase='val'))
    np.random.seed(3)
    for i in range(3):
        it, full = ds[i], whole[i]
        assert it['gt'].shape == (3, 64, 64) and it['lq'].shape == (3, 8, 8)
        lr, hr = full['lq'].numpy(), full['gt'].numpy()
        hits = [(y, x) for y in range(lr.shape[1] - 7) for x in range(lr.shape[2] - 7)
                if np.array_equal(lr[:, y:y + 8, x:x + 8], it['lq'].numpy())]
        assert len(hits) == 1
        y, x = hits[0]
        assert np.array_equal(hr[:, y * 8:y * 8 + 64, x * 8:x * 8 + 64], it['gt'].numpy())
        f = full['mask'].shape[-1] // lr.shape[1]  # map pixels per LR pixel
        for p in ('mask', 'depth'):
            assert torch.equal(it[p], full[p][:, y * f:(y + 8) * f, x * f:(x + 8) * f])
    assert whole[0]['gt'].shape == (3, 128, 128)
    with pytest.raises(OptionError, match='gt_size 60 must be a multiple of scale 8'):
        PriorPairedDataset(dict(opt, gt_size=60))[0]
