"""Prep: HR/LR LMDBs and prior stores on real faces, validation, refused images named with the fix."""
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from llvfsr_plugin.errors import BadImage
from llvfsr_plugin.prep.images import decode_png, degrade, read_rgb
from llvfsr_plugin.prep.layout import hr_path, lr_path, prior_path
from llvfsr_plugin.prep.pipeline import validate
from llvfsr_plugin.priors.record import encode_record
from llvfsr_plugin.priors.store import PriorStore, Store

from helpers import DEMO, demo_keys, tamper


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
    tamper(prior_path(root, 'val', 8, 'mask'), key, encode_record({'mask': np.zeros((32, 32), np.uint8)}))
    problems = validate(root, verbose=False)
    assert any('depth.lmdb: 1 key(s) missing' in p and key in p for p in problems), problems
    assert any('mask.lmdb' in p and 'inconsistent' in p for p in problems), problems


@pytest.mark.parametrize('case', ['truncated', 'alpha', 'gray', 'nonsquare', 'indivisible'])
def test_bad_images_named_with_fix(tmp_path, case):
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

