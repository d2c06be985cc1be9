"""LLVFSRRestorer: a trained LLV-FSR on faces as users have them, shaped like GFPGANer / RealESRGANer.

    from llvfsr_plugin import LLVFSRRestorer
    restorer = LLVFSRRestorer()                  # the released x8 model; or LLVFSRRestorer('net_g_latest.pth')
    faces_lr, faces_sr, restored = restorer.enhance(cv2.imread('photo.jpg'))   # BGR in, BGR out

Whole photos: every face is detected, aligned to the training template (the CelebA-HQ crop), its aligned crop
downscaled to the network's LR size (an x8 network sees a 32 px face, whatever the photo's resolution), super-
resolved with priors computed on the fly from that LR face, and pasted back over the photo upscaled by
`upscale`. `has_aligned=True`: the input is one aligned face crop (LR, or larger: then downscaled to LR).

Priors: the map extractors the checkpoint was trained with (its store meta, see `models.llvfsr_model.
checkpoint_config`); choosing others is refused unless `allow_extractor_mismatch`. Text: none by default. A
network trained with text then gets blank text (`contract.blank_like`), which it has seen in training when it
was trained with prior dropout (the restorer says which); `text='...'` gives one caption / description.
"""
import inspect

import cv2
import numpy as np
import torch

from llvfsr_plugin.errors import OptionError
from llvfsr_plugin.prep.images import imresize_uint8
from llvfsr_plugin.priors.cli_args import DEFAULTS
from llvfsr_plugin.priors.contract import PRIORS, blank_like, collate, text_arrays, to_tensors
from llvfsr_plugin.priors.extractors import EXTRACTORS, Sample, build_extractor
from llvfsr_plugin.priors.extractors.text_extractors import build_text_encoder
from llvfsr_plugin.utils.checkpoint import config_lr_size, default_model, load_model


def extractor_options(prior, name, meta):
    """Constructor options of extractor (prior, name) found in a store's meta (digests left out: they name
    weights, they are not paths)."""
    cls = EXTRACTORS.get((prior, name))
    if cls is None:
        return {}
    params = inspect.signature(cls.__init__).parameters
    return {k: v for k, v in meta.items()
            if k in params and k not in ('self', 'encoder') and not str(v).startswith('sha256')}


def map_tensors(extractors, rgb, key='face'):
    """One image (uint8 RGB) through map extractors {prior: extractor} -> (the priors' tensors, no batch dimension;
    {prior: fell back to a mean prior?})."""
    out, fallback = {}, {}
    sample = Sample(key, rgb)
    for p, ex in extractors.items():
        (arrays, meta), = ex.extract([sample])
        fallback[p] = bool(meta.get('fallback'))
        out.update(to_tensors(p, arrays))
    return out, fallback


def pick_device(device=None):
    if device in (None, 'auto'):
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    device = torch.device(device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise OptionError(f'device {device} requested but CUDA is not available here; use --device cpu')
    return device


class LLVFSRRestorer:
    """Args:
        model_path (str): an LLV-FSR checkpoint (`net_g_*.pth`); None: the released x8 model (README "Model zoo").
        device (str): 'cpu', 'cuda', 'cuda:1' ...; default: CUDA when available.
        upscale (float): output size of whole photos relative to the input.
        half (bool): run the network in fp16 (CUDA) / bf16 (CPU).
        net_opt (dict): network_g for a checkpoint of an earlier version that does not describe itself.
        extractors (dict): {prior: (name, options)} instead of the checkpoint's (refused when the name differs,
            unless `allow_extractor_mismatch`).
        min_face (int): faces smaller than this (pixels, detector box) are left to the background.
        bg_upsampler (str): 'bicubic' or 'lanczos' for the photo around the faces.
        lr_size (int): LR face side, for a checkpoint that does not record it.
        log (callable): where notes go (one line each).
    """

    def __init__(self, model_path=None, device=None, upscale=2, half=False, net_opt=None, extractors=None,
                 allow_extractor_mismatch=False, min_face=16, bg_upsampler='bicubic', lr_size=None, text_encoder=None,
                 log=print):
        self.device, self.upscale, self.log = pick_device(device), upscale, log
        self.model_path = model_path or default_model()
        self.net, self.config = load_model(self.model_path, net_opt, log=log)
        self.net.to(self.device)
        self.scale = int(self.config.get('scale') or self.net.scale)
        self.lr_size = int(lr_size or config_lr_size(self.config, self.scale))
        self.face_size = self.lr_size * self.scale
        self.priors = tuple(getattr(self.net, 'priors', ()))
        self.dtype = (torch.float16 if self.device.type == 'cuda' else torch.bfloat16) if half else None
        if bg_upsampler not in ('bicubic', 'lanczos'):
            raise OptionError(f"bg_upsampler must be 'bicubic' or 'lanczos', got {bg_upsampler!r}")
        self.bg_interp = cv2.INTER_CUBIC if bg_upsampler == 'bicubic' else cv2.INTER_LANCZOS4
        self.extractors = self._map_extractors(extractors or {}, allow_extractor_mismatch)
        self.text_priors = [p for p in self.priors if PRIORS[p].kind == 'text']
        self._text_encoder, self._text_encoder_name = None, text_encoder
        self._helper, self.min_face = None, min_face
        self.notes = self._text_notes() + self._first_pass_notes()
        for note in self.notes:
            log(note)

    # ----------------------------------------------------------------------------------------- set-up
    def _map_extractors(self, requested, allow_mismatch):
        out = {}
        for p in self.priors:
            if PRIORS[p].kind != 'map':
                continue
            meta = self.config.get('priors', {}).get(p, {})
            trained = meta.get('extractor')
            name, opts = requested.get(p, (None, {}))
            if name and trained and name != trained and not allow_mismatch:
                raise OptionError(f'the checkpoint was trained on {p} priors from extractor {trained!r}, but '
                                  f'{name!r} was asked for: the network would get maps it never saw. Drop --{p} '
                                  f'(or pass --allow-extractor-mismatch to proceed anyway)')
            name = name or trained or DEFAULTS[p][0]
            base = extractor_options(p, name, meta) if name == trained else dict(DEFAULTS.get(p, (None, {}))[1])
            out[p] = build_extractor(p, name, **dict(base, **opts))
        return out

    def _text_notes(self):
        notes = []
        for p in self.text_priors:
            drop = self.config.get('priors', {}).get(p, {}).get('dropout')
            seen = (f'trained with {p} dropout {drop:g}: blank {p} is in-distribution' if drop else
                    f'not trained with {p} dropout (or unknown): blank {p} may cost quality; pass text if you have it')
            notes.append(f'note: the network uses {p} text; without text it gets a blank {p} ({seen})')
        return notes

    def _first_pass_notes(self):
        paths = sorted({ex.first_pass.path for ex in self.extractors.values() if ex.first_pass})
        return [f'note: the maps are drawn from a first SR pass through {path} (as in training): one more network '
                f'forward per face' for path in paths]

    @property
    def helper(self):
        if self._helper is None:
            from llvfsr_plugin.face_helper import FaceHelper
            self._helper = FaceHelper(self.face_size, self.min_face)
        return self._helper

    def _encode_text(self, prior, text):
        if self._text_encoder is None:
            meta = self.config.get('priors', {}).get(prior, {})
            self._text_encoder = build_text_encoder(self._text_encoder_name or meta.get('text_encoder') or 'minilm')
        (tokens, mask, pooled), = self._text_encoder.encode([text])
        return to_tensors(prior, text_arrays(tokens, mask, pooled))

    # ------------------------------------------------------------------------------------------ faces
    def prior_tensors(self, lr, text=None, key='face'):
        """The network's prior inputs for one LR face (uint8 RGB), no batch dimension. `text`: None, a string
        (every text prior) or {prior: string}. Returns (tensors, {prior: fell back to a mean prior?})."""
        out, fallback = map_tensors(self.extractors, lr, key)
        for p in self.text_priors:
            t = text.get(p) if isinstance(text, dict) else text
            if t:
                out.update(self._encode_text(p, t))
            else:
                dim = self.net.text_dim
                out.update(blank_like(p, {f'{p}_tokens': torch.zeros(1, dim)}))
        return out, fallback

    @torch.no_grad()
    def super_resolve(self, lrs, text=None, keys=None):
        """LR faces (uint8 RGB, lr_size square) -> SR faces (uint8 RGB) and per-face fallback flags."""
        items, flags = [], []
        for i, lr in enumerate(lrs):
            tensors, fb = self.prior_tensors(lr, text, (keys or [])[i] if keys else f'face{i}')
            items.append(dict(tensors, lq=torch.from_numpy(lr).permute(2, 0, 1).float() / 255.0))
            flags.append(fb)
        if not items:
            return [], []
        batch = {k: v.to(self.device) for k, v in collate(items).items()}
        lq = batch.pop('lq')
        ctx = torch.autocast(self.device.type, dtype=self.dtype) if self.dtype else torch.autocast(
            self.device.type, enabled=False)
        with ctx:
            out = self.net(lq, batch) if self.priors else self.net(lq)
        out = out.float().clamp(0, 1).cpu()
        return [(o.permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8) for o in out], flags

    def to_lr(self, face):
        """An aligned face crop at any size -> the network's LR size (MATLAB bicubic, as in training)."""
        return face if face.shape[:2] == (self.lr_size,) * 2 else imresize_uint8(face, out_hw=(self.lr_size,) * 2)

    def enhance(self, img, text=None, has_aligned=False, paste_back=True, rgb=False):
        """Restore the faces of one image.

        Args:
            img (ndarray): uint8 BGR (RGB with `rgb=True`) [H, W, 3].
            text: None, a string, or {prior: string}; see the module docstring.
            has_aligned (bool): `img` is one aligned face crop.
            paste_back (bool): also return the whole restored photo (whole photos only).
        Returns:
            (faces_lr, faces_sr, restored_img): the LR face the network saw and its SR result per face
            (left to right), and the restored photo at `upscale` (has_aligned: the SR face; None without
            paste_back). Same colour order as the input. `self.last` holds the run's Face objects and counts.
        """
        rgb_img = img if rgb else np.ascontiguousarray(img[..., ::-1])
        flip = (lambda a: a) if rgb else (lambda a: np.ascontiguousarray(a[..., ::-1]))
        if has_aligned:
            lr = self.to_lr(rgb_img)
            (sr,), flags = self.super_resolve([lr], text)
            self.last = {'faces': [], 'small': 0, 'fallback': flags}
            return [flip(lr)], [flip(sr)], flip(sr)
        faces, small = self.helper.detect(rgb_img)
        lrs = [self.to_lr(self.helper.align(rgb_img, f)) for f in faces]
        srs, flags = self.super_resolve(lrs, text)
        self.last = {'faces': faces, 'small': small, 'fallback': flags}
        restored = None
        if paste_back:
            h, w = rgb_img.shape[:2]
            size = (round(w * self.upscale), round(h * self.upscale))
            bg = cv2.resize(rgb_img, size, interpolation=self.bg_interp) if self.upscale != 1 else rgb_img.copy()
            restored = flip(self.helper.paste(bg, list(zip(faces, srs)), size[0] / w))
        return [flip(x) for x in lrs], [flip(x) for x in srs], restored
