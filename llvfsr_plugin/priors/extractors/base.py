"""The one small interface every prior extractor shares, the registry it joins, and loading helpers.

    ex = build_extractor('mask', 'facemesh', prior_size=64)   # llvfsr_plugin.priors.extractors
    ex.meta()                         -> dict written into the prior store's `__meta__`
    ex.extract([Sample, ...])         -> [(arrays, record_meta), ...]  arrays as `contract.PriorSpec.arrays`

Extractors see only the LR image (Sample.lr), upsampling it as their model needs; text read from dataset
files (Sample.text_file) is *oracle* side information and extractors that use it say so in meta.
"""
import hashlib
import os
from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np
import torch

from llvfsr_plugin.errors import ModelUnavailable

EXTRACTORS = {}  # (prior, name) -> class


@dataclass
class Sample:
    key: str
    lr: np.ndarray  # uint8 RGB [h, w, 3], the LR face
    text_file: Optional[str] = None  # dataset annotation (oracle), for file-based text priors


class PriorExtractor:
    prior = None  # a name of the prior contract (llvfsr_plugin.priors.contract.PRIORS)
    name = None
    oracle = False
    first_pass = None  # map extractors: the FirstPass whose SR face they read (map_extractors.FirstPass), if any

    def meta(self):
        return {'prior': self.prior, 'extractor': self.name, 'oracle': self.oracle}

    def extract(self, samples):
        raise NotImplementedError

    def possibly_seen(self, keys):
        """The dataset `keys` whose faces this extractor's model may have been trained on (a learned extractor
        scored on them would flatter itself); none for extractors not trained on dataset faces."""
        return []

    def close(self):
        pass


def register(prior, name):
    def deco(cls):
        cls.prior, cls.name = prior, name
        EXTRACTORS[(prior, name)] = cls
        return cls
    return deco


def file_sha256(path, limit=None):
    """Checkpoint hash for meta (first `limit` bytes for huge files; 'sha256:' or 'sha256-head:')."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        h.update(f.read(limit) if limit else f.read())
    return ('sha256-head:' if limit and os.path.getsize(path) > limit else 'sha256:') + h.hexdigest()[:16]


class FaceMemo:
    """The last results computed per LR face (keyed by its pixels, and an optional extra key), so extractors
    that share a model or a pass (mask and depth) compute it once per face."""

    def __init__(self, limit=64):
        self.limit, self._cache = limit, {}

    def get(self, lr, compute, key=None):
        k = (key, lr.shape, hash(lr.tobytes()))
        if k not in self._cache:
            if len(self._cache) > self.limit:
                self._cache.clear()
            self._cache[k] = compute(lr)
        return self._cache[k]


def auto_device(device=None):
    if device in (None, 'auto'):
        return 'cuda' if torch.cuda.is_available() else 'cpu'
    return device


def hf_load(loader, model_id, what, **kw):
    """`loader.from_pretrained(model_id)` offline-first, turning 'not found' into one clear message."""
    local = os.path.isdir(model_id)
    offline = not local and os.environ.get('LLVFSR_ALLOW_DOWNLOAD', '0') != '1'
    try:
        return loader.from_pretrained(model_id, local_files_only=offline or local, **kw)
    except (OSError, ValueError) as e:
        cache = os.environ.get('HF_HUB_CACHE') or os.path.join(
            os.environ.get('HF_HOME', os.path.expanduser('~/.cache/huggingface')), 'hub')
        raise ModelUnavailable(
            f'{what}: weights for {model_id!r} not found '
            f'{"in that folder" if local else f"in the Hugging Face cache ({cache})"}.\n'
            f'  Provide them: on a machine with internet run `huggingface-cli download {model_id}` and copy '
            f'the cache here, or pass a local folder path; set LLVFSR_ALLOW_DOWNLOAD=1 to let this run '
            f'download.\n  ({type(e).__name__}: {str(e).splitlines()[0][:200]})') from None


def upsample_rgb(lr, size):
    """Bicubic upsampling of the LR face to a model's input size (priors come from the LR image)."""
    if lr.shape[0] == size and lr.shape[1] == size:
        return lr
    return cv2.resize(lr, (size, size), interpolation=cv2.INTER_CUBIC)


def model_input_size(image_processor, default=224):
    """Square input side of a transformers image processor (its `size` is a dict-like or an int)."""
    size = getattr(image_processor, 'size', None)
    if size is None:
        return default
    if isinstance(size, int):
        return size
    for k in ('height', 'shortest_edge', 'longest_edge'):
        v = getattr(size, k, None) if not hasattr(size, 'get') else size.get(k)
        if v:
            return int(v)
    return default
