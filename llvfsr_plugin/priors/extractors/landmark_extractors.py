"""Map priors from a *learned* landmark regressor: LandmarkNet reads the LR face and predicts the 478 FaceMesh
landmarks of the HR face, which are painted into the same label map and depth as the FaceMesh extractors
(`rasterize_regions`, `interpolate_depth`).

Why: at x16 FaceMesh reads a 16 px face only after upsampling (bicubic or a first SR pass) and stays ~2 px off
the HR face's landmarks at 256 px; the same network given the HR face's maps gains +0.5 dB in the face region
(benchmarks/results/quality_x16_tail_2026-12-01, "Would better maps help?"). A regressor trained on LR faces
against FaceMesh on their HR faces learns the HR landmarks directly, from the LR image only.

The weights ship in assets/landmark_net.pth (made by datasets_prep/train_landmark_net.py, which says on which
faces); `--mask landmark-net --depth landmark-net [--mask-opt weights=PATH --depth-opt weights=PATH]`.
"""
import os

import numpy as np
import torch
from torch import nn

from llvfsr_plugin.errors import CheckpointError

from .base import FaceMemo, auto_device, file_sha256, register, upsample_rgb
from .map_extractors import ASSETS, FaceMeshDepth, FaceMeshMask

LANDMARK_NET = os.path.join(ASSETS, 'landmark_net.pth')
NUM_LANDMARKS = 478  # FaceMesh, refined (irises included)


def res_block(ch):
    return nn.Sequential(nn.Conv2d(ch, ch, 3, 1, 1, bias=False), nn.BatchNorm2d(ch), nn.ReLU(inplace=True),
                         nn.Conv2d(ch, ch, 3, 1, 1, bias=False), nn.BatchNorm2d(ch))


class ResStage(nn.Module):
    """Stride-2 conv to `out_ch`, then one residual block."""

    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.down = nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, 2, 1, bias=False), nn.BatchNorm2d(out_ch),
                                  nn.ReLU(inplace=True))
        self.block = res_block(out_ch)

    def forward(self, x):
        x = self.down(x)
        return torch.relu(x + self.block(x))


class LandmarkNet(nn.Module):
    """LR face -> FaceMesh landmarks of the HR face. A small CNN on the LR face resized to `input_size`,
    predicting the coefficients of a linear shape model (mean + basis, from the training faces' landmarks), so
    every output is a face-like landmark set. The coefficient head starts at zero: an untrained net predicts
    the mean face.

    Args:
        shape_mean (Tensor): [NUM_LANDMARKS * 3] mean landmarks (x, y in [0, 1] of the face; z relative).
        shape_basis (Tensor): [K, NUM_LANDMARKS * 3] shape components, scaled by their standard deviation.
        input_size (int): side the LR face is resized to (bicubic).
        widths (tuple[int]): channels at input_size, then at each stride-2 stage.
    """

    def __init__(self, shape_mean, shape_basis, input_size=32, widths=(32, 48, 64, 96)):
        super().__init__()
        self.input_size, self.widths = input_size, tuple(widths)
        self.register_buffer('shape_mean', torch.as_tensor(shape_mean, dtype=torch.float32).reshape(-1))
        self.register_buffer('shape_basis', torch.as_tensor(shape_basis, dtype=torch.float32))
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]),
                                  nn.ReLU(inplace=True))
        self.stages = nn.Sequential(*[ResStage(a, b) for a, b in zip(widths[:-1], widths[1:])])
        side = input_size // 2 ** (len(widths) - 1)
        self.head = nn.Sequential(nn.Conv2d(widths[-1], 32, 1), nn.ReLU(inplace=True), nn.Flatten(),
                                  nn.Linear(32 * side * side, 256), nn.ReLU(inplace=True),
                                  nn.Linear(256, self.shape_basis.shape[0]))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def config(self):
        return {'input_size': self.input_size, 'widths': list(self.widths), 'num_coeffs': self.shape_basis.shape[0]}

    def forward(self, x):
        """x: [B, 3, input_size, input_size] RGB in [0, 1] -> landmarks [B, NUM_LANDMARKS, 3]."""
        coeffs = self.head(self.stages(self.stem(x * 2 - 1)))
        return (self.shape_mean + coeffs @ self.shape_basis).view(x.shape[0], NUM_LANDMARKS, 3)


def lr_input(lr, size):
    """uint8 RGB LR face -> float [3, size, size] in [0, 1]: what LandmarkNet reads (bicubic resize)."""
    return torch.from_numpy(np.ascontiguousarray(upsample_rgb(lr, size))).permute(2, 0, 1).float() / 255


def save_landmark_net(net, path, meta):
    """Write `net` with its configuration and `meta` (what it was trained on, its held-out error)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    state = {k: v.half() if v.is_floating_point() and not k.startswith('shape_') else v
             for k, v in net.state_dict().items()}  # fp16 halves the shipped file; the shape model stays fp32
    torch.save({'config': net.config(), 'state_dict': state, 'meta': meta}, path + '.part')
    os.replace(path + '.part', path)


def load_landmark_net(path=None):
    """LandmarkNet from a file of `save_landmark_net` (None: the shipped assets/landmark_net.pth), in eval mode."""
    path = path or LANDMARK_NET
    if not os.path.isfile(path):
        raise CheckpointError(f'landmark-net: weights {path} not found; make them with '
                              f'datasets_prep/train_landmark_net.py, or pass --mask-opt weights=PATH '
                              f'--depth-opt weights=PATH')
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
        cfg, state = ckpt['config'], ckpt['state_dict']
        net = LandmarkNet(state['shape_mean'], state['shape_basis'], cfg['input_size'], cfg['widths'])
        net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    except (KeyError, RuntimeError, TypeError, ValueError, EOFError) as e:
        raise CheckpointError(f'landmark-net: {path} is not a LandmarkNet file of datasets_prep/'
                              f'train_landmark_net.py ({type(e).__name__}: {str(e).splitlines()[0][:160]})') from None
    net.meta = ckpt.get('meta', {})
    return net.eval()


class LandmarkNetRunner:
    """One LandmarkNet per weights file and device, shared by the mask and depth extractors; the last faces'
    landmarks are cached so both read one forward pass per face."""

    _instances = {}

    @classmethod
    def get(cls, weights=None, device=None):
        key = (os.path.abspath(weights or LANDMARK_NET), auto_device(device))
        if key not in cls._instances:
            cls._instances[key] = cls(weights, device)
        return cls._instances[key]

    def __init__(self, weights=None, device=None):
        # the meta names other weights by path and the shipped ones as None, however the caller spelt them: the
        # instance is shared by everyone asking for the same file, so what it records must not depend on who came first
        path = os.path.abspath(weights or LANDMARK_NET)
        self.weights = None if path == os.path.abspath(LANDMARK_NET) else path
        self.device = auto_device(device)
        self.net = load_landmark_net(weights).to(self.device)
        self.digest = file_sha256(weights or LANDMARK_NET)
        self._memo = FaceMemo(limit=512)

    def landmarks(self, key, lr):
        """-> [NUM_LANDMARKS, 3] float64 (x, y in [0, 1] of the face; z relative, smaller = nearer)."""
        return self._memo.get(lr, self._landmarks, key)

    @torch.no_grad()
    def _landmarks(self, lr):
        x = lr_input(lr, self.net.input_size)[None].to(self.device)
        return self.net(x)[0].double().cpu().numpy()

    def possibly_seen(self, keys):
        """The `keys` (dataset keys, e.g. CelebA-HQ indices) the net may have been trained on: all but those its
        training left out (its meta's `excluded_keys`)."""
        excluded = set(self.net.meta.get('excluded_keys', ()))
        return [k for k in keys if k not in excluded]

    def meta(self):
        return {'model': 'landmark-net', 'weights': self.weights, 'landmark_net': self.digest,
                'input_size': self.net.input_size}


class _LandmarkNetPrior:
    """FaceMesh's map painting, with the landmarks from LandmarkNet on the LR face (never a fallback)."""

    def __init__(self, prior_size=128, weights=None, device=None):
        self.prior_size = prior_size
        self.runner = LandmarkNetRunner.get(weights, device)

    def possibly_seen(self, keys):
        return self.runner.possibly_seen(keys)


@register('mask', 'landmark-net')
class LandmarkNetMask(_LandmarkNetPrior, FaceMeshMask):
    """FaceMesh regions of the HR face's landmarks as LandmarkNet predicts them from the LR face."""


@register('depth', 'landmark-net')
class LandmarkNetDepth(_LandmarkNetPrior, FaceMeshDepth):
    """Dense relative depth from the z of LandmarkNet's predicted landmarks (1 = nearest)."""
