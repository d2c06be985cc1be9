"""Repairs of official ``basicsr==1.4.2`` on current PyTorch, in one place.

Applied by ``import llvfsr_plugin`` (before the package imports basicsr). Every repair is idempotent and
a no-op where it is not needed (CUDA present, a future basicsr that fixed the problem). Each names the
upstream issue it works around. Features this plugin adds to BasicSR's training (crash-safe checkpoints,
exact resume, text collate) are not repairs: they live in `llvfsr_plugin.training`.
"""
import datetime
import os
import sys
import types

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

# basicsr is imported inside the patch functions: this module runs before basicsr can be imported (repair 1)

_APPLIED = set()


# ----------------------------------------------------------------------------------------------------------
# 1. torchvision>=0.17 removed `torchvision.transforms.functional_tensor` (BasicSR#533, #663).
#    basicsr/data/degradations.py imports `rgb_to_grayscale` from it, and `import basicsr` imports that
#    module, so every basicsr import fails without this alias. It must run before any basicsr import (a
#    spawned DataLoader worker of the `basicsr` CLI gets it through `training.SpawnSafeDataset`).
# ----------------------------------------------------------------------------------------------------------
def patch_functional_tensor():
    name = 'torchvision.transforms.functional_tensor'
    if name in sys.modules:
        return
    try:
        import torchvision.transforms.functional_tensor  # noqa: F401  (old torchvision: nothing to do)
        return
    except ImportError:
        pass
    from torchvision.transforms import _functional_tensor as ft
    shim = types.ModuleType(name)
    shim.__dict__.update({k: v for k, v in vars(ft).items() if not k.startswith('__')})
    shim.__doc__ = 'llvfsr_plugin alias of torchvision.transforms._functional_tensor (BasicSR#533)'
    sys.modules[name] = shim
    _APPLIED.add('functional_tensor')


# ----------------------------------------------------------------------------------------------------------
# 2. torchrun on CPU: basicsr/utils/dist_util.py (no upstream issue filed; the same code in mmcv gives the
#    "ZeroDivisionError: integer division or modulo by zero" reports, e.g. open-mmlab/mmdetection#368).
#    `init_dist` hard-codes the nccl backend and `torch.cuda.set_device(rank % device_count())`, and
#    `BaseModel.model_to_device` wraps DDP with CUDA `device_ids`. On a machine without CUDA we use gloo
#    and plain DDP; with CUDA we keep nccl but pick the device from LOCAL_RANK (correct on multi-node,
#    where RANK % num_gpus is not the local GPU). A process-group timeout makes a dead rank end the job.
# ----------------------------------------------------------------------------------------------------------
def _dist_timeout():
    return datetime.timedelta(seconds=float(os.environ.get('LLVFSR_DIST_TIMEOUT', '1800')))


def init_dist(launcher, backend=None, **kwargs):
    if mp.get_start_method(allow_none=True) is None:
        mp.set_start_method('spawn')
    if launcher != 'pytorch':
        return _orig_init_dist(launcher, backend=backend or 'nccl', **kwargs)
    cuda = torch.cuda.is_available() and torch.cuda.device_count() > 0
    if backend is None or (backend == 'nccl' and not cuda):
        backend = 'nccl' if cuda else 'gloo'
    if cuda:
        local_rank = int(os.environ.get('LOCAL_RANK', int(os.environ.get('RANK', 0)) % torch.cuda.device_count()))
        torch.cuda.set_device(local_rank)
    kwargs.setdefault('timeout', _dist_timeout())
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, **kwargs)


_orig_init_dist = None


def patch_dist():
    global _orig_init_dist
    if 'dist' in _APPLIED:
        return
    from basicsr.models import base_model
    from basicsr.utils import dist_util, options
    _orig_init_dist = dist_util.init_dist
    dist_util.init_dist = init_dist
    options.init_dist = init_dist  # imported by name there

    orig_model_to_device = base_model.BaseModel.model_to_device

    def model_to_device(self, net):
        if self.opt.get('dist') and self.device.type == 'cpu':
            net = net.to(self.device)
            return DistributedDataParallel(net, find_unused_parameters=self.opt.get('find_unused_parameters', False))
        return orig_model_to_device(self, net)

    base_model.BaseModel.model_to_device = model_to_device
    _APPLIED.add('dist')


# ----------------------------------------------------------------------------------------------------------
# 3. `--auto_resume` (basicsr/train.py `load_resume_state`): calls `torch.cuda.current_device()` (fails on
#    CPU), looks for `experiments/<name>` relative to the cwd instead of `opt['root_path']`, and on
#    torch>=2.6 `torch.load` defaults to weights_only=True, which refuses the scheduler state's
#    `collections.Counter` (BasicSR PR #706, unmerged). The state file is one the user's
#    own run wrote, so it is trusted.
# ----------------------------------------------------------------------------------------------------------
def load_resume_state(opt):
    from basicsr.utils import check_resume, scandir
    from llvfsr_plugin.utils.checkpoint import read_training_state
    candidates = []
    if opt['auto_resume']:
        state_path = os.path.join(opt.get('root_path', '.'), 'experiments', opt['name'], 'training_states')
        if os.path.isdir(state_path):
            states = [v for v in scandir(state_path, suffix='state', recursive=False, full_path=False)]
            iters = sorted((int(float(v.split('.state')[0])) for v in states), reverse=True)
            candidates = [os.path.join(state_path, f'{i}.state') for i in iters]
    elif opt['path'].get('resume_state'):
        candidates = [opt['path']['resume_state']]
    if not candidates:
        return None
    if torch.cuda.is_available() and opt.get('num_gpu', 0) != 0:
        device_id = torch.cuda.current_device()
        map_location = lambda storage, loc: storage.cuda(device_id)  # noqa: E731
    else:
        map_location = 'cpu'
    # one reader for every checkpoint (llvfsr_plugin.utils.checkpoint): an unreadable newest state falls back
    # (not BasicSR's logger: asking for it before train_pipeline sets it up would leave it without its log file)
    path, resume_state = read_training_state(candidates, map_location,
                                             log=lambda msg: print(f'[basicsr] warning: {msg}', file=sys.stderr))
    opt['path']['resume_state'] = path
    check_resume(opt, resume_state['iter'])
    return resume_state


def patch_resume():
    if 'resume' in _APPLIED:
        return
    import basicsr.train as bt
    bt.load_resume_state = load_resume_state
    _APPLIED.add('resume')


# ----------------------------------------------------------------------------------------------------------
# 4. PyTorch 2's `torch.distributed.launch` passes `--local-rank=N`; basicsr's argparse only knows
#    `--local_rank` (BasicSR#626). torchrun passes neither (it sets LOCAL_RANK), so this is a no-op there.
# ----------------------------------------------------------------------------------------------------------
def normalize_argv(argv):
    out = []
    for a in argv:
        if a == '--local-rank' or a.startswith('--local-rank='):
            a = a.replace('--local-rank', '--local_rank', 1)
        out.append(a)
    return out


def apply_pre_import():
    """Patches that must exist before basicsr is imported."""
    patch_functional_tensor()


def apply_post_import():
    """Patches on basicsr's own functions (basicsr is importable after `apply_pre_import`)."""
    patch_dist()
    patch_resume()


def applied():
    return sorted(_APPLIED)
