"""The `landmark-net` map extractor: the shipped LandmarkNet reads unseen real LR faces better than the mean face
does, paints maps of the contract, is rebuilt from a store's meta, and is made by datasets_prep/
train_landmark_net.py (faces of an excluded root left out, flips that mirror the mesh)."""
import os
import shutil
import sys

import numpy as np
import pytest
import torch

from llvfsr_plugin.errors import CheckpointError
from llvfsr_plugin.prep.images import degrade, read_rgb
from llvfsr_plugin.priors.contract import MASK_LABELS
from llvfsr_plugin.priors.extractors import Sample, build_extractor
from llvfsr_plugin.priors.extractors.landmark_extractors import (
    LANDMARK_NET,
    LandmarkNet,
    LandmarkNetRunner,
    load_landmark_net,
)
from llvfsr_plugin.priors.extractors.map_extractors import FaceMeshRunner
from llvfsr_plugin.restorer import extractor_options

from helpers import DEMO, ROOT, demo_keys

sys.path.insert(0, os.path.join(ROOT, 'datasets_prep'))
import train_landmark_net as T  # noqa: E402


def _hr(key):
    return read_rgb(os.path.join(DEMO, 'images', f'{key}.jpg'), allow_resize_to=256)


@pytest.fixture(scope='module')
def demo_landmarks():
    """FaceMesh on the HR demo faces (the reference the net was trained toward) and their x8 / x16 LR faces."""
    mesh = FaceMeshRunner.get(upsample_to=256)
    out = []
    for key in demo_keys('val') + demo_keys('train')[:12]:
        hr = _hr(key)
        lm = mesh.landmarks(None, hr)
        if lm is not None:
            out.append((key, lm, {s: degrade(hr, s) for s in (8, 16)}))
    return out


def test_shipped_net_reads_unseen_lr_faces_better_than_the_mean_face(demo_landmarks):
    """The bundled faces are faces the shipped net never saw (its meta lists them as excluded); on them its
    landmarks from the 16 px and 32 px LR faces are much nearer FaceMesh on the HR face than the mean shape."""
    net = load_landmark_net()
    excluded = set(net.meta['excluded_keys'])
    assert {k for k, _, _ in demo_landmarks} <= excluded
    assert len(demo_landmarks) >= 10
    mean = net.shape_mean.view(-1, 3).double().numpy()
    runner = LandmarkNetRunner.get()
    for scale in (8, 16):
        err, err_mean = [], []
        for key, ref, lrs in demo_landmarks:
            pred = runner.landmarks(key, lrs[scale])
            err.append(np.linalg.norm((pred - ref)[:, :2] * 256, axis=1).mean())
            err_mean.append(np.linalg.norm((mean - ref)[:, :2] * 256, axis=1).mean())
        assert np.mean(err) < 0.75 * np.mean(err_mean), (scale, np.mean(err), np.mean(err_mean))
    assert net.meta['holdout_px']['x16'] < net.meta['holdout_px_mean_face']


def test_runner_meta_does_not_depend_on_how_the_first_caller_named_the_shipped_weights(tmp_path, monkeypatch):
    """One runner per weights file: asked for the shipped file by path or by None, it is the same runner and its meta
    names the shipped weights as None either way; another file is named by its absolute path."""
    monkeypatch.setattr(LandmarkNetRunner, '_instances', {})  # a fresh cache; the other tests' runners come back after
    by_path = LandmarkNetRunner.get(LANDMARK_NET, 'cpu')
    assert LandmarkNetRunner.get(None, 'cpu') is by_path and by_path.meta()['weights'] is None
    copy = tmp_path / 'copy.pth'
    shutil.copy(LANDMARK_NET, copy)
    other = LandmarkNetRunner.get(str(copy), 'cpu')
    assert other is not by_path and other.meta()['weights'] == str(copy)
    assert other.meta()['landmark_net'] == by_path.meta()['landmark_net']  # same bytes, same digest


def test_landmark_net_maps_follow_the_contract_and_share_one_pass(demo_landmarks, monkeypatch):
    key, _, lrs = demo_landmarks[0]
    mask_ex, depth_ex = (build_extractor(p, 'landmark-net', prior_size=64) for p in ('mask', 'depth'))
    assert mask_ex.runner is depth_ex.runner
    calls = []
    forward = mask_ex.runner.net.forward
    monkeypatch.setattr(mask_ex.runner.net, 'forward', lambda x: calls.append(1) or forward(x))
    lr = np.ascontiguousarray(lrs[16][::-1])  # a face not cached by the other tests
    (mask, mmeta), = mask_ex.extract([Sample(key, lr)])
    (depth, dmeta), = depth_ex.extract([Sample(key, lr)])
    assert len(calls) == 1  # one forward for both maps
    m, d = mask['mask'], depth['depth'].astype(np.float32)
    assert m.shape == (64, 64) and m.dtype == np.uint8 and d.shape == (64, 64)
    present = {MASK_LABELS[i] for i in np.unique(m)}
    assert {'face', 'nose', 'lips', 'left_eye', 'right_eye'} <= present
    assert 0 <= d.min() and d.max() <= 1 and d[m == 0].mean() < d[m == MASK_LABELS.index('nose')].mean()
    assert not mmeta['fallback'] and not dmeta['fallback']
    meta = mask_ex.meta()
    assert meta['extractor'] == 'landmark-net' and meta['landmark_net'].startswith('sha256:')
    opts = extractor_options('mask', 'landmark-net', meta)  # what a restorer rebuilds from the store meta
    assert opts == {'prior_size': 64, 'weights': None}
    again, = build_extractor('mask', 'landmark-net', **opts).extract([Sample(key, lr)])
    assert np.array_equal(again[0]['mask'], m)


def test_missing_or_foreign_weights_end_in_one_message(tmp_path):
    with pytest.raises(CheckpointError, match='train_landmark_net.py'):
        load_landmark_net(str(tmp_path / 'none.pth'))
    bad = tmp_path / 'bad.pth'
    torch.save({'params': {}}, bad)
    with pytest.raises(CheckpointError, match='not a LandmarkNet file'):
        build_extractor('depth', 'landmark-net', weights=str(bad))


def test_train_script_leaves_excluded_faces_out_and_mirrors_the_mesh(tiny_root, tmp_path, monkeypatch):
    out = str(tmp_path / 'lm.pth')
    meta = T.main(['--hr-dir', os.path.join(DEMO, 'images'), '--exclude-root', tiny_root, '--epochs', '2',
                   '--batch', '16', '--coeffs', '12', '--holdout-fraction', '0.1', '--out', out, '--threads', '1'])
    excluded = set(demo_keys('train', 8) + demo_keys('val', 4))
    assert set(meta['excluded_keys']) == excluded
    n = len(os.listdir(os.path.join(DEMO, 'images'))) - len(excluded)
    assert meta['train_faces'] + meta['holdout_faces'] == n and meta['holdout_faces'] == n // 10
    assert meta['flips'] and len(meta['history']) == 2
    net = load_landmark_net(out)
    assert isinstance(net, LandmarkNet) and net.shape_basis.shape == (12, 478 * 3)
    # the mirror permutation of the mesh is its own inverse and maps left-eye points onto right-eye points
    perm = T.mirror_permutation(net.shape_mean.view(-1, 3).numpy())
    assert np.array_equal(perm[perm], np.arange(478))
    import mediapipe as mp
    fm = mp.solutions.face_mesh
    left = sorted({i for e in fm.FACEMESH_LEFT_EYE for i in e})
    right = {i for e in fm.FACEMESH_RIGHT_EYE for i in e}
    assert set(perm[left].tolist()) == right
    # the labels are cached: a second run runs FaceMesh on no face
    cache = os.path.splitext(out)[0] + '_labels.npz'
    assert len(np.load(cache)['keys']) == n
    monkeypatch.setattr(T.FaceMeshRunner, 'get', lambda *a, **k: pytest.fail('FaceMesh ran again'))
    T.main(['--hr-dir', os.path.join(DEMO, 'images'), '--exclude-root', tiny_root, '--epochs', '1', '--coeffs', '12',
            '--out', out, '--threads', '1'])
    # a cache made for other scales, and a folder that is not there, end in one line each
    with pytest.raises(SystemExit, match=r'holds no LR faces at x\[4\]'):
        T.main(['--hr-dir', os.path.join(DEMO, 'images'), '--scales', '4', '16', '--out', out])
    with pytest.raises(SystemExit, match='image folder not found'):
        T.main(['--hr-dir', str(tmp_path / 'none'), '--out', out])
