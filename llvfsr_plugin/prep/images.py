"""HR face reading/validation, LR degradation and BasicSR-format image LMDBs, shared by the prep scripts and
the inference command."""
import os

import cv2
import numpy as np
from PIL import Image, ImageOps

from basicsr.utils.matlab_functions import imresize
from llvfsr_plugin.errors import BadImage, OptionError
from llvfsr_plugin.priors.store import Writer

IMG_EXTS = ('.png', '.jpg', '.jpeg', '.bmp', '.webp', '.tif', '.tiff')
PNG_COMPRESSION = 1  # BasicSR's default for LMDBs: fast to decode


def list_images(folder):
    """The images of a folder, sorted; refuses two files that would share a key (`face.jpg`, `face.png`)."""
    if not os.path.isdir(folder):
        raise OptionError(f'{folder}: not a folder of images' if os.path.exists(folder) else
                          f'image folder not found: {folder}')
    files = sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.lower().endswith(IMG_EXTS))
    check_unique_stems(files)
    return files


def image_key(path):
    return os.path.splitext(os.path.basename(path))[0]


def check_unique_stems(paths):
    """Images are keyed by file name without extension: two inputs with one key would silently become one."""
    seen = {}
    for p in paths:
        seen.setdefault(image_key(p), []).append(p)
    clash = [v for v in seen.values() if len(v) > 1]
    if clash:
        raise OptionError(f'{len(clash)} key(s) name more than one input file, e.g. {clash[0][0]} and {clash[0][1]}; '
                          f'outputs are keyed by the name without extension: rename or remove one of each')


def read_rgb(path, allow_resize_to=None, scales=(), square=True):
    """Read one face as uint8 RGB [H, W, 3], refusing what would silently go wrong later.

    allow_resize_to: target HR size (the image is resized to it with MATLAB bicubic, so divisibility by the
    scales is then guaranteed); None keeps the size and requires it to be divisible by every scale.
    """
    try:
        with Image.open(path) as im:
            im.load()  # raises on truncated files ("image file is truncated")
            # the EXIF orientation every viewer applies (a phone photo stored sideways is shown upright)
            img = ImageOps.exif_transpose(im)
            mode = img.mode
            if mode in ('RGBA', 'LA', 'PA') or (mode == 'P' and 'transparency' in im.info):
                raise BadImage(path, f'has an alpha channel (mode {mode})',
                               'Flatten it onto a background and save as RGB, or pass --on-error skip')
            if mode in ('L', 'I', 'I;16', 'F', '1'):
                raise BadImage(path, f'is grayscale (mode {mode})',
                               'LLV-FSR expects RGB faces; convert it to RGB, or pass --on-error skip')
            arr = np.asarray(img.convert('RGB'))
    except BadImage:
        raise
    except (OSError, SyntaxError, ValueError) as e:
        raise BadImage(path, f'cannot be decoded ({e})',
                       'The file is truncated or not an image; re-export it, or pass --on-error skip') from None
    if path.lower().endswith(('.jpg', '.jpeg')):
        with open(path, 'rb') as f:
            f.seek(-2, os.SEEK_END)
            if f.read(2) != b'\xff\xd9':
                raise BadImage(path, 'is a truncated JPEG (no end-of-image marker)',
                               'Re-download or re-export it, or pass --on-error skip')
    h, w = arr.shape[:2]
    if square and h != w:
        raise BadImage(path, f'is not square ({w}x{h})',
                       'Faces must be aligned square crops (as CelebA-HQ / FFHQ); crop it first, or pass '
                       '--on-error skip')
    if allow_resize_to:
        if (h, w) != (allow_resize_to, allow_resize_to):
            arr = imresize_uint8(arr, out_hw=(allow_resize_to, allow_resize_to))
    else:
        bad = [s for s in scales if h % s or w % s]
        if bad:
            raise BadImage(path, f'size {w}x{h} is not divisible by scale(s) {bad}',
                           'Pass --hr-size (e.g. 256) to resize HR first, or crop it')
    return arr


def imresize_uint8(img, scale=None, out_hw=None):
    """MATLAB-style bicubic resize (basicsr.utils.matlab_functions.imresize, with antialiasing), uint8 in/out.
    This is the community's convention for FSR LR generation."""
    x = img.astype(np.float64) / 255.0
    if scale is None:
        scale = out_hw[0] / img.shape[0]
    y = imresize(x, scale, antialiasing=True)
    if out_hw is not None and y.shape[:2] != tuple(out_hw):
        raise ValueError(f'resize to {out_hw} gave {y.shape[:2]}')
    return np.clip(np.round(y * 255.0), 0, 255).astype(np.uint8)


def degrade(hr, scale):
    """HR uint8 RGB -> LR uint8 RGB by MATLAB bicubic x1/scale."""
    h, w = hr.shape[:2]
    return imresize_uint8(hr, out_hw=(h // scale, w // scale))


def encode_png(rgb):
    ok, buf = cv2.imencode('.png', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION])
    if not ok:
        raise ValueError('PNG encoding failed')
    return buf.tobytes()


def decode_png(raw):
    img = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError('cannot decode image bytes')
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


class ImageLMDBWriter(Writer):
    """BasicSR-format image LMDB (PNG values, `meta_info.txt`), resumable and atomic; readable by
    BasicSR's PairedImageDataset and every baseline as is."""

    def __init__(self, path, meta, overwrite=False):
        super().__init__(path, meta, fmt='lmdb', overwrite=overwrite)
        self.shapes = {}

    def put_images(self, items):
        blobs = []
        for key, rgb in items:
            if '.' in key or ' ' in key:
                raise ValueError(f'image key {key!r}: BasicSR LMDB keys may not contain "." or spaces')
            blobs.append((key, encode_png(rgb)))
            self.shapes[key] = rgb.shape
        self.put_many(blobs)

    def finalize(self, expected_keys, extra_meta=None):
        if set(expected_keys) - self.done:
            return super().finalize(expected_keys)  # raises, naming the missing keys
        lines = []
        for key in sorted(expected_keys):
            if key not in self.shapes:  # written by an earlier, interrupted run: read the size back
                self.shapes[key] = decode_png(self.kv.get(key.encode())).shape
            h, w, c = self.shapes[key]
            lines.append(f'{key}.png ({h},{w},{c}) {PNG_COMPRESSION}\n')
        return super().finalize(expected_keys, extra_files={'meta_info.txt': ''.join(lines).encode()},
                                extra_meta=extra_meta)
