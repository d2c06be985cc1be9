"""Maps drawn from a first SR pass (`first_pass=CHECKPOINT`): FaceMesh, SAM and Depth Anything read the network's
output, the store meta names the network, a restorer rebuilds the same extractor, bad checkpoints end in one
message."""
import os

import numpy as np
import pytest
import torch

from llvfsr_plugin.errors import CheckpointError, OptionError
from llvfsr_plugin.prep.images import degrade, read_rgb
from llvfsr_plugin.priors.contract import MASK_LABELS
from llvfsr_plugin.priors.extractors import Sample, build_extractor
from llvfsr_plugin.priors.extractors.base import upsample_rgb
from llvfsr_plugin.priors.extractors.map_extractors import FaceMeshRunner, FirstPass
from llvfsr_plugin.restorer import extractor_options
from llvfsr_plugin.utils.checkpoint import CONFIG_KEY

from helpers import DEMO, awaken, demo_keys, identity_checkpoint


def _lr(key, scale=8):
    return degrade(read_rgb(os.path.join(DEMO, 'images', f'{key}.jpg'), allow_resize_to=256), scale)


def changing_checkpoint(folder, name, seed):
    """A Model 1 checkpoint whose network changes the face (identity_checkpoint's zeroed reconstructor given
    random weights)."""
    from basicsr.archs import build_network
    state = torch.load(identity_checkpoint(folder, priors=()), weights_only=True)
    net = build_network(dict(state[CONFIG_KEY]['network_g']))
    net.load_state_dict(state['params'])
    awaken(net, seed=seed, std=0.05)  # the zeroed reconstructor draws something now
    path = str(folder / name)
    torch.save(dict(state, params=net.state_dict()), path)
    return path


def test_facemesh_reads_the_first_pass_output(tmp_path):
    """With a network that changes the face (random reconstructor), FaceMesh's input is that network's output,
    not the bicubic face."""
    noisy = changing_checkpoint(tmp_path, 'noisy.pth', seed=3)
    lr = _lr(demo_keys('val', 1)[0])
    runner = FaceMeshRunner.get(first_pass=noisy)
    seen, bicubic = runner.upsample(lr), upsample_rgb(lr, 256)
    np.testing.assert_array_equal(seen, FirstPass(noisy)(lr))
    assert seen.shape == bicubic.shape == (256, 256, 3)
    assert np.abs(seen.astype(int) - bicubic).mean() > 5
    assert FaceMeshRunner.get() is not runner and FaceMeshRunner.get() is FaceMeshRunner.get()


def test_first_pass_maps_on_real_faces_and_meta(tmp_path):
    """A first pass that returns the bicubic face (zeroed reconstructor) gives maps that agree with the plain
    extractor's; the meta names the checkpoint (path and digest) and a restorer's options rebuild it."""
    path = identity_checkpoint(tmp_path, priors=())
    plain, first = build_extractor('mask', 'facemesh'), build_extractor('mask', 'facemesh', first_pass=path)
    ious = []
    for key in demo_keys('val', 6):
        s = Sample(key, _lr(key))
        (a, ma), = plain.extract([s])
        (b, mb), = first.extract([s])
        if ma['fallback'] or mb['fallback']:
            continue
        face = MASK_LABELS.index('face')
        ia, ib = a['mask'] >= face, b['mask'] >= face
        ious.append((ia & ib).sum() / (ia | ib).sum())
    assert len(ious) >= 4 and min(ious) > 0.9, ious
    meta = first.meta()
    assert meta['first_pass'] == path and meta['first_pass_checkpoint'].startswith('sha256:')
    assert 'first_pass' not in plain.meta()
    assert extractor_options('mask', 'facemesh', meta)['first_pass'] == path
    assert 'first_pass_checkpoint' not in extractor_options('mask', 'facemesh', meta)


def test_first_pass_refuses_a_network_with_priors_and_names_a_missing_file(tmp_path):
    with pytest.raises(OptionError, match=r'takes priors \[.mask.\]; the first pass must be a network without'):
        FirstPass(identity_checkpoint(tmp_path, priors=('mask',)))
    missing = str(tmp_path / 'gone.pth')
    with pytest.raises(CheckpointError, match=r'(?s)checkpoint not found: .*gone.pth.*--mask-opt first_pass=PATH'):
        build_extractor('depth', 'facemesh', first_pass=missing)


def test_restorer_runs_the_first_pass_its_checkpoint_names(tmp_path):
    """A network trained on first-pass maps: the restorer rebuilds its extractors with that first pass (from the
    checkpoint's prior provenance) and restores a real face with it."""
    (tmp_path / 'model1').mkdir()
    first = identity_checkpoint(tmp_path / 'model1', priors=())
    path = identity_checkpoint(tmp_path, priors=('mask', 'depth'))
    state = torch.load(path, weights_only=False)
    for p in ('mask', 'depth'):
        state[CONFIG_KEY]['priors'][p]['first_pass'] = first
    torch.save(state, path)
    from llvfsr_plugin import LLVFSRRestorer
    notes = []
    restorer = LLVFSRRestorer(path, device='cpu', log=notes.append)
    assert notes == [f'note: the maps are drawn from a first SR pass through {first} (as in training): one more '
                     f'network forward per face']
    for p in ('mask', 'depth'):
        assert restorer.extractors[p].runner.first_pass.path == first
    hr = read_rgb(os.path.join(DEMO, 'images', f'{demo_keys("val", 1)[0]}.jpg'), allow_resize_to=256)
    (lr,), (sr,), _ = restorer.enhance(hr, has_aligned=True, rgb=True)
    assert lr.shape == (32, 32, 3) and sr.shape == (256, 256, 3)
    assert restorer.last['fallback'] == [{'mask': False, 'depth': False}]


def test_sam_and_depth_anything_read_the_first_pass_and_share_it(tmp_path, monkeypatch):
    """The paper's map models (tiny random configs) take `first_pass` too: they read the first pass's SR face
    (the same maps as the plain extractor given that face), the mask and depth extractors share one pass per face,
    and the meta names the checkpoint so a restorer rebuilds it."""
    import tiny_models
    path = changing_checkpoint(tmp_path, 'model1.pth', seed=5)
    sam, (depth, proc) = tiny_models.tiny_sam(), tiny_models.tiny_depth_anything()
    sam_opts = dict(model_obj=sam, points_per_side=4, prior_size=32, upsample_to=64, pred_iou_thresh=-10,
                    stability_score_thresh=-10)
    da_opts = dict(model='tiny-da', model_obj=depth, processor=proc, prior_size=32)
    mask = build_extractor('mask', 'sam', first_pass=path, **sam_opts)
    dep = build_extractor('depth', 'depth-anything', first_pass=path, **da_opts)
    assert mask.first_pass is dep.first_pass is FirstPass.get(path)
    calls = []
    forward = mask.first_pass.restorer.super_resolve
    monkeypatch.setattr(mask.first_pass.restorer, 'super_resolve', lambda faces: calls.append(1) or forward(faces))
    key = demo_keys('val', 1)[0]
    lr = _lr(key)
    (m, _), = mask.extract([Sample(key, lr)])
    (d, _), = dep.extract([Sample(key, lr)])
    assert len(calls) == 1  # one first pass per face for both maps
    sr = FirstPass(path)(lr)
    assert sr.shape == (256, 256, 3) and np.abs(sr.astype(int) - upsample_rgb(lr, 256)).mean() > 5
    (m_sr, _), = build_extractor('mask', 'sam', **sam_opts).extract([Sample(key, sr)])
    (d_sr, _), = build_extractor('depth', 'depth-anything', **da_opts).extract([Sample(key, sr)])
    (d_lr, _), = build_extractor('depth', 'depth-anything', **da_opts).extract([Sample(key, lr)])
    assert m['mask'].max() > 0
    np.testing.assert_array_equal(m['mask'], m_sr['mask'])
    np.testing.assert_allclose(d['depth'], d_sr['depth'], atol=1e-6)
    assert np.abs(d['depth'] - d_lr['depth']).max() > 1e-3  # not the LR face's depth
    for prior, name, ex in (('mask', 'sam', mask), ('depth', 'depth-anything', dep)):
        assert ex.meta()['first_pass'] == path and ex.meta()['first_pass_checkpoint'].startswith('sha256:')
        assert extractor_options(prior, name, ex.meta())['first_pass'] == path
    assert 'first_pass' not in build_extractor('depth', 'depth-anything', **da_opts).meta()
