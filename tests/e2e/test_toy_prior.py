"""A fifth prior from outside the package: one contract entry and one extractor in a plugin module (declared
under the `basicsr.plugins` entry point), then the unchanged prep commands and `basicsr train` use it."""
import os
import shutil
import subprocess

import torch

from llvfsr_plugin import options as O
from llvfsr_plugin.prep.layout import prior_path

from helpers import PY, ROOT, images_only, run_cli, small_net, train_opt, write_yaml

TOY_PRIOR = '''
"""Toy fifth prior: the Sobel edge magnitude of the LR face, fused like a depth map (spatial attention)."""
import cv2
import numpy as np

from llvfsr_plugin.priors.contract import PriorSpec, map_array, register_prior
from llvfsr_plugin.priors.extractors import PriorExtractor, register

register_prior(PriorSpec('edges', 'map', 'F_E', 'spatial', 'EdgA'))


@register('edges', 'sobel')
class SobelEdges(PriorExtractor):
    """Sobel gradient magnitude of the bicubic-upsampled LR face, in [0, 1]."""

    def __init__(self, prior_size=32):
        self.prior_size = prior_size

    def meta(self):
        return dict(super().meta(), prior_size=self.prior_size)

    def extract(self, samples):
        out = []
        for s in samples:
            g = cv2.resize(s.lr, (self.prior_size,) * 2, interpolation=cv2.INTER_CUBIC).mean(2).astype(np.float32)
            m = np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1))
            out.append((map_array('edges', m / max(float(m.max()), 1e-6)), {'source': s.key, 'fallback': False}))
        return out
'''


def _install_plugin(folder):
    """The module plus a distribution record declaring it under `basicsr.plugins` (what `pip install` of a
    package with that entry point leaves on sys.path)."""
    os.makedirs(folder / 'toy_prior-0.1.dist-info')
    (folder / 'toy_prior.py').write_text(TOY_PRIOR)
    meta = 'Metadata-Version: 2.1\nName: toy-prior\nVersion: 0.1\n'
    (folder / 'toy_prior-0.1.dist-info' / 'METADATA').write_text(meta)
    (folder / 'toy_prior-0.1.dist-info' / 'entry_points.txt').write_text('[basicsr.plugins]\ntoy = toy_prior\n')
    return dict(os.environ, PYTHONPATH=f"{folder}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")


def test_toy_fifth_prior_through_prep_and_basicsr_train(tiny_root, tmp_path):
    env = _install_plugin(tmp_path / 'plugins')
    root = images_only(tiny_root, tmp_path)
    for split in ('train', 'val'):  # the mask store from the tiny root, the edges store made here
        shutil.copytree(prior_path(tiny_root, split, 8, 'mask'), prior_path(root, split, 8, 'mask'))
    r = subprocess.run([PY, f'{ROOT}/datasets_prep/extract_priors.py', '--root', root, '--scales', '8', '--priors',
                        'edges'], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    r = subprocess.run([PY, f'{ROOT}/datasets_prep/validate.py', '--root', root], capture_output=True, text=True,
                       env=env, timeout=600)
    assert r.returncode == 0 and '[validate] OK' in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]

    priors = ['mask', 'edges']
    ds = {s: O.dataset_opt(root, s, 8, priors, phase=s, batch_size=4) for s in ('train', 'val')}
    opt = train_opt(root, 'toy_prior', network=small_net(priors), iters=1, datasets=ds)
    run_cli(['train', '-opt', write_yaml(tmp_path / 'toy.yml', opt)], cwd=tmp_path, env=env)
    ckpt = tmp_path / 'experiments' / 'toy_prior' / 'models' / 'net_g_latest.pth'
    params = torch.load(ckpt, weights_only=True)['params']
    assert any(k.startswith('edges_encoder.') for k in params) and any('.edga.' in k for k in params)
