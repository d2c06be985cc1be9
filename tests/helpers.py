"""Plain helpers for the tests (imported by name; `conftest.py` only holds fixtures): paths of the bundled
faces, option dicts from the package's option builder at the tests' tiny sizes, LMDB tampering, and a CLI
runner. Everything runs offline on CPU; nothing needs ../shared."""
import csv
import os
import shutil
import subprocess
import sys

import lmdb

from llvfsr_plugin import options as O
from llvfsr_plugin.options import dump_yaml
from llvfsr_plugin.priors.contract import PAPER_PRIORS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, 'demo_data', 'celebahq_demo')
PY = sys.executable
ALL = PAPER_PRIORS


def demo_keys(split, n=None):
    with open(os.path.join(DEMO, 'index.csv')) as f:
        keys = [r['celebahq_idx'] for r in csv.DictReader(f) if r['split'] == split]
    return keys[:n] if n else keys


def dataset_opt(root, split, priors=ALL, scale=8, **kw):
    """The tiny root's dataset option (train: batch 4, no workers)."""
    return O.dataset_opt(root, split, scale, priors, phase=split, name=f'tiny_{split}', batch_size=4, **kw)


def small_net(priors=ALL, scale=8, **kw):
    return O.network_opt(priors, scale, **dict({'num_feat': 16, 'num_blocks': 2, 'transformer_depth': 1,
                                                'num_heads': 2, 'text_dim': 384, 'num_classes': 10}, **kw))


def train_opt(root, name, network=None, priors=ALL, iters=4, model_type='LLVFSRModel', datasets=None, **extra):
    """A `basicsr train` option on the tiny root: validation at the end, checkpoints every 2 iterations."""
    datasets = datasets or {'train': dataset_opt(root, 'train', priors), 'val': dataset_opt(root, 'val', priors)}
    opt = O.train_opt(name, datasets, network or small_net(priors), iters, model_type, val_freq=iters,
                      checkpoint_freq=2, print_freq=1)
    opt.update(extra)
    return opt


def awaken(net, seed=0, std=0.1):
    """Give the zero-initialised last layers of every prior path (LVPFB fusion, SFT, FiLM) random values, as a
    trained network has: at initialisation those paths add nothing by design, so tests of what a branch does
    call this first."""
    import torch
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            if not p.any():
                p.copy_(torch.randn(p.shape, generator=g) * std)
    return net


def identity_checkpoint(folder, lr_size=32, scale=8, priors=('caption', 'mask', 'depth'), config=True, **net_kw):
    """A self-describing checkpoint of a small LLVFSRArch whose output is its bicubic-upsampled input (the
    reconstructor zeroed): whole-photo geometry can be checked against the plain upscale. `config=False`: a
    checkpoint as earlier versions saved it (weights only)."""
    import torch

    from basicsr.archs import build_network
    from llvfsr_plugin.utils.checkpoint import CONFIG_KEY
    net_opt = small_net(priors, scale, **net_kw)
    net = build_network(dict(net_opt))
    with torch.no_grad():
        net.conv_last.weight.zero_()
        net.conv_last.bias.zero_()
    state = {'params': net.state_dict()}
    if config:
        maps = {p: {'extractor': 'facemesh', 'prior_size': 128, 'upsample_to': 256} for p in ('mask', 'depth')}
        text = {p: {'extractor': 'file', 'text_encoder': 'minilm', 'text_dim': 384, 'dropout': 0.5}
                for p in ('caption', 'description')}
        state[CONFIG_KEY] = {'format': 1, 'network_g': net_opt, 'scale': scale, 'lr_size': lr_size,
                             'priors': {p: dict(maps, **text)[p] for p in priors}}
    path = os.path.join(str(folder), f'identity_x{scale}_{lr_size}.pth')
    torch.save(state, path)
    return path


def write_yaml(path, opt):
    return dump_yaml(path, opt)


def tamper(lmdb_path, key, value=None):
    """Delete `key` from an LMDB (value None) or overwrite it with raw bytes, behind the writers' back."""
    env = lmdb.open(lmdb_path)
    with env.begin(write=True) as txn:
        txn.delete(key.encode()) if value is None else txn.put(key.encode(), value)
    env.close()


def images_only(tiny_root, tmp_path):
    """A copy of the tiny root's image LMDBs and splits, without priors."""
    root = str(tmp_path / 'data')
    for split in ('train', 'val'):
        os.makedirs(os.path.join(root, split))
        for name in ('hr.lmdb', 'lr_x8.lmdb'):
            shutil.copytree(os.path.join(tiny_root, split, name), os.path.join(root, split, name))
    shutil.copy(os.path.join(tiny_root, 'splits.json'), root)
    return root


def run_cli(args, cwd, timeout=600, env=None, check=True):
    """Run `python -m llvfsr_plugin ...` (the same entry as the `basicsr` console script)."""
    e = {**os.environ, 'PYTHONUNBUFFERED': '1', **(env or {})}
    r = subprocess.run([PY, '-m', 'llvfsr_plugin', *args], cwd=cwd, capture_output=True, text=True,
                       timeout=timeout, env=e)
    if check and r.returncode != 0:
        raise AssertionError(f'exit {r.returncode}\nSTDOUT:\n{r.stdout[-4000:]}\nSTDERR:\n{r.stderr[-4000:]}')
    return r
