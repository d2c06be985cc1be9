"""Features this plugin adds to BasicSR's training (not repairs: those are `llvfsr_plugin.compat`).

- **Crash-safe checkpoints and exact resume** (`CrashSafeCheckpoints`): BasicSR writes `N.pth` / `N.state`
  in place, so a SIGKILL during `torch.save` leaves a truncated `N.state` that `--auto_resume` then picks
  and fails on; we write `<file>.tmp` and rename. BasicSR's resume restarts the interrupted epoch from its
  first batch and does not restore the RNGs; the training state here also holds the python / numpy / torch
  (/ CUDA) RNG states, and the resumed epoch skips the batches it had consumed. With num_worker_per_gpu: 0
  a resumed run is bit-exact; with workers, batches are exact but their augmentation RNG restarts.
- **Text collate**: BasicSR's `build_dataloader` cannot take a `collate_fn`; a dataset that defines one
  (PriorPairedDataset pads text tokens to the batch) gets it.
- **One training per experiment** (`experiment_lock`): two `basicsr train` runs of one experiment name in one
  directory write the same checkpoints and logs (and without --auto_resume the second moves the first's
  folder aside while it trains); the second now stops at once, naming the first's pid.
- **Spawn-safe workers**: under the spawn start method (`init_dist` sets it) a worker unpickles the dataset
  first, and unpickling one of BasicSR's own datasets imports basicsr before the compat repair; workers
  receive the dataset inside `SpawnSafeDataset`, whose unpickling imports this package first.

Where they apply: LLVFSRModel inherits `CrashSafeCheckpoints`; the `basicsr` CLI calls `install()`, which
adds the others to BasicSR's pipeline for every model it trains (baselines included), and holds
`experiment_lock` while it trains. `import llvfsr_plugin`
alone changes none of BasicSR's models. In your own training script, call `llvfsr_plugin.training.install()`
once, or pass `PriorPairedDataset.collate_fn` to your DataLoader.
"""
import os
import random

import numpy as np
import torch

import basicsr.data as bd
import basicsr.test as btest
import basicsr.train as btrain
from basicsr.models.base_model import BaseModel
from basicsr.utils.dist_util import master_only
from llvfsr_plugin.errors import TrainBusy
from llvfsr_plugin.utils.checkpoint import CONFIG_KEY
from llvfsr_plugin.utils.files import pid_lock

_INSTALLED = set()
_TRAIN = {}  # the train loader and its resumable sampler, set by the CLI's dataloader builder


# ================================================================================ checkpoints and resume
def atomic_torch_save(obj, path):
    tmp = path + '.tmp'
    torch.save(obj, tmp)
    with open(tmp, 'rb') as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def rng_state():
    state = {'python': random.getstate(), 'numpy': np.random.get_state(), 'torch': torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state):
    random.setstate(state['python'])
    np.random.set_state(state['numpy'])
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


class CrashSafeCheckpoints:
    """Mixin for a BasicSR model (before BaseModel in the MRO): atomic `save_network` /
    `save_training_state`, RNG states in the training state, and a resume that restores them and skips the
    batches the interrupted epoch had consumed (when the `basicsr` CLI built the loader)."""

    @master_only
    def save_network(self, net, net_label, current_iter, param_key='params'):
        current_iter = 'latest' if current_iter == -1 else current_iter
        nets = net if isinstance(net, list) else [net]
        keys = param_key if isinstance(param_key, list) else [param_key]
        save = {}
        for n, k in zip(nets, keys):
            sd = self.get_bare_model(n).state_dict()
            save[k] = {(key[7:] if key.startswith('module.') else key): v.cpu() for key, v in sd.items()}
        config = getattr(self, 'checkpoint_config', None)  # LLVFSRModel: what the network needs at inference
        if config:
            save[CONFIG_KEY] = config
        atomic_torch_save(save, os.path.join(self.opt['path']['models'], f'{net_label}_{current_iter}.pth'))

    @master_only
    def save_training_state(self, epoch, current_iter):
        if current_iter == -1:
            return
        state = {'epoch': epoch, 'iter': current_iter, 'optimizers': [o.state_dict() for o in self.optimizers],
                 'schedulers': [s.state_dict() for s in self.schedulers], 'rng': rng_state()}
        atomic_torch_save(state, os.path.join(self.opt['path']['training_states'], f'{current_iter}.state'))

    def resume_training(self, resume_state):
        super().resume_training(resume_state)
        restore_position(resume_state)


def restore_position(resume_state):
    """After BasicSR's resume: the RNG states of the interrupted run, and its position in the epoch
    (idempotent)."""
    if 'rng' in resume_state:
        set_rng_state(resume_state['rng'])
    loader, sampler = _TRAIN.get('loader'), _TRAIN.get('sampler')
    if loader is not None:
        done = resume_state['iter'] - resume_state['epoch'] * len(loader)  # batches of this epoch already used
        sampler.skip = max(0, done) * loader.batch_size


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


# ============================================================================================ data loading
def _rebuild_spawn_safe(dataset):
    return SpawnSafeDataset(dataset)


class SpawnSafeDataset:
    """Transparent dataset proxy whose pickle imports llvfsr_plugin (the compat repairs) before the dataset."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __reduce__(self):
        # pickle stores (callable, args): loading the callable imports llvfsr_plugin.training -> llvfsr_plugin
        # (compat repair 1) before `args` (the BasicSR dataset, whose class import needs basicsr) is unpickled
        return _rebuild_spawn_safe, (self.dataset,)

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        return self.dataset[i]

    def __getattr__(self, name):
        if name == 'dataset':
            raise AttributeError(name)
        return getattr(self.dataset, name)


def _install_dataloader():
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


def _install_checkpoints():
    BaseModel.save_network = CrashSafeCheckpoints.save_network
    BaseModel.save_training_state = CrashSafeCheckpoints.save_training_state
    orig_resume = BaseModel.resume_training

    def resume_training(self, resume_state):
        orig_resume(self, resume_state)
        restore_position(resume_state)

    BaseModel.resume_training = resume_training


def experiment_lock(root, name):
    """A context manager held while experiment `name` trains under `root` (lock file
    `<root>/experiments/.<name>.lock`); raises TrainBusy at once if another process holds it.

    Args:
        root (str): BasicSR's root path (the `basicsr` CLI: the current directory).
        name (str): the experiment name as BasicSR uses it (`debug_` included).
    """
    folder = os.path.join(root, 'experiments')
    os.makedirs(folder, exist_ok=True)

    def busy(holder):
        raise TrainBusy(f'{os.path.join(folder, name)} is being trained by another process (pid {holder}); two '
                        f'trainings of one experiment overwrite each other\'s checkpoints: wait for it to end (or '
                        f'stop it) and rerun with --auto_resume, or give this run another `name`') from None
    return pid_lock(os.path.join(folder, f'.{name}.lock'), busy)


def install():
    """Add the features to BasicSR's pipeline and base model (the `basicsr` CLI calls this). Idempotent."""
    if 'dataloader' not in _INSTALLED:
        _install_dataloader()
        _INSTALLED.add('dataloader')
    if 'checkpoints' not in _INSTALLED:
        _install_checkpoints()
        _INSTALLED.add('checkpoints')


def installed():
    return sorted(_INSTALLED)
