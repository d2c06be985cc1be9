"""Prep: HR/LR LMDBs and prior stores on real faces, validation, refused images named with the fix."""
import json
import os
import shutil

import numpy as np
import pytest
import yaml
from PIL import Image

from llvfsr_plugin.errors import BadImage
from llvfsr_plugin.prep.images import decode_png, degrade, read_rgb
from llvfsr_plugin.prep.layout import hr_path, lr_path, prior_path
from llvfsr_plugin.prep.pipeline import validate
from llvfsr_plugin.priors.record import encode_record
from llvfsr_plugin.priors.store import PriorStore, Store

from helpers import DEMO, ROOT, demo_keys, tamper


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


def test_a_second_prep_process_stops_at_once_or_waits_for_the_first(tmp_path, capsys):
    """Without `wait` a second prep process on a root stops at once (PrepBusy, nothing written); with it, it says
    once that it waits, then preps when the first ends (processes started together on one root)."""
    import fcntl
    import threading
    import time

    from llvfsr_plugin.errors import PrepBusy
    from llvfsr_plugin.prep.pipeline import make_image_lmdbs
    root = str(tmp_path / 'data')
    os.makedirs(root)
    files = {'train': [(k, os.path.join(DEMO, 'images', f'{k}.jpg')) for k in demo_keys('train', 2)]}
    holder = open(os.path.join(root, '.prep.lock'), 'a+')
    holder.write('4242')
    holder.flush()
    fcntl.flock(holder, fcntl.LOCK_EX)  # another open file: to flock, another prep process
    with pytest.raises(PrepBusy, match=r'another prep process \(pid 4242\).*--wait'):
        make_image_lmdbs(files, root, [8], workers=1)
    assert not os.path.exists(hr_path(root, 'train'))
    threading.Timer(1.0, lambda: fcntl.flock(holder, fcntl.LOCK_UN)).start()
    t = time.perf_counter()
    make_image_lmdbs(files, root, [8], workers=1, wait=True)
    assert time.perf_counter() - t >= 0.9
    assert capsys.readouterr().out.count('(pid 4242) is writing this dataset; waiting for it') == 1
    assert sorted(Store(hr_path(root, 'train')).keys()) == sorted(k for k, _ in files['train'])
    assert open(os.path.join(root, '.prep.lock')).read() == str(os.getpid())  # the waiter took the lock
    holder.close()


def test_maps_of_faces_a_learned_extractor_may_have_seen_are_flagged_and_recorded(tmp_path, capsys):
    """LandmarkNet draws better maps for the faces it trained on (1.2 vs 1.9 px at x8, benchmarks/
    landmark_net_seen.py): prep says so in one warning and records the count in the store meta (and so in the
    provenance of a checkpoint trained on them); faces it left out (the bundled ones) pass silently."""
    from llvfsr_plugin.prep.pipeline import extract_priors, make_image_lmdbs
    from llvfsr_plugin.priors.extractors import build_extractor
    root = str(tmp_path / 'data')
    unseen = demo_keys('train', 3)  # the bundled faces are in the shipped net's excluded keys
    files = {'train': [(k, os.path.join(DEMO, 'images', f'{k}.jpg')) for k in unseen]
             + [(f'photo{i}', os.path.join(DEMO, 'images', f'{k}.jpg')) for i, k in enumerate(unseen[:2])],
             'val': [(k, os.path.join(DEMO, 'images', f'{k}.jpg')) for k in demo_keys('val', 2)]}
    make_image_lmdbs(files, root, [8], hr_size=128, workers=1)
    extractors = {p: build_extractor(p, 'landmark-net', prior_size=32) for p in ('mask', 'depth')}
    extract_priors(root, ['train', 'val'], [8], extractors)
    out = capsys.readouterr().out
    assert out.count('[priors] warning:') == 2  # train mask and depth; the val faces are all unseen
    assert 'train/x8/mask: the landmark-net extractor may have been trained on 2 of these 5 faces' in out
    for prior in ('mask', 'depth'):
        assert PriorStore(prior_path(root, 'train', 8, prior)).meta['possibly_seen'] == 2
        assert 'possibly_seen' not in PriorStore(prior_path(root, 'val', 8, prior)).meta


def test_release_faces_for_landmark_net_maps_are_ones_it_never_saw():
    """The tail_lm releases train on datasets_prep/splits/celebahq256_unseen_by_landmark_net.json: train faces of
    celebahq256 that the shipped LandmarkNet left out."""
    from llvfsr_plugin.priors.extractors.landmark_extractors import load_landmark_net
    split = json.load(open(os.path.join(ROOT, 'datasets_prep', 'splits', 'celebahq256_unseen_by_landmark_net.json')))
    assert list(split) == ['train'] and len(split['train']) == 1000 == len(set(split['train']))
    assert set(split['train']) <= set(load_landmark_net().meta['excluded_keys'])
    for scale in (8, 16):
        opt = yaml.safe_load(open(os.path.join(ROOT, 'options', 'release',
                                               f'train_LLVFSR_tail_lm_x{scale}_celebahq256.yml')))
        assert opt['datasets']['train']['dataroot_gt'] == 'datasets/celebahq256_lm/train/hr.lmdb'
        assert opt['network_g']['prior_tail'] and opt['network_g']['prior_tail_dim'] == 8
