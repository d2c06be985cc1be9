"""Faces in whole photos, offline: detect every face (MediaPipe face detection, full range), find its landmarks
(MediaPipe FaceMesh), align it to the training template with a similarity transform, and paste restored faces
back with a feathered mask over an upscaled background. GFPGAN's FaceRestoreHelper role, without downloads.

The template is where five points (eye centres, nose tip, mouth corners) sit in the aligned CelebA-HQ crops the
networks are trained on: their mean over real faces (`assets/face_template.npz`, made by
datasets_prep/make_face_template.py), in [0, 1] crop coordinates, so it serves any crop size.
"""
import os
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from llvfsr_plugin.priors.extractors.map_extractors import ASSETS, FaceMeshRunner

# Deferred import: mediapipe (optional dependency, offline extra).
TEMPLATE = os.path.join(ASSETS, 'face_template.npz')
MOUTH_CORNERS = (61, 291)
NOSE_TIP = 1


@lru_cache(maxsize=1)
def _eye_indices():
    import mediapipe as mp
    fm = mp.solutions.face_mesh
    ids = lambda conn: sorted({i for e in conn for i in e})  # noqa: E731
    return ids(fm.FACEMESH_RIGHT_EYE), ids(fm.FACEMESH_LEFT_EYE)  # the subject's right eye is on the image left


def five_points(lm):
    """FaceMesh landmarks [478, 2+] -> [5, 2]: right eye centre, left eye centre, nose tip, mouth corners."""
    right, left = _eye_indices()
    return np.stack([lm[right, :2].mean(0), lm[left, :2].mean(0), lm[NOSE_TIP, :2],
                     lm[MOUTH_CORNERS[0], :2], lm[MOUTH_CORNERS[1], :2]])


@lru_cache(maxsize=1)
def template():
    """[5, 2] in [0, 1] coordinates of the aligned training crop."""
    if not os.path.isfile(TEMPLATE):
        raise FileNotFoundError(f'{TEMPLATE} missing; rebuild it with datasets_prep/make_face_template.py')
    return np.load(TEMPLATE)['points'].astype(np.float64)


@dataclass
class Face:
    box: tuple  # x, y, w, h in photo pixels (detector)
    score: float
    points: np.ndarray  # [5, 2] photo pixels (FaceMesh)
    affine: np.ndarray  # [2, 3] photo pixels -> aligned crop pixels (crop side `FaceHelper.face_size`)

    @property
    def size(self):
        """Side of the face in the photo: the detector box's larger side, in pixels."""
        return max(self.box[2], self.box[3])


class FaceHelper:
    """Detect, align and paste back faces.

    Args:
        face_size (int): side of the aligned crop (the network's HR face size, e.g. 256).
        min_face (int): faces whose detector box is smaller (pixels) are left to the background, and counted.
        det_conf (float): detector confidence threshold.
    """

    def __init__(self, face_size=256, min_face=16, det_conf=0.5):
        try:
            import mediapipe as mp
        except ImportError:
            raise ImportError('whole-photo inference needs mediapipe==0.10.21 (pip install "llvfsr_plugin[offline]")'
                              ) from None
        self.detector = mp.solutions.face_detection.FaceDetection(model_selection=1,
                                                                  min_detection_confidence=det_conf)
        self.mesh = FaceMeshRunner.get()
        self.face_size, self.min_face = face_size, min_face

    def detect(self, img_rgb):
        """-> (faces large enough, sorted left to right; number of faces too small)."""
        h, w = img_rgb.shape[:2]
        res = self.detector.process(np.ascontiguousarray(img_rgb))
        faces, small = [], 0
        for d in res.detections or []:
            b = d.location_data.relative_bounding_box
            box = (b.xmin * w, b.ymin * h, b.width * w, b.height * h)
            if max(box[2], box[3]) < self.min_face:
                small += 1
                continue
            points = self._landmarks(img_rgb, box)
            if points is None:
                small += 1
                continue
            faces.append(Face(box, float(d.score[0]), points, self.similarity(points)))
        return sorted(faces, key=lambda f: f.box[0]), small

    def _landmarks(self, img_rgb, box):
        """FaceMesh on a square crop around the detector box (the face about half of it) -> [5, 2] photo px."""
        side = 2.0 * max(box[2], box[3])
        cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
        n = 256
        s = n / side
        to_crop = np.array([[s, 0, n / 2 - s * cx], [0, s, n / 2 - s * cy]])
        crop = cv2.warpAffine(img_rgb, to_crop, (n, n), flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
        lm = self.mesh.landmarks(None, crop)
        if lm is None:
            return None
        pts = five_points(lm) * n - 0.5  # normalised -> crop pixels (cv2: pixel centres at whole numbers)
        return (pts - to_crop[:, 2]) / s

    def similarity(self, points):
        """Photo pixels -> aligned crop pixels: the least-squares similarity of the five points to the template."""
        dst = template() * self.face_size - 0.5
        m, _ = cv2.estimateAffinePartial2D(points.astype(np.float32), dst.astype(np.float32), method=cv2.LMEDS)
        return m

    def align(self, img_rgb, face):
        """The aligned crop [face_size, face_size, 3] of `face` (bicubic; replicated border)."""
        return cv2.warpAffine(img_rgb, face.affine, (self.face_size, self.face_size), flags=cv2.INTER_CUBIC,
                              borderMode=cv2.BORDER_REPLICATE)

    def feather(self):
        """Blend weights of a restored face in crop pixels: 1 inside, easing to 0 over the outer ~6 %."""
        n = self.face_size
        m = np.zeros((n, n), np.float32)
        e = max(2, n // 16)
        m[e:-e, e:-e] = 1
        return cv2.GaussianBlur(m, (0, 0), e / 2)

    def paste(self, background, restored, upscale):
        """Restored faces [(face, sr crop uint8 RGB)] warped back into `background` (the photo upscaled by
        `upscale`, uint8 RGB) and blended with the feathered mask; later faces over earlier ones."""
        out = background.astype(np.float32)
        h, w = out.shape[:2]
        weight = self.feather()
        for face, sr in restored:
            a = face.affine.copy()
            a[:, :2] /= upscale  # output pixels -> crop pixels: (x_out / upscale) through the photo's transform
            inv = cv2.invertAffineTransform(a)
            face_img = cv2.warpAffine(sr, inv, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
            mask = cv2.warpAffine(weight, inv, (w, h), flags=cv2.INTER_LINEAR)[..., None]
            out = mask * face_img.astype(np.float32) + (1 - mask) * out
        return np.clip(out.round(), 0, 255).astype(np.uint8)
