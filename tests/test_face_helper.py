"""Whole-photo faces (llvfsr_plugin/face_helper.py, LLVFSRRestorer.enhance): detection and alignment on real
faces pasted into a larger canvas at other sizes and rotations, paste-back position, photos without a face."""
import cv2
import numpy as np
import pytest
import torch

from llvfsr_plugin import LLVFSRRestorer
from llvfsr_plugin.face_helper import FaceHelper, five_points
from llvfsr_plugin.priors.extractors.map_extractors import FaceMeshRunner

from helpers import DEMO, demo_keys, identity_checkpoint


def composite(placements=((0.6, 12, (170, 200)), (0.45, -8, (470, 190))), size=(640, 400)):
    """Bundled 256 px faces pasted into a canvas: (scale, degrees, centre) each. -> canvas (RGB), [2x3 face ->
    canvas affines], the faces."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    canvas = np.stack([90 + 60 * xx / w, 110 + 40 * yy / h, 140 - 50 * xx / w], -1).astype(np.uint8)
    affines, faces = [], []
    for key, (s, deg, c) in zip(demo_keys('val'), placements):
        face = cv2.cvtColor(cv2.imread(f'{DEMO}/images/{key}.jpg'), cv2.COLOR_BGR2RGB)
        a = cv2.getRotationMatrix2D((127.5, 127.5), deg, s)
        a[:, 2] += np.array(c) - 127.5
        warped = cv2.warpAffine(face, a, size, flags=cv2.INTER_AREA)
        inside = cv2.warpAffine(np.ones((256, 256), np.float32), a, size)[..., None] > 0.999
        canvas = np.where(inside, warped, canvas)
        affines.append(a)
        faces.append(face)
    return canvas, affines, faces


@pytest.fixture(scope='module')
def helper():
    return FaceHelper(face_size=256)


def test_composite_faces_are_found_and_aligned(helper):
    """Both faces found (left to right); their five points land within 2 px of the source face's points carried
    through the paste; the aligned crop puts the eyes where the training template has them."""
    canvas, affines, faces = composite()
    found, small = helper.detect(canvas)
    assert len(found) == 2 and small == 0
    mesh = FaceMeshRunner.get()
    for f, a, face in zip(found, affines, faces):
        src = five_points(mesh.landmarks(None, face)) * 256 - 0.5
        expected = src @ a[:, :2].T + a[:, 2]
        err = np.linalg.norm(f.points - expected, axis=1)
        assert err.mean() < 2.0, f'landmarks off by {err.round(2)} px'
        aligned_pts = f.points @ f.affine[:, :2].T + f.affine[:, 2]
        realigned = five_points(mesh.landmarks(None, helper.align(canvas, f))) * 256 - 0.5
        assert np.abs(aligned_pts - realigned).mean() < 3.0


def _shift(a, b):
    """Sub-pixel translation between two same-size RGB crops (phase correlation)."""
    ga, gb = (cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).astype(np.float64) for x in (a, b))
    win = cv2.createHanningWindow(ga.shape[::-1], cv2.CV_64F)
    (dx, dy), _ = cv2.phaseCorrelate(ga, gb, win)
    return np.hypot(dx, dy)


def test_pasted_back_faces_land_where_they_were(tmp_path):
    """Through the whole LLVFSRRestorer path (detect, align, LR, network, paste back at upscale 2) with a network
    whose output is its bicubic-upsampled input: each pasted face matches the upscaled photo to within 2 px
    (phase correlation over the face region), and outside the faces the photo is the plain upscale."""
    canvas, affines, _ = composite()
    r = LLVFSRRestorer(identity_checkpoint(tmp_path, lr_size=32), device='cpu', upscale=2, log=lambda m: None)
    lrs, srs, out = r.enhance(canvas, rgb=True)
    assert len(srs) == 2 and out.shape == (800, 1280, 3)
    assert lrs[0].shape == (32, 32, 3) and srs[0].shape == (256, 256, 3)
    up = cv2.resize(canvas, (1280, 800), interpolation=cv2.INTER_CUBIC)
    for f in r.last['faces']:
        x, y, w, h = (int(round(v * 2)) for v in f.box)
        shift = _shift(up[y:y + h, x:x + w], out[y:y + h, x:x + w]) / 2  # in photo pixels
        assert shift < 2.0, f'face pasted {shift:.2f} px away'
    assert np.array_equal(out[:40, :40], up[:40, :40])  # far from any face: untouched background


def test_photo_without_a_face_is_returned_upscaled(tmp_path):
    r = LLVFSRRestorer(identity_checkpoint(tmp_path, lr_size=32), device='cpu', upscale=1.5, log=lambda m: None)
    img = composite(placements=())[0]
    lrs, srs, out = r.enhance(img, rgb=True)
    assert lrs == [] and srs == [] and out.shape == (600, 960, 3)
    assert np.array_equal(out, cv2.resize(img, (960, 600), interpolation=cv2.INTER_CUBIC))


def test_astronaut_photo_and_small_faces(tmp_path):
    """skimage's astronaut (a real photo): one face; shrunk to 1/8, its face is below --min-face and counted."""
    from skimage import data
    img = data.astronaut()
    r = LLVFSRRestorer(identity_checkpoint(tmp_path, lr_size=32), device='cpu', log=lambda m: None)
    _, srs, out = r.enhance(img, rgb=True)
    assert len(srs) == 1 and out.shape == (1024, 1024, 3)
    f = r.last['faces'][0]
    assert 150 < f.box[0] + f.box[2] / 2 < 270 and 60 < f.box[1] + f.box[3] / 2 < 180  # the face, top centre
    r.min_face = r.helper.min_face = 40
    _, srs, _ = r.enhance(cv2.resize(img, (128, 128), interpolation=cv2.INTER_AREA), rgb=True)
    assert srs == [] and r.last['small'] == 1


def test_aligned_input_and_bgr_order(tmp_path):
    r = LLVFSRRestorer(identity_checkpoint(tmp_path, lr_size=32), device='cpu', log=lambda m: None)
    face = cv2.imread(f'{DEMO}/images/{demo_keys("val", 1)[0]}.jpg')  # BGR, 256: downscaled to 32 for the network
    lrs, srs, out = r.enhance(face, has_aligned=True)
    assert lrs[0].shape == (32, 32, 3) and out.shape == (256, 256, 3)
    assert torch.nn.functional.l1_loss(torch.tensor(out, dtype=torch.float), torch.tensor(face, dtype=torch.float)) < 12


def test_cuda_asked_for_without_cuda_is_one_clear_error(tmp_path):
    from llvfsr_plugin.errors import OptionError
    if torch.cuda.is_available():
        pytest.skip('this machine has CUDA: the refusal is for machines without it')
    with pytest.raises(OptionError, match='CUDA is not available here; use --device cpu'):
        LLVFSRRestorer(identity_checkpoint(tmp_path), device='cuda', log=lambda m: None)
