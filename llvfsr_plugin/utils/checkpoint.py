"""Checkpoint loading, in one place: LLVFSRModel (training, test) and inference load networks through it."""
import os
import pickle
import zipfile

import torch

from llvfsr_plugin.errors import CheckpointError

# The key of a checkpoint's own configuration (`models.llvfsr_model.checkpoint_config`): network options, scale,
# LR size, and how each prior was made; checkpoints of earlier versions have none.
CONFIG_KEY = 'llvfsr_config'
# The released models (README "Model zoo", `python -m llvfsr_plugin.release`) ship in the repository, BasicSR's
# habit; inference uses the x8 one README "Model zoo" names the default (why, with its measurements:
# benchmarks/results/zoo_sft_lm_2026-12-03/) when no checkpoint is given.
ZOO = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'experiments',
                   'pretrained_models')
DEFAULT_MODEL = os.path.join(ZOO, 'LLVFSR_sft_lm_x8_celebahq256.pth')


def default_model():
    """The released x8 model's path, or a CheckpointError saying where it was looked for."""
    if not os.path.isfile(DEFAULT_MODEL):
        raise CheckpointError(f'no checkpoint given and the released x8 model is not at {DEFAULT_MODEL} (it ships '
                              f'in the repository: run from a clone, or pass --model)')
    return DEFAULT_MODEL


def checkpoint_mismatch(expected, loaded, show=4):
    """Human-readable differences between a network's state dict and a checkpoint's."""
    missing = [k for k in expected if k not in loaded]
    extra = [k for k in loaded if k not in expected]
    shapes = [f'{k}: checkpoint {tuple(loaded[k].shape)} vs network {tuple(v.shape)}'
              for k, v in expected.items() if k in loaded and loaded[k].shape != v.shape]
    out = []
    for what, keys in (('missing in checkpoint', missing), ('not in network', extra), ('shape differs', shapes)):
        if keys:
            out.append(f'{len(keys)} {what}: ' + ', '.join(keys[:show]) + (' ...' if len(keys) > show else ''))
    return out


def read_checkpoint(path, weights_only=True, map_location='cpu'):
    """The dict a BasicSR `save_network` (tensors: weights_only) or `save_training_state` wrote, or a
    CheckpointError naming the file."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=weights_only)
    except FileNotFoundError:
        raise CheckpointError(f'checkpoint not found: {path}') from None
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, OSError) as e:
        raise CheckpointError(f'{path}: not a readable checkpoint ({str(e).splitlines()[0][:200]}); truncated by an '
                              f'interrupted copy? Copy or save it again') from None
    if not isinstance(state, dict):
        raise CheckpointError(f'{path}: expected a dict of parameters, got {type(state).__name__}')
    return state


def network_params(state, param_key='params', path='checkpoint'):
    """The parameters under `param_key` (falling back to 'params', or a bare state dict), `module.` stripped."""
    if param_key in state:
        sd = state[param_key]
    elif 'params' in state:
        sd = state['params']
    elif all(isinstance(v, torch.Tensor) for v in state.values()):
        sd = state
    else:
        raise CheckpointError(f'{path}: no {param_key!r} (nor params) in the checkpoint; keys: {sorted(state)[:8]}')
    return {k[7:] if k.startswith('module.') else k: v for k, v in sd.items()}


def config_lr_size(config, scale):
    """The LR face side a checkpoint's network expects: recorded, else the paper's 256 px HR over `scale`."""
    return int(config.get('lr_size') or 256 // int(scale))


def load_model(path, net_opt=None, param_key='params', log=print, state=None):
    """A network built and loaded from a checkpoint alone (its `CONFIG_KEY`), or from `net_opt` (network_g of
    an option file) for a checkpoint of an earlier version, which is noted through `log`. `state`: the
    checkpoint already read from `path`. Returns (network in eval mode, config: the checkpoint's, or one made
    of `net_opt` with no prior provenance)."""
    from basicsr.archs import build_network
    state = read_checkpoint(path) if state is None else state
    config = state.get(CONFIG_KEY)
    if config is None:
        if not net_opt:
            raise CheckpointError(f'{path} carries no configuration (saved by an earlier version of llvfsr_plugin); '
                                  f'pass the option file it was trained with (-opt train.yml)')
        log(f'note: {path} carries no configuration (an earlier version saved it); network from the option file, '
            f'priors from the default extractors')
        config = {'format': 0, 'network_g': dict(net_opt), 'scale': net_opt.get('scale'), 'lr_size': None,
                  'priors': {}}
    elif net_opt and dict(net_opt) != {k: v for k, v in config['network_g'].items() if k in net_opt}:
        log(f'note: {path} describes its own network; network_g of the option file is not used')
    net = build_network(dict(config['network_g']))
    return load_state(net, state, path, param_key).eval(), config


def load_network_params(net, path, param_key='params', strict=True):
    """Load a checkpoint into `net`. With `strict`, a checkpoint of a network with other options fails with
    one message listing the differing parameters (instead of a state_dict traceback)."""
    return load_state(net, read_checkpoint(path), path, param_key, strict)


def load_state(net, state, path, param_key='params', strict=True):
    """`load_network_params` on a checkpoint already read."""
    sd = network_params(state, param_key, path)
    if strict:
        problems = checkpoint_mismatch(net.state_dict(), sd)
        if problems:
            raise CheckpointError(f'{path} was trained with other network options than network_g:\n  '
                                  + '\n  '.join(problems) + '\n  Use the option file it was trained with, or set '
                                  'path.strict_load_g: false to load what matches.')
    net.load_state_dict(sd, strict=strict)
    return net


def read_training_state(paths, map_location='cpu', log=print):
    """The newest readable training state of `paths` (newest first): a truncated or corrupt newest state
    (a crash while copying, a full disk) falls back to the one before, saying so. The states are the user's
    own run's, so they are trusted (weights_only=False: the scheduler state holds a Counter)."""
    errors = []
    for path in paths:
        try:
            state = read_checkpoint(path, weights_only=False, map_location=map_location)
        except CheckpointError as e:
            errors.append(str(e))
            continue
        if errors:
            log(f'resume: {len(errors)} newer training state(s) unreadable ({errors[0]}); resuming from {path}')
        return path, state
    raise CheckpointError('no readable training state: ' + '; '.join(errors) + '. Start over without --auto_resume '
                          '(or delete the unreadable files)')
