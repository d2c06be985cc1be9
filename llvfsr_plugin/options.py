"""Option files, defined once: the builder of dataset / network / train / test option dicts (used by
options/generate.py, the tests, the benchmarks and the demo) and the start-up check of an option file
(run by the `basicsr` CLI before BasicSR starts, so a typo fails in one line, not a traceback).

    from llvfsr_plugin import options as O
    ds = {'train': O.dataset_opt(root, 'train', 8, priors, phase='train'), 'val': O.dataset_opt(root, 'val', 8, priors)}
    opt = O.train_opt('my_run', ds, O.network_opt(priors, scale=8), iters=1000, val_freq=500)
    O.dump_yaml('my_run.yml', opt)
"""
import copy
import difflib
import os

import yaml

import basicsr.archs  # noqa: F401  (BasicSR registers its archs, losses, metrics, models on import)
import basicsr.losses  # noqa: F401
import basicsr.metrics  # noqa: F401
import basicsr.models  # noqa: F401
from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY
from llvfsr_plugin.errors import OptionError
from llvfsr_plugin.prep.layout import hr_path, lr_path, prior_path
from llvfsr_plugin.priors.contract import PAPER_PRIORS, check_prior_names

PSNR = {'type': 'calculate_psnr', 'crop_border': 0, 'test_y_channel': True}
SSIM = {'type': 'calculate_ssim', 'crop_border': 0, 'test_y_channel': True}
FACE_PSNR = {'type': 'calculate_face_psnr'}  # PSNR-Y inside the HR face's FaceMesh oval (not in the paper)
# Table 1's other metrics and Fig. 7's identity distance (llvfsr_plugin/metrics/face_metric.py)
TEST_METRICS = {
    'lpips': {'type': 'calculate_lpips', 'better': 'lower'},
    'niqe': {'type': 'calculate_niqe_pyiqa', 'crop_border': 0, 'better': 'lower'},
    'id_dist': {'type': 'calculate_identity_distance', 'model_name': 'Dlib', 'detector_backend': 'dlib',
                'better': 'lower'},
}
RGB_MEAN = [0.4488, 0.4371, 0.4040]  # DIV2K mean, as BasicSR's own EDSR / RCAN options
BASELINES = {  # BasicSR's own networks at the paper's geometry (HR 256)
    'EDSR': lambda s: {'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 64, 'num_block': 16,
                       'upscale': s, 'res_scale': 1, 'img_range': 255.0, 'rgb_mean': RGB_MEAN},
    'RCAN': lambda s: {'type': 'RCAN', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 64, 'num_group': 10,
                       'num_block': 20, 'squeeze_factor': 16, 'upscale': s, 'res_scale': 1, 'img_range': 255.0,
                       'rgb_mean': RGB_MEAN},
    'SwinIR': lambda s: {'type': 'SwinIR', 'upscale': s, 'in_chans': 3, 'img_size': 256 // s, 'window_size': 8,
                         'img_range': 1.0, 'depths': [6, 6, 6, 6], 'embed_dim': 60, 'num_heads': [6, 6, 6, 6],
                         'mlp_ratio': 2, 'upsampler': 'pixelshuffle', 'resi_connection': '1conv'},
}


# ================================================================================================ builder
def network_opt(priors=PAPER_PRIORS, scale=8, **kw):
    """`network_g` of an LLVFSRArch (`priors=[]`: Model 1)."""
    return dict({'type': 'LLVFSRArch', 'scale': scale, 'priors': list(priors)}, **kw)


def baseline_network_opt(arch, scale, **kw):
    """`network_g` of BasicSR's EDSR / RCAN / SwinIR at `scale`."""
    return dict(BASELINES[arch](scale), **kw)


def dataset_opt(root, split, scale, priors=(), phase='val', name=None, baseline=False, batch_size=8, workers=0,
                **kw):
    """A dataset option on a prepared root (`llvfsr_plugin.prep.layout`): PriorPairedDataset with `priors`,
    or BasicSR's PairedImageDataset (`baseline=True`); `phase='train'` adds the loader options."""
    d = {'name': name or split, 'type': 'PairedImageDataset' if baseline else 'PriorPairedDataset',
         'dataroot_gt': hr_path(root, split), 'dataroot_lq': lr_path(root, split, scale),
         'io_backend': {'type': 'lmdb'}}
    if not baseline:
        d.update(priors=list(priors), prior_roots={p: prior_path(root, split, scale, p) for p in priors})
    if phase == 'train':
        d.update(use_hflip=True, use_rot=False, num_worker_per_gpu=workers, batch_size_per_gpu=batch_size,
                 dataset_enlarge_ratio=1, prefetch_mode=None)
    d.update(kw)
    return d


def train_opt(name, datasets, network, iters, model_type='LLVFSRModel', scale=8, seed=0, num_gpu=0, lr=2e-4,
              val_freq=None, metrics=None, checkpoint_freq=None, print_freq=100):
    """A `basicsr train` option dict: the paper's optimiser (Adam, betas 0.9/0.99, constant lr), L1 loss;
    validation every `val_freq` iterations (none when None) with `metrics` (default: PSNR)."""
    opt = {
        'name': name, 'model_type': model_type, 'scale': scale, 'num_gpu': num_gpu, 'manual_seed': seed,
        'datasets': datasets, 'network_g': network,
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
        'train': {'ema_decay': 0, 'optim_g': {'type': 'Adam', 'lr': lr, 'weight_decay': 0, 'betas': [0.9, 0.99],
                                              'eps': 1e-8},
                  'scheduler': {'type': 'MultiStepLR', 'milestones': [10 ** 9], 'gamma': 1.0},
                  'total_iter': iters, 'warmup_iter': -1,
                  'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'}},
        'logger': {'print_freq': print_freq, 'save_checkpoint_freq': checkpoint_freq or 10 ** 9, 'use_tb_logger': False,
                   'wandb': {'project': None, 'resume_id': None}},
    }
    if val_freq:
        opt['val'] = {'val_freq': val_freq, 'save_img': False, 'metrics': metrics or {'psnr': PSNR}}
    return opt


def test_opt(train, datasets=None, ckpt=None, metrics=None, save_img=True):
    """The `basicsr test` option dict of a train option dict: its network and `datasets` (default: its `val`
    dataset as `test_1`), checkpoint `ckpt` (default: the run's net_g_latest.pth), `metrics` (default: the
    train run's validation metrics plus LPIPS, NIQE and identity distance)."""
    t = {k: copy.deepcopy(v) for k, v in train.items() if k not in ('train', 'logger', 'dist_params', 'val')}
    t['datasets'] = datasets or {'test_1': copy.deepcopy(train['datasets']['val'])}
    t['path'] = {'pretrain_network_g': ckpt or f"experiments/{train['name']}/models/net_g_latest.pth",
                 'strict_load_g': True, 'param_key_g': 'params'}
    base = (train.get('val') or {}).get('metrics') or {'psnr': PSNR}
    t['val'] = {'save_img': save_img, 'suffix': None, 'metrics': metrics or dict(base, **TEST_METRICS)}
    return t


def dump_yaml(path, opt, header=None):
    """Write an option dict as block-style YAML (`header`: comment lines at the top)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    text = yaml.safe_dump(opt, sort_keys=False, default_flow_style=False, width=120)
    with open(path, 'w') as f:
        f.write(''.join(f'# {line}\n' for line in (header or '').splitlines()) + text)
    return str(path)


# ================================================================================================== check
def _suggest(name, choices):
    m = difflib.get_close_matches(str(name), list(choices), n=1)
    return f" Did you mean '{m[0]}'?" if m else ''


# numeric options this plugin's YAMLs use: where -> (bound, whole number?); bound '>= n' or '> n'
NUMERIC = {
    ('scale',): ('>= 1', True), ('manual_seed',): ('>= 0', True),
    ('network_g', 'scale'): ('>= 1', True), ('network_g', 'num_feat'): ('>= 1', True),
    ('network_g', 'num_blocks'): ('>= 1', True), ('network_g', 'num_heads'): ('>= 1', True),
    ('network_g', 'text_dim'): ('>= 1', True), ('network_g', 'num_classes'): ('>= 1', True),
    ('train', 'total_iter'): ('>= 1', True), ('train', 'optim_g', 'lr'): ('> 0', False),
    ('train', 'ema_decay'): ('>= 0', False), ('val', 'val_freq'): ('>= 1', False),
    ('logger', 'print_freq'): ('>= 1', False), ('logger', 'save_checkpoint_freq'): ('>= 1', False),
}
DATASET_NUMERIC = {'batch_size_per_gpu': ('>= 1', True), 'num_worker_per_gpu': ('>= 0', True),
                   'dataset_enlarge_ratio': ('>= 1', True)}


def _check_number(path, where, v, bound, whole):
    if not isinstance(v, (int, float)) or isinstance(v, bool) or (whole and not float(v).is_integer()):
        raise OptionError(f"{path}: {where} must be a {'whole ' if whole else ''}number, got {v!r}")
    op, limit = bound.split()
    if not (v >= float(limit) if op == '>=' else v > float(limit)):
        raise OptionError(f'{path}: {where} must be {bound}, got {v}')


def check_numbers(opt, path):
    """Every numeric option of NUMERIC / DATASET_NUMERIC that is set: a number, in range; one line if not."""
    ours = (opt.get('network_g') or {}).get('type') == 'LLVFSRArch'
    for keys, (bound, whole) in NUMERIC.items():
        if keys[0] == 'network_g' and keys[1] != 'scale' and not ours:  # other archs: their own options
            continue
        v = opt
        for k in keys:
            v = v.get(k) if isinstance(v, dict) else None
        if v is not None:
            _check_number(path, '.'.join(keys), v, bound, whole)
    for name, ds in (opt.get('datasets') or {}).items():
        for key, (bound, whole) in DATASET_NUMERIC.items():
            if isinstance(ds, dict) and ds.get(key) is not None:
                _check_number(path, f'datasets.{name}.{key}', ds[key], bound, whole)


def check_options(path, check_paths=True):
    """Check an option file against BasicSR's registries, the prior contract and itself (numbers in range;
    with `check_paths`, the checkpoint / resume files it names exist); raises OptionError."""
    try:
        with open(path, encoding='utf-8') as f:
            opt = yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise OptionError(f'{path}: not valid YAML: {e}') from None
    if not isinstance(opt, dict):
        raise OptionError(f'{path}: expected a mapping at top level')
    check_numbers(opt, path)
    for key in ('pretrain_network_g', 'resume_state'):
        p = (opt.get('path') or {}).get(key)
        if check_paths and p and not os.path.isfile(p):
            raise OptionError(f'{path}: path.{key} not found: {p} (cwd {os.getcwd()}); train the model first, or '
                              f'point path.{key} at an existing file')

    def need(reg, kind, where, t):
        if t is None:
            raise OptionError(f'{path}: {where}.type is missing')
        if t not in reg:
            raise OptionError(f"{path}: {where}.type '{t}' is not a registered BasicSR {kind}."
                              f'{_suggest(t, reg.keys())}')

    mt = opt.get('model_type')
    if mt is not None and mt not in MODEL_REGISTRY:
        raise OptionError(f"{path}: model_type '{mt}' is not a registered BasicSR model."
                          f'{_suggest(mt, MODEL_REGISTRY.keys())}')
    for key, val in opt.items():
        if key.startswith('network_') and isinstance(val, dict):
            need(ARCH_REGISTRY, 'arch', key, val.get('type'))
            if val.get('type') == 'LLVFSRArch':
                check_prior_names(val.get('priors') or [], f'{path}: {key}.priors')
            net_scale = val.get('scale', val.get('upscale'))
            if net_scale is not None and opt.get('scale') is not None and net_scale != opt['scale']:
                raise OptionError(f"{path}: {key}.{'scale' if 'scale' in val else 'upscale'} is {net_scale} but "
                                  f"scale is {opt['scale']}; the network must upscale by the data's scale")
    for name, ds in (opt.get('datasets') or {}).items():
        need(DATASET_REGISTRY, 'dataset', f'datasets.{name}', ds.get('type'))
        check_prior_names(ds.get('priors') or [], f'{path}: datasets.{name}.priors')
    for name, loss in (opt.get('train') or {}).items():
        if name.endswith('_opt') and isinstance(loss, dict):
            need(LOSS_REGISTRY, 'loss', f'train.{name}', loss.get('type'))
    for name, m in ((opt.get('val') or {}).get('metrics') or {}).items():
        need(METRIC_REGISTRY, 'metric', f'val.metrics.{name}', m.get('type'))
    return opt
