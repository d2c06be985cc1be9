"""Compatibility patches for official ``basicsr==1.4.2`` on current PyTorch, in one place.

Applied by ``import llvfsr_plugin`` (before the package imports basicsr). Every patch is idempotent and
a no-op where it is not needed (CUDA present, a future basicsr that fixed the problem). Each names the
upstream issue it works around.
"""
import datetime
import os
import sys
import types

_APPLIED = set()


# ----------------------------------------------------------------------------------------------------------
# 1. torchvision>=0.17 removed `torchvision.transforms.functional_tensor` (BasicSR#533, #663).
#    basicsr/data/degradations.py imports `rgb_to_grayscale` from it, and `import basicsr` imports that
#    module, so every basicsr import fails without this alias. It must run before any basicsr import; a
#    spawned DataLoader worker gets it through patch 5 (the dataset arrives wrapped in SpawnSafeDataset,
#    whose unpickling imports this package first).
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
    import torch
    import torch.distributed as dist
    import torch.multiprocessing as mp
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
            from torch.nn.parallel import DistributedDataParallel
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
    import torch
    from basicsr.utils import check_resume, scandir
    resume_state_path = None
    if opt['auto_resume']:
        state_path = os.path.join(opt.get('root_path', '.'), 'experiments', opt['name'], 'training_states')
        if os.path.isdir(state_path):
            states = [v for v in scandir(state_path, suffix='state', recursive=False, full_path=False)]
            if states:
                last = max(int(float(v.split('.state')[0])) for v in states)
                resume_state_path = os.path.join(state_path, f'{last}.state')
                opt['path']['resume_state'] = resume_state_path
    elif opt['path'].get('resume_state'):
        resume_state_path = opt['path']['resume_state']
    if resume_state_path is None:
        return None
    if torch.cuda.is_available() and opt.get('num_gpu', 0) != 0:
        device_id = torch.cuda.current_device()
        map_location = lambda storage, loc: storage.cuda(device_id)  # noqa: E731
    else:
        map_location = 'cpu'
    resume_state = torch.load(resume_state_path, map_location=map_location, weights_only=False)
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


# ----------------------------------------------------------------------------------------------------------
# 5. `build_dataloader` (a) has no way to pass a `collate_fn` (no upstream issue; BasicSR's own datasets
#    never need one): a dataset that defines `collate_fn` (PriorPairedDataset pads text tokens to the batch)
#    gets it; (b) under the spawn start method (`init_dist` sets it) a worker unpickles the dataset before
#    anything else, and unpickling one of BasicSR's own datasets imports basicsr -> the removed torchvision
#    module (patch 1). Workers therefore receive the dataset inside `SpawnSafeDataset`, whose unpickling
#    imports llvfsr_plugin (applying patch 1) first. A no-op for num_workers == 0.
# ----------------------------------------------------------------------------------------------------------
def _rebuild_spawn_safe(dataset):
    return SpawnSafeDataset(dataset)


class SpawnSafeDataset:
    """Transparent dataset proxy whose pickle applies the compat patches before the wrapped dataset."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __reduce__(self):
        # pickle stores (callable, args): loading the callable imports llvfsr_plugin.compat -> llvfsr_plugin
        # (patch 1) before `args` (the BasicSR dataset, whose class import needs basicsr) is unpickled
        return _rebuild_spawn_safe, (self.dataset,)

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        return self.dataset[i]

    def __getattr__(self, name):
        if name == 'dataset':
            raise AttributeError(name)
        return getattr(self.dataset, name)


def patch_collate():
    if 'collate' in _APPLIED:
        return
    import basicsr.data as bd
    import basicsr.test as btest
    import basicsr.train as btrain
    orig = bd.build_dataloader

    def build_dataloader(dataset, dataset_opt, *args, **kwargs):
        if dataset_opt.get('phase') == 'train' and dataset_opt.get('num_worker_per_gpu', 0) > 0:
            dataset = SpawnSafeDataset(dataset)
        loader = orig(dataset, dataset_opt, *args, **kwargs)
        if getattr(dataset, 'collate_fn', None) is not None:
            loader.collate_fn = dataset.collate_fn
        return loader

    for mod in (bd, btrain, btest):
        mod.build_dataloader = build_dataloader
    _APPLIED.add('collate')


# ----------------------------------------------------------------------------------------------------------
# 6. Crash-safe saving and exact resume (no upstream issue; BasicSR's documented behaviour):
#    - `save_network` / `save_training_state` write in place: a SIGKILL during `torch.save` leaves a truncated
#      `N.state` that `--auto_resume` then picks and fails on. We write `<file>.tmp` and rename.
#    - resuming restarts the interrupted epoch from its first batch and does not restore the RNGs, so a
#      resumed run sees other batches / flips than an uninterrupted one. The training state now also holds
#      the python / numpy / torch (/ CUDA) RNG states, and on resume the train sampler skips the batches the
#      interrupted epoch already consumed. With num_worker_per_gpu: 0 the resumed run is bit-exact; with
#      workers, their augmentation RNG restarts from BasicSR's per-worker seed (batches are still exact).
# ----------------------------------------------------------------------------------------------------------
_TRAIN = {}


def _atomic_torch_save(obj, path):
    import torch
    tmp = path + '.tmp'
    torch.save(obj, tmp)
    with open(tmp, 'rb') as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _rng_state():
    import random

    import numpy as np
    import torch
    state = {'python': random.getstate(), 'numpy': np.random.get_state(), 'torch': torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state):
    import random

    import numpy as np
    import torch
    random.setstate(state['python'])
    np.random.set_state(state['numpy'])
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


class _SkipOnceSampler:
    """Wraps BasicSR's EnlargedSampler: the first epoch after a resume skips already-consumed indices."""

    def __init__(self, sampler):
        self.sampler, self.skip = sampler, 0

    def __iter__(self):
        it = iter(self.sampler)
        skip, self.skip = self.skip, 0
        for _ in range(skip):
            next(it, None)
        return it

    def __len__(self):
        return len(self.sampler)

    def set_epoch(self, epoch):
        self.sampler.set_epoch(epoch)


def patch_exact_resume():
    if 'exact_resume' in _APPLIED:
        return
    import basicsr.train as btrain
    from basicsr.models import base_model
    from basicsr.utils.dist_util import master_only
    BaseModel = base_model.BaseModel
    orig_loaders = btrain.create_train_val_dataloader

    def create_train_val_dataloader(opt, logger):
        result = list(orig_loaders(opt, logger))
        train_loader = result[0]
        if train_loader is not None and train_loader.sampler is not None:
            wrapped = _SkipOnceSampler(result[1])
            # the DataLoader froze its batch_sampler around the original sampler: point it at the wrapper
            train_loader.batch_sampler.sampler = wrapped
            result[1] = wrapped
            _TRAIN.update(loader=train_loader, sampler=wrapped)
        return tuple(result)

    btrain.create_train_val_dataloader = create_train_val_dataloader

    @master_only
    def save_network(self, net, net_label, current_iter, param_key='params'):
        current_iter = 'latest' if current_iter == -1 else current_iter
        nets = net if isinstance(net, list) else [net]
        keys = param_key if isinstance(param_key, list) else [param_key]
        save = {}
        for n, k in zip(nets, keys):
            sd = self.get_bare_model(n).state_dict()
            save[k] = {(key[7:] if key.startswith('module.') else key): v.cpu() for key, v in sd.items()}
        _atomic_torch_save(save, os.path.join(self.opt['path']['models'], f'{net_label}_{current_iter}.pth'))

    @master_only
    def save_training_state(self, epoch, current_iter):
        if current_iter == -1:
            return
        state = {'epoch': epoch, 'iter': current_iter, 'optimizers': [o.state_dict() for o in self.optimizers],
                 'schedulers': [s.state_dict() for s in self.schedulers], 'rng': _rng_state()}
        _atomic_torch_save(state, os.path.join(self.opt['path']['training_states'], f'{current_iter}.state'))

    orig_resume = BaseModel.resume_training

    def resume_training(self, resume_state):
        orig_resume(self, resume_state)
        if 'rng' in resume_state:
            _set_rng_state(resume_state['rng'])
        loader, sampler = _TRAIN.get('loader'), _TRAIN.get('sampler')
        if loader is not None:
            done = resume_state['iter'] - resume_state['epoch'] * len(loader)  # batches of this epoch already used
            sampler.skip = max(0, done) * loader.batch_size

    BaseModel.save_network = save_network
    BaseModel.save_training_state = save_training_state
    BaseModel.resume_training = resume_training
    _APPLIED.add('exact_resume')


def apply_pre_import():
    """Patches that must exist before basicsr is imported."""
    patch_functional_tensor()


def apply_post_import():
    """Patches on basicsr's own functions (basicsr is importable after `apply_pre_import`)."""
    patch_dist()
    patch_resume()
    patch_collate()
    patch_exact_resume()


def applied():
    return sorted(_APPLIED)
