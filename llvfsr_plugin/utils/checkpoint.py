"""Checkpoint loading, in one place: LLVFSRModel (training, test) and inference load networks through it."""
import pickle
import zipfile

import torch

from llvfsr_plugin.errors import CheckpointError


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


def read_checkpoint(path):
    """The dict a BasicSR `save_network` wrote (tensors only: weights_only), or CheckpointError naming the file."""
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
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


def load_network_params(net, path, param_key='params', strict=True):
    """Load a checkpoint into `net`. With `strict`, a checkpoint of a network with other options fails with
    one message listing the differing parameters (instead of a state_dict traceback)."""
    sd = network_params(read_checkpoint(path), param_key, path)
    if strict:
        problems = checkpoint_mismatch(net.state_dict(), sd)
        if problems:
            raise CheckpointError(f'{path} was trained with other network options than network_g:\n  '
                                  + '\n  '.join(problems) + '\n  Use the option file it was trained with, or set '
                                  'path.strict_load_g: false to load what matches.')
    net.load_state_dict(sd, strict=strict)
    return net
