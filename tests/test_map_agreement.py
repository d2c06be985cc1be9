"""benchmarks/map_agreement.py: LR maps and the mean face, each against FaceMesh on the HR face."""
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from llvfsr_plugin.errors import UserError
from llvfsr_plugin.prep.images import decode_png
from llvfsr_plugin.prep.layout import hr_path
from llvfsr_plugin.priors.store import Store

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'benchmarks'))
from map_agreement import agreement, mask_miou, summary  # noqa: E402


def test_mask_miou_counts_face_labels_only():
    a = np.zeros((8, 8), np.int64)
    a[2:6, 2:6] = 1
    b = a.copy()
    assert mask_miou(a, b) == 1.0
    b[2:6, 2:4] = 2  # half of label 1 relabelled: label 1 IoU 1/2, label 2 IoU 0
    assert mask_miou(a, b) == 0.25


def test_agreement_on_real_faces(tiny_root):
    result = agreement(tiny_root, 8, 'val')
    faces = result['faces']
    assert len(faces) + len(result['hr_unread']) == 4 and faces
    # FaceMesh finds no face in one of the bundled val faces at 16 px (key 7): its stored maps are the mean face
    assert any(f['lr_fallback'] for f in faces.values()) and not all(f['lr_fallback'] for f in faces.values())
    for f in faces.values():
        assert 0 <= f['mask_lr'] <= 1 and 0 <= f['mask_mean_face'] <= 1
        assert -1 <= f['depth_lr'] <= 1
        if f['lr_fallback']:  # the extractor stored the mean face: it scores as the mean face
            assert f['mask_lr'] == f['mask_mean_face'] and f['depth_lr'] == f['depth_mean_face']
    s = summary(result)
    d = s['mask']['lr_minus_mean_face']
    assert d['n'] == len(faces) and np.isclose(d['mean'], s['mask']['lr'] - s['mask']['mean_face'])


def test_cli_names_a_missing_store(tmp_path):
    r = subprocess.run([sys.executable, 'benchmarks/map_agreement.py', '--root', str(tmp_path), '--scale', '8'],
                       cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), capture_output=True, text=True)
    assert r.returncode != 0 and 'store not found' in r.stderr and 'Traceback' not in r.stderr


def test_maps_from_images_of_the_hr_faces_match_the_reference(tiny_root, tmp_path):
    # images named as BasicSR's visualization names them (<key>_<suffix>.png); here the HR faces themselves,
    # so the maps drawn from them are the reference maps
    hr = Store(hr_path(tiny_root, 'val'))
    for key in hr.keys():
        Image.fromarray(decode_png(hr.get_bytes(key))).save(tmp_path / f'{key}_q_model1.png')
    faces = agreement(tiny_root, 8, 'val', from_images=str(tmp_path))['faces']
    assert faces and not any(f['lr_fallback'] for f in faces.values())
    assert all(f['mask_lr'] == 1.0 and np.isclose(f['depth_lr'], 1.0) for f in faces.values())
    (tmp_path / f'{key}_q_model1.png').unlink()
    with pytest.raises(UserError, match=f'face {key!r}'):
        agreement(tiny_root, 8, 'val', from_images=str(tmp_path))


def test_reference_from_a_store_of_hr_derived_maps(tiny_root, tmp_path):
    # the same extractor run on the HR faces (quality_experiment's oracle-maps root) as the reference: it draws
    # what FaceMesh on the HR face draws, so both references score the LR maps alike
    from quality_experiment import prep_hr_priors
    hr_root = prep_hr_priors(tiny_root, str(tmp_path), 8, 128)
    by_store = agreement(tiny_root, 8, 'val', hr_root=hr_root)
    by_mesh = agreement(tiny_root, 8, 'val')
    assert by_store['faces'].keys() == by_mesh['faces'].keys() and by_store['faces']
    for key, f in by_store['faces'].items():
        assert f['mask_lr'] == by_mesh['faces'][key]['mask_lr']
        assert np.isclose(f['depth_lr'], by_mesh['faces'][key]['depth_lr'], atol=1e-3)
    assert by_store['label_iou'] == by_mesh['label_iou'] and 0 < by_store['label_iou']['lr']['face'] <= 1


def test_hr_root_is_the_reference(tiny_root):
    # the LR root as its own reference: every LR map matches it exactly, and the face whose stored maps are the
    # mean-face fallback (key 7) has no reference; with FaceMesh on the HR face as reference neither holds
    result = agreement(tiny_root, 8, 'val', hr_root=tiny_root)
    assert result['faces'] and all(f['mask_lr'] == 1.0 and np.isclose(f['depth_lr'], 1.0)
                                   for f in result['faces'].values())
    assert result['hr_unread'] == ['7']
    assert any(f['mask_lr'] < 1.0 for f in agreement(tiny_root, 8, 'val')['faces'].values())
