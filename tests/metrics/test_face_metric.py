"""Metrics on real face pairs: identical images are perfect, a blurred copy scores worse."""
import os

import cv2
import numpy as np
import pytest

from basicsr.metrics import calculate_niqe, calculate_psnr, calculate_ssim
from llvfsr_plugin.errors import ModelUnavailable
from llvfsr_plugin.metrics.face_metric import (
    ID_STATS,
    calculate_identity_distance,
    calculate_lpips,
    calculate_niqe_pyiqa,
    lpips_weight_paths,
)

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


def test_lpips_code_path_with_random_backbone(faces):
    """The full pyiqa LPIPS path with the `lpips` package's calibrated linear layers but an uncalibrated
    (random) AlexNet: identical -> 0, blurred > 0. Values are not comparable to published LPIPS."""
    a, blur, other = faces
    assert calculate_lpips(a, a, random_backbone=True) == pytest.approx(0.0, abs=1e-7)
    assert calculate_lpips(a, blur, random_backbone=True) > 0


def test_lpips_calibrated_values(faces):
    _, backbone = lpips_weight_paths()
    if not os.path.isfile(backbone):
        with pytest.raises(ModelUnavailable, match='AlexNet weights'):
            calculate_lpips(faces[0], faces[1])
        pytest.skip(f'LPIPS AlexNet backbone weights absent ({backbone}); no registry package ships them, '
                    f'so calibrated LPIPS values cannot be checked here')
    a, blur, other = faces
    assert calculate_lpips(a, a) == pytest.approx(0.0, abs=1e-6)
    assert 0 < calculate_lpips(a, blur) < calculate_lpips(a, other)


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
