"""Prep round trip, validation, PriorPairedDataset (augmentation alignment, collate, start-up checks)."""
import os
import shutil

import numpy as np
import pytest
import torch

from conftest import DEMO, dataset_opt, demo_keys, tamper
from llvfsr_plugin.data.prior_paired_dataset import DatasetOptionError, PriorPairedDataset, augment_arrays
from llvfsr_plugin.prep.images import decode_png, degrade, read_rgb
from llvfsr_plugin.prep.pipeline import hr_path, lr_path, prior_path, validate
from llvfsr_plugin.priors.record import (LMDB_META_KEY, RecordError, decode_record, encode_record, tensor_keys,
                                         text_arrays)
from llvfsr_plugin.priors.store import PriorStore, PriorWriter, Store


def test_record_roundtrip_and_corruption():
    arrays = text_arrays(np.random.rand(5, 8), np.array([1, 1, 1, 0, 0]), np.random.rand(8))
    blob = encode_record(arrays, {'text': 'a face', 'fallback': False})
    back, meta = decode_record(blob)
    assert meta['text'] == 'a face'
    for k in arrays:
        assert back[k].dtype == arrays[k].dtype and np.array_equal(back[k], arrays[k])
    assert encode_record(arrays, {'text': 'a face', 'fallback': False}) == blob  # deterministic bytes
    with pytest.raises(RecordError, match='checksum'):
        decode_record(blob[:-3] + b'xyz', where='k1')
    with pytest.raises(RecordError, match='bad magic'):
        decode_record(b'PNG....', where='k1')
    with pytest.raises(RecordError, match='NaN'):
        encode_record({'depth': np.array([[np.nan]], np.float16)})


def test_prep_roundtrip_real_faces(tiny_root):
    keys = demo_keys('train', 8)
    hr, lr = Store(hr_path(tiny_root, 'train')), Store(lr_path(tiny_root, 'train', 8))
    assert sorted(hr.keys()) == sorted(keys)
    for k in keys[:3]:
        ref_hr = read_rgb(os.path.join(DEMO, 'images', f'{k}.jpg'), allow_resize_to=128)
        assert np.array_equal(decode_png(hr.get_bytes(k)), ref_hr)  # PNG is lossless
        assert np.array_equal(decode_png(lr.get_bytes(k)), degrade(ref_hr, 8))
    meta_info = open(os.path.join(hr.path, 'meta_info.txt')).read().splitlines()
    assert len(meta_info) == 8 and meta_info[0].endswith('(128,128,3) 1')
    cap = PriorStore(prior_path(tiny_root, 'train', 8, 'caption'))
    arrays, rmeta = cap.get(keys[0])
    first_line = open(os.path.join(DEMO, 'text', f'{keys[0]}.txt')).readline().strip()
    assert rmeta['text'] == first_line and arrays['tokens'].shape[1] == 384
    assert cap.meta['oracle'] is True and cap.meta['text_encoder'] == 'minilm' and cap.meta['scale'] == 8
    assert validate(tiny_root, verbose=False) == []


def _copy(root, tmp_path):
    dst = str(tmp_path / 'copy')
    shutil.copytree(root, dst)
    return dst


def test_validate_catches_deleted_key_and_wrong_shape(tiny_root, tmp_path):
    root = _copy(tiny_root, tmp_path)
    key = demo_keys('val', 4)[1]
    tamper(prior_path(root, 'val', 8, 'depth'), key)
    tamper(prior_path(root, 'val', 8, 'mask'), key, encode_record({'labels': np.zeros((32, 32), np.uint8)}))
    problems = validate(root, verbose=False)
    assert any('depth.lmdb: 1 key(s) missing' in p and key in p for p in problems), problems
    assert any('mask.lmdb' in p and 'inconsistent' in p for p in problems), problems


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
                h, l, m, d = augment_arrays([hr.astype(np.float32), lr, mask, depth], hflip, vflip, rot)
                np.testing.assert_array_equal(up(l[..., 0], 8), h[..., 0])
                np.testing.assert_array_equal(up(l[..., 0].astype(np.uint8), 2), m)
                np.testing.assert_array_equal(m.astype(np.float16) / 2, d)
                seen.add(l[..., 0].tobytes())
    assert len(seen) == 8  # the 8 dihedral transforms are all different: the test would see a mismatch


def test_dataset_items_and_collate(tiny_root):
    ds = PriorPairedDataset(dict(dataset_opt(tiny_root, 'train'), phase='train', scale=8))
    item = ds[0]
    assert item['lq'].shape == (3, 16, 16) and item['gt'].shape == (3, 128, 128)
    assert set(sum((tensor_keys(p) for p in ('caption', 'description', 'mask', 'depth')), [])) <= set(item)
    assert item['mask'].dtype == torch.int64 and item['depth'].shape == (1, 64, 64)
    batch = PriorPairedDataset.collate_fn([ds[i] for i in range(4)])
    t = batch['description_tokens']
    lengths = [ds[i]['description_tokens'].shape[0] for i in range(4)]
    assert t.shape == (4, max(lengths), 384)
    assert batch['description_token_mask'].sum(1).tolist() == lengths  # padding is masked out


def test_dataset_start_up_errors(tiny_root, tmp_path):
    base = dict(dataset_opt(tiny_root, 'train'), phase='train')
    with pytest.raises(DatasetOptionError, match=r"unknown prior name\(s\) \['dept'\].*did you mean 'depth'"):
        PriorPairedDataset(dict(base, priors=['caption', 'dept']))
    with pytest.raises(DatasetOptionError, match='computed from x8 LR images, but this run uses scale 16'):
        PriorPairedDataset(dict(base, scale=16))
    with pytest.raises(DatasetOptionError, match="holds prior 'mask'"):
        roots = dict(base['prior_roots'], depth=base['prior_roots']['mask'])
        PriorPairedDataset(dict(base, prior_roots=roots, scale=8))
    root = _copy(tiny_root, tmp_path)
    key = demo_keys('train', 8)[2]
    tamper(prior_path(root, 'train', 8, 'caption'), key)
    with pytest.raises(DatasetOptionError, match=rf"1 image key\(s\) missing in prior store .*caption.lmdb.*'{key}'"):
        PriorPairedDataset(dict(dataset_opt(root, 'train'), phase='train', scale=8))


def test_writer_is_atomic_and_resumable(tmp_path):
    path = str(tmp_path / 'depth.lmdb')
    meta = {'prior': 'depth', 'extractor': 'x', 'scale': 8}
    rec = {'depth': np.zeros((4, 4), np.float16)}
    w = PriorWriter(path, meta)
    w.put_records([('a', rec, {}), ('b', rec, {})])
    w.kv.close()  # "killed" before finalize
    with pytest.raises(FileNotFoundError, match='interrupted'):
        PriorStore(path)
    w = PriorWriter(path, meta)  # resumes
    assert w.has('a') and w.has('b') and not w.has('c')
    with pytest.raises(RecordError, match='still missing'):
        w.finalize(['a', 'b', 'c'])
    w.put_records([('c', rec, {})])
    w.finalize(['a', 'b', 'c'])
    s = PriorStore(path)
    assert s.keys() == ['a', 'b', 'c'] and s.meta['num_records'] == 3
    with pytest.raises(RecordError, match='other settings'):
        w = PriorWriter(str(tmp_path / 'x.lmdb'), meta)
        w.kv.close()
        PriorWriter(str(tmp_path / 'x.lmdb'), dict(meta, scale=16))
    assert LMDB_META_KEY not in [k.encode() for k in s.keys()]



def test_store_rebuilt_in_place_is_read_fresh(tmp_path):
    """A store rebuilt (--overwrite) at the same path while this process still reads the old one: readers
    see the new records, not the deleted file, and nothing is refused as 'already open'."""
    path = str(tmp_path / 'depth.lmdb')
    meta = {'prior': 'depth', 'extractor': 'x', 'scale': 8}
    old, new = ({'depth': np.full((4, 4), v, np.float16)} for v in (1, 2))
    w = PriorWriter(path, meta)
    w.put_records([('a', old, {})])
    w.finalize(['a'])
    reader = PriorStore(path)
    assert reader.get('a')[0]['depth'][0, 0] == 1
    w = PriorWriter(path, meta, overwrite=True)
    w.put_records([('a', new, {}), ('b', new, {})])
    w.finalize(['a', 'b'])
    for s in (reader, PriorStore(path)):
        assert s.keys() == ['a', 'b'] and s.get('a')[0]['depth'][0, 0] == 2
    abandoned = PriorWriter(str(tmp_path / 'y.lmdb'), meta)  # error path: released without finalizing
    abandoned.close()
    w = PriorWriter(str(tmp_path / 'y.lmdb'), meta)
    w.finalize([])
    assert PriorStore(str(tmp_path / 'y.lmdb')).keys() == []

@pytest.mark.parametrize('case', ['truncated', 'alpha', 'gray', 'nonsquare', 'indivisible'])
def test_bad_images_named_with_fix(tmp_path, case):
    from PIL import Image
    from llvfsr_plugin.prep.images import BadImage
    src = os.path.join(DEMO, 'images', demo_keys('train', 1)[0] + '.jpg')
    p = str(tmp_path / f'{case}.png')
    img = Image.open(src)
    if case == 'truncated':
        p = str(tmp_path / 'bad.jpg')
        open(p, 'wb').write(open(src, 'rb').read()[:5000])
    elif case == 'alpha':
        img.convert('RGBA').save(p)
    elif case == 'gray':
        img.convert('L').save(p)
    elif case == 'nonsquare':
        img.crop((0, 0, 256, 200)).save(p)
    else:
        img.crop((0, 0, 250, 250)).save(p)
    with pytest.raises(BadImage) as e:
        read_rgb(p, allow_resize_to=None, scales=[8, 16])
    msg = str(e.value)
    assert msg.startswith(p) and ('--on-error skip' in msg or '--hr-size' in msg)
    assert {'truncated': 'truncated', 'alpha': 'alpha', 'gray': 'grayscale', 'nonsquare': 'not square',
            'indivisible': 'not divisible'}[case] in msg
