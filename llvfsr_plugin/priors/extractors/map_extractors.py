"""Map priors (Sec. 3.3): a facial semantic mask (SAM) and a depth map (Depth Anything), from the LR face.
Offline defaults: MediaPipe FaceMesh (0.10.21 bundles its model) regions as a label map, and dense
relative depth interpolated from the mesh's z coordinates.

All maps are stored at `prior_size` x `prior_size` (default 128, `--prior-size`); the network resizes them to
each feature grid.
With `first_pass=CHECKPOINT` (`--mask-opt first_pass=PATH --depth-opt first_pass=PATH`) every map extractor
(FaceMesh, SAM, Depth Anything) reads the face as a trained network without priors (a Model 1) super-resolves
it, not the bicubic-upsampled LR face; the mask and depth extractors of one checkpoint share one pass per face.
Faces FaceMesh does not find get the *mean prior* of aligned faces (assets/facemesh_mean_64.npz, made by
datasets_prep/make_mean_prior.py from 1,000 CelebA-HQ train faces at 256 px) and `fallback: true` in meta.
"""
import os
from functools import lru_cache

import cv2
import numpy as np
import torch

from llvfsr_plugin.errors import ModelUnavailable
from llvfsr_plugin.priors.contract import MASK_LABELS, NUM_MASK_CLASSES, map_array

from .base import FaceMemo, PriorExtractor, auto_device, file_sha256, hf_load, register, upsample_rgb

# Deferred imports, all optional dependencies: mediapipe (FaceMesh), segment_anything (SAM), transformers
# (Depth Anything); scipy.interpolate is imported where used (it takes ~0.3 s).
ASSETS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'assets')
MEAN_PRIOR = os.path.join(ASSETS, 'facemesh_mean_64.npz')
# inner-lip ring (mouth opening) of the 468-point mesh
MOUTH_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191)


# ================================================================================================= FaceMesh
class FirstPass:
    """A trained network without priors (a Model 1 checkpoint: `net_g_*.pth` of this plugin) that super-resolves
    the LR face before a map extractor reads it: the maps then come from an SR face rather than a bicubic one (at
    x8 closer to the HR face's, `benchmarks/map_agreement.py --from-images`). Still only the LR image is used.
    `FirstPass.get` shares one instance (and its last outputs) per checkpoint and device, so the mask and depth
    extractors run the network once per face.

    Args:
        path (str): the checkpoint; it must describe itself (saved by LLVFSRModel) and take no priors.
        device (str): 'cpu', 'cuda', ...; default: CUDA when available.
    """

    _instances = {}

    @classmethod
    def get(cls, path, device=None):
        """The shared first pass of checkpoint `path` on `device`; None when `path` is None (no first pass)."""
        if not path:
            return None
        stat = os.stat(path) if os.path.isfile(path) else None  # a file rewritten in place is a new first pass
        key = (os.path.abspath(path), auto_device(device), stat and (stat.st_mtime_ns, stat.st_size))
        if key not in cls._instances:
            cls._instances[key] = cls(path, device)
        return cls._instances[key]

    def __init__(self, path, device=None):
        from llvfsr_plugin.errors import CheckpointError, OptionError
        from llvfsr_plugin.restorer import LLVFSRRestorer  # deferred: the restorer imports the extractors
        try:
            self.restorer = LLVFSRRestorer(path, device=device, log=lambda *a: None)
        except CheckpointError as e:
            raise CheckpointError(f'FaceMesh first pass: {e}\n  (maps drawn from a first SR pass need that network: '
                                  f'pass its path with --mask-opt first_pass=PATH --depth-opt first_pass=PATH)'
                                  ) from None
        if self.restorer.priors:
            raise OptionError(f'first_pass={path}: that network takes priors {list(self.restorer.priors)}; the '
                              f'first pass must be a network without priors (a Model 1: network_g.priors: [])')
        self.path, self.digest = os.path.abspath(path), file_sha256(path)  # absolute: the store meta names it
        self._memo = FaceMemo()

    def __call__(self, lr):
        """uint8 RGB LR face -> uint8 RGB SR face (`LLVFSRRestorer.super_resolve`; the last faces are cached)."""
        return self._memo.get(lr, self._super_resolve)

    def _super_resolve(self, lr):
        (sr,), _ = self.restorer.super_resolve([np.ascontiguousarray(lr)])
        return sr

    def meta(self):
        """Store-meta fields: the path lets a restorer rebuild the extractor; the digest names the weights."""
        return {'first_pass': self.path, 'first_pass_checkpoint': self.digest}


def source_face(lr, first_pass, size):
    """The image a map extractor reads: the LR face super-resolved by `first_pass` (a FirstPass) when given, then
    resized to `size` (bicubic; None: as it is)."""
    face = first_pass(lr) if first_pass else lr
    return upsample_rgb(face, size) if size else face


def mesh_landmarks(mesh, img):
    """FaceMesh `mesh` (a MediaPipe FaceMesh) on uint8 RGB `img` -> [478, 3] float (x, y in [0, 1] of `img`; z
    relative, smaller = nearer), or None when it finds no face."""
    res = mesh.process(np.ascontiguousarray(img))
    if not res.multi_face_landmarks:
        return None
    return np.array([(p.x, p.y, p.z) for p in res.multi_face_landmarks[0].landmark], np.float64)


class FaceMeshRunner:
    """MediaPipe FaceMesh (refined, 478 landmarks) on the upsampled LR face: bicubic, or with `first_pass` (a
    checkpoint path, `FirstPass`) a trained network's SR output, resized to `upsample_to`. One runner per
    option set and process; the last results are cached by key so the mask and depth extractors run the mesh
    (and the first pass) once per face."""

    _instances = {}

    def __init__(self, upsample_to=256, min_confidence=0.3, first_pass=None):
        try:
            import mediapipe as mp
        except ImportError:
            raise ImportError('FaceMesh priors need mediapipe==0.10.21 (pip install "llvfsr_plugin[offline]"); '
                              'later releases ship no bundled FaceMesh model') from None
        self.mp = mp
        self.mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1,
                                                    refine_landmarks=True, min_detection_confidence=min_confidence)
        self.upsample_to = upsample_to
        self.first_pass = FirstPass.get(first_pass)
        self._memo = FaceMemo(limit=512)

    @classmethod
    def get(cls, upsample_to=256, min_confidence=0.3, first_pass=None):
        key = (upsample_to, min_confidence, first_pass)
        if key not in cls._instances:
            cls._instances[key] = cls(upsample_to, min_confidence, first_pass)
        return cls._instances[key]

    def upsample(self, lr):
        """The image FaceMesh reads: the LR face bicubic-upsampled, or super-resolved by the first pass."""
        return source_face(lr, self.first_pass, self.upsample_to)

    def landmarks(self, key, lr):
        """-> [478, 3] float (x, y in [0, 1] of the image; z relative, smaller = nearer) or None."""
        return self._memo.get(lr, self._landmarks, key)

    def _landmarks(self, lr):
        return mesh_landmarks(self.mesh, self.upsample(lr))

    def meta(self):
        meta = {'model': f'mediapipe-{self.mp.__version__}-facemesh-refined', 'upsample_to': self.upsample_to}
        return dict(meta, **self.first_pass.meta()) if self.first_pass else meta


@lru_cache(maxsize=1)
def _region_indices():
    import mediapipe as mp
    fm = mp.solutions.face_mesh

    def idx(conn):
        return sorted({i for e in conn for i in e})

    lips = idx(fm.FACEMESH_LIPS)
    return [  # painted in this order: later regions overwrite earlier ones
        ('face', idx(fm.FACEMESH_FACE_OVAL)),
        ('left_brow', idx(fm.FACEMESH_LEFT_EYEBROW)),
        ('right_brow', idx(fm.FACEMESH_RIGHT_EYEBROW)),
        ('nose', idx(fm.FACEMESH_NOSE)),
        ('left_eye', idx(fm.FACEMESH_LEFT_EYE)),
        ('right_eye', idx(fm.FACEMESH_RIGHT_EYE)),
        ('iris', idx(fm.FACEMESH_LEFT_IRIS)),
        ('iris', idx(fm.FACEMESH_RIGHT_IRIS)),
        ('lips', lips),
        ('mouth', list(MOUTH_INNER)),
    ]


def rasterize_regions(lm, size):
    """Landmarks -> uint8 label map [size, size] with MASK_LABELS (convex hull of each region)."""
    labels = np.zeros((size, size), np.uint8)
    # sub-pixel precision: cv2.fillPoly with 4 fractional bits
    pts_all = np.round(lm[:, :2] * size * 16 - 8).astype(np.int32)
    for name, ids in _region_indices():
        hull = cv2.convexHull(pts_all[ids])
        cv2.fillPoly(labels, [hull], MASK_LABELS.index(name), lineType=cv2.LINE_8, shift=4)
    return labels


def face_oval_mask(lm, h, w):
    """Landmarks -> bool [h, w]: inside the convex hull of FaceMesh's face oval (forehead to chin, cheek to
    cheek), i.e. the face without hair, ears, neck and background."""
    mask = np.zeros((h, w), np.uint8)
    pts = np.round(lm[_region_indices()[0][1], :2] * (w * 16, h * 16) - 8).astype(np.int32)
    cv2.fillPoly(mask, [cv2.convexHull(pts)], 1, lineType=cv2.LINE_8, shift=4)
    return mask.astype(bool)


def interpolate_depth(lm, size):
    """Landmark z -> dense relative depth [size, size] in [0, 1], 1 = nearest, 0 = background/farthest."""
    from scipy.interpolate import griddata
    xy = lm[:, :2] * size - 0.5
    z = lm[:, 2]
    near = (z.max() - z) / max(z.max() - z.min(), 1e-6)  # 1 at the nose tip
    gy, gx = np.mgrid[0:size, 0:size]
    d = griddata(xy, near, (gx, gy), method='linear')
    return np.nan_to_num(d, nan=0.0).clip(0, 1).astype(np.float32)


@lru_cache(maxsize=1)
def mean_prior():
    if not os.path.isfile(MEAN_PRIOR):
        raise FileNotFoundError(f'{MEAN_PRIOR} missing; rebuild it with datasets_prep/make_mean_prior.py')
    z = np.load(MEAN_PRIOR)
    return z['labels'], z['depth']


def resize_map(a, size, nearest):
    """A square map to size x size: nearest for labels, area (linear when enlarging) for depth."""
    if a.shape[0] == size:
        return a
    return cv2.resize(a, (size, size), interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_AREA)


def mean_map(prior, size):
    """The mean prior of aligned faces (MEAN_PRIOR) as a `prior` ('mask' or 'depth') array of size x size."""
    labels, depth = mean_prior()
    if prior == 'mask':
        return map_array('mask', resize_map(labels, size, True))
    return map_array('depth', resize_map(depth.astype(np.float32), size, False))


class _FaceMeshPrior(PriorExtractor):

    def __init__(self, prior_size=128, upsample_to=256, min_confidence=0.3, first_pass=None):
        self.prior_size = prior_size
        self.runner = FaceMeshRunner.get(upsample_to, min_confidence, first_pass)
        self.first_pass = self.runner.first_pass

    def meta(self):
        return dict(super().meta(), **self.runner.meta(), prior_size=self.prior_size,
                    fallback_prior=file_sha256(MEAN_PRIOR))

    def extract(self, samples):
        out = []
        for s in samples:
            lm = self.runner.landmarks(s.key, s.lr)
            arrays = self.from_mesh(lm) if lm is not None else mean_map(self.prior, self.prior_size)
            out.append((arrays, {'source': s.key, 'fallback': lm is None}))
        return out


@register('mask', 'facemesh')
class FaceMeshMask(_FaceMeshPrior):
    """FaceMesh regions as a label map (labels: record.MASK_LABELS)."""

    def meta(self):
        return dict(super().meta(), num_classes=NUM_MASK_CLASSES, labels=list(MASK_LABELS))

    def from_mesh(self, lm):
        return map_array('mask', rasterize_regions(lm, self.prior_size))


@register('depth', 'facemesh')
class FaceMeshDepth(_FaceMeshPrior):
    """Dense relative depth linearly interpolated from the mesh's z (1 = nearest)."""

    def from_mesh(self, lm):
        return map_array('depth', interpolate_depth(lm, self.prior_size))


class _MeanFacePrior(PriorExtractor):
    """The mean prior of aligned faces (FaceMesh's fallback) for every face, without reading it: an ablation that
    tells what a network owes to a face template from what it owes to face-specific maps
    (`--mask mean-face --depth mean-face`; row llvfsr_sft_mean of benchmarks/quality_experiment.py).

    Args:
        prior_size (int): side of the stored map.
    """

    def __init__(self, prior_size=128):
        self.prior_size = prior_size

    def meta(self):
        return dict(super().meta(), prior_size=self.prior_size, mean_prior=file_sha256(MEAN_PRIOR))

    def extract(self, samples):
        return [(mean_map(self.prior, self.prior_size), {'source': s.key, 'fallback': True}) for s in samples]


@register('mask', 'mean-face')
class MeanFaceMask(_MeanFacePrior):
    """The mean face's FaceMesh regions (labels: record.MASK_LABELS) for every face."""

    def meta(self):
        return dict(super().meta(), num_classes=NUM_MASK_CLASSES, labels=list(MASK_LABELS))


@register('depth', 'mean-face')
class MeanFaceDepth(_MeanFacePrior):
    """The mean face's relative depth for every face."""


# ====================================================================================================== SAM
@register('mask', 'sam')
class SAMMask(PriorExtractor):
    """Segment Anything automatic masks -> label map. SAM's masks are not semantic, so labels are made
    comparable across images by ordering: segments sorted by area (largest first) get labels 1, 2, ...
    (capped at num_classes-1), painted largest first so smaller parts (eyes, mouth) stay on top; 0 = none.
    Options: checkpoint (path), model_type (vit_b | vit_l | vit_h), points_per_side, upsample_to, first_pass
    (a Model 1 checkpoint: SAM reads its SR face), and any SamAutomaticMaskGenerator option (pred_iou_thresh,
    stability_score_thresh, ...)."""

    def __init__(self, checkpoint=None, model_type='vit_b', prior_size=128, num_classes=NUM_MASK_CLASSES,
                 points_per_side=16, upsample_to=256, device=None, model_obj=None, first_pass=None,
                 **generator_opts):
        from segment_anything import SamAutomaticMaskGenerator, sam_model_registry
        if model_obj is None:
            if not checkpoint or not os.path.isfile(checkpoint):
                raise ModelUnavailable(
                    f'SAM: checkpoint {checkpoint!r} not found. Download sam_{model_type}_*.pth from the '
                    f'segment-anything release page on a machine with internet and pass its path as '
                    f'--mask-opt checkpoint=PATH')
            model_obj = sam_model_registry[model_type](checkpoint=checkpoint)
        self.model = model_obj.to(auto_device(device)).eval()
        self.gen = SamAutomaticMaskGenerator(self.model, points_per_side=points_per_side, **generator_opts)
        self.generator_opts = generator_opts
        self.prior_size, self.num_classes, self.upsample_to = prior_size, num_classes, upsample_to
        self.ckpt = file_sha256(checkpoint, limit=1 << 24) if checkpoint else None
        self.model_type, self.points_per_side = model_type, points_per_side
        self.first_pass = FirstPass.get(first_pass, device)

    def meta(self):
        return dict(super().meta(), model=f'sam-{self.model_type}', checkpoint=self.ckpt,
                    num_classes=self.num_classes, prior_size=self.prior_size, points_per_side=self.points_per_side,
                    labels='area-rank', **self.generator_opts, **(self.first_pass.meta() if self.first_pass else {}))

    def extract(self, samples):
        out = []
        for s in samples:
            masks = self.gen.generate(source_face(s.lr, self.first_pass, self.upsample_to))
            masks = sorted(masks, key=lambda m: -m['area'])
            labels = np.zeros((self.prior_size, self.prior_size), np.uint8)
            for rank, m in enumerate(masks):
                seg = cv2.resize(m['segmentation'].astype(np.uint8), (self.prior_size,) * 2,
                                 interpolation=cv2.INTER_NEAREST).astype(bool)
                labels[seg] = min(rank + 1, self.num_classes - 1)
            out.append((map_array('mask', labels), {'source': s.key, 'fallback': not masks, 'segments': len(masks)}))
        return out


# =========================================================================================== Depth Anything
@register('depth', 'depth-anything')
class DepthAnythingDepth(PriorExtractor):
    """Depth Anything (`DepthAnythingForDepthEstimation`, hub id or local path). Its output is relative
    inverse depth; we min-max normalise each face to [0, 1] so 1 = nearest, as the FaceMesh prior. With
    `first_pass` (a Model 1 checkpoint) it reads that network's SR face."""

    def __init__(self, model='LiheYoung/depth-anything-small-hf', prior_size=128, upsample_to=None, device=None,
                 model_obj=None, processor=None, first_pass=None):
        from transformers import AutoImageProcessor, DepthAnythingForDepthEstimation
        self.device = auto_device(device)
        if model_obj is None:
            model_obj = hf_load(DepthAnythingForDepthEstimation, model, 'Depth Anything')
            processor = hf_load(AutoImageProcessor, model, 'Depth Anything processor')
        self.model, self.processor = model_obj.to(self.device).eval(), processor
        self.model_id, self.prior_size, self.upsample_to = model, prior_size, upsample_to
        self.first_pass = FirstPass.get(first_pass, device)

    def meta(self):
        return dict(super().meta(), model=self.model_id, prior_size=self.prior_size,
                    **(self.first_pass.meta() if self.first_pass else {}))

    def extract(self, samples):
        imgs = [source_face(s.lr, self.first_pass, self.upsample_to) for s in samples]
        inputs = self.processor(images=imgs, return_tensors='pt').to(self.device)
        with torch.no_grad():
            pred = self.model(**inputs).predicted_depth  # [B, h, w]
        pred = torch.nn.functional.interpolate(pred[:, None].float(), size=(self.prior_size,) * 2, mode='bilinear',
                                               align_corners=False)[:, 0].cpu().numpy()
        out = []
        for s, d in zip(samples, pred):
            rng = float(d.max() - d.min())
            d = (d - d.min()) / rng if rng > 1e-12 else np.zeros_like(d)
            out.append((map_array('depth', d), {'source': s.key, 'fallback': rng <= 1e-12}))
        return out
