"""Shared fixtures: a tiny real-face dataset (bundled CelebA-HQ faces -> LMDBs + offline priors), option
writers, and a CLI runner. Everything runs offline on CPU; nothing needs ../shared."""
import csv
import os
import subprocess
import sys

import pytest
import yaml

import llvfsr_plugin  # noqa: F401  (compat patches + registries before any basicsr import)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, 'demo_data', 'celebahq_demo')
os.environ.setdefault('GLOG_minloglevel', '2')


def demo_keys(split, n=None):
    with open(os.path.join(DEMO, 'index.csv')) as f:
        keys = [r['celebahq_idx'] for r in csv.DictReader(f) if r['split'] == split]
    return keys[:n] if n else keys


@pytest.fixture(scope='session')
def demo_dir():
    return DEMO


@pytest.fixture(scope='session')
def tiny_root(tmp_path_factory):
    """8 train + 4 val real faces, HR 128, x8 (16 px LR), all four offline priors. Built once (~10 s)."""
    from llvfsr_plugin.prep.pipeline import extract_priors, make_image_lmdbs
    from llvfsr_plugin.priors.cli_args import default_extractors
    root = str(tmp_path_factory.mktemp('tiny') / 'data')
    files = {s: [(k, os.path.join(DEMO, 'images', f'{k}.jpg')) for k in demo_keys(s, n)]
             for s, n in (('train', 8), ('val', 4))}
    make_image_lmdbs(files, root, scales=[8], hr_size=128, workers=2)
    text_dir = os.path.join(DEMO, 'text')
    ex = default_extractors(text_dir)
    extract_priors(root, ['train', 'val'], [8], ex, text_dir=text_dir)
    return root


def dataset_opt(root, split, priors=('caption', 'description', 'mask', 'depth'), scale=8, **kw):
    opt = {'name': f'tiny_{split}', 'type': 'PriorPairedDataset',
           'dataroot_gt': f'{root}/{split}/hr.lmdb', 'dataroot_lq': f'{root}/{split}/lr_x{scale}.lmdb',
           'io_backend': {'type': 'lmdb'}, 'priors': list(priors),
           'prior_roots': {p: f'{root}/{split}/priors_x{scale}/{p}.lmdb' for p in priors}}
    if split == 'train':
        opt.update(use_hflip=True, use_rot=False, num_worker_per_gpu=0, batch_size_per_gpu=4,
                   dataset_enlarge_ratio=1, prefetch_mode=None)
    opt.update(kw)
    return opt


def small_net(priors=('caption', 'description', 'mask', 'depth'), **kw):
    net = {'type': 'LLVFSRArch', 'scale': 8, 'num_feat': 16, 'num_blocks': 2, 'transformer_depth': 1,
           'num_heads': 2, 'priors': list(priors), 'text_dim': 384, 'num_classes': 10}
    net.update(kw)
    return net


def train_opt(root, name, network=None, priors=('caption', 'description', 'mask', 'depth'), iters=4,
              model_type='LLVFSRModel', datasets=None, **extra):
    opt = {
        'name': name, 'model_type': model_type, 'scale': 8, 'num_gpu': 0, 'manual_seed': 0,
        'datasets': datasets or {'train': dataset_opt(root, 'train', priors), 'val': dataset_opt(root, 'val', priors)},
        'network_g': network or small_net(priors),
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
        'train': {'ema_decay': 0, 'optim_g': {'type': 'Adam', 'lr': 2e-4, 'weight_decay': 0, 'betas': [0.9, 0.99]},
                  'scheduler': {'type': 'MultiStepLR', 'milestones': [100000], 'gamma': 1.0},
                  'total_iter': iters, 'warmup_iter': -1,
                  'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'}},
        'val': {'val_freq': iters, 'save_img': False,
                'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 0, 'test_y_channel': True}}},
        'logger': {'print_freq': 1, 'save_checkpoint_freq': 2, 'use_tb_logger': False,
                   'wandb': {'project': None, 'resume_id': None}},
    }
    opt.update(extra)
    return opt


def write_yaml(path, opt):
    with open(path, 'w') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    return str(path)


def tamper(lmdb_path, key, value=None):
    """Delete `key` from an LMDB (value None) or overwrite it with raw bytes, behind the writers' back."""
    import lmdb
    env = lmdb.open(lmdb_path)
    with env.begin(write=True) as txn:
        txn.delete(key.encode()) if value is None else txn.put(key.encode(), value)
    env.close()


def run_cli(args, cwd, timeout=600, env=None, check=True):
    """Run `python -m llvfsr_plugin ...` (the same entry as the `basicsr` console script)."""
    e = dict(os.environ, PYTHONUNBUFFERED='1', **(env or {}))
    r = subprocess.run([sys.executable, '-m', 'llvfsr_plugin', *args], cwd=cwd, capture_output=True, text=True,
                       timeout=timeout, env=e)
    if check and r.returncode != 0:
        raise AssertionError(f'exit {r.returncode}\nSTDOUT:\n{r.stdout[-4000:]}\nSTDERR:\n{r.stderr[-4000:]}')
    return r
