#!/usr/bin/env python
"""Average a run's network weights over several checkpoints (uniform, as in stochastic weight averaging).

At a constant learning rate a single checkpoint is one point of a noisy walk: in the x16 experiment the paired
difference of two rows moved by up to 0.05 dB PSNR and 0.14 dB face PSNR between checkpoints 200 iterations
apart (benchmarks/results/quality_x16_tail_2026-12-01, "7,200 iterations"). Evaluating every row with its
weights averaged over the same window takes that walk out of the comparison (each row still has its own
training run); `quality_experiment.py --average-last K` does so for every row of an experiment.

    python benchmarks/average_checkpoints.py --models runs/x16/experiments/q_model1_s2/models \
        --first 6300 --last 7200 --every 100 --out avg/net_g_latest.pth

Writes a checkpoint like the last one of the window (its other keys, such as the network configuration, kept)
with every floating-point parameter replaced by the mean over the window; `basicsr test` loads it as any other.
"""
import argparse
import os
import sys

import torch

from llvfsr_plugin.cli import command, int_at_least
from llvfsr_plugin.errors import UserError
from llvfsr_plugin.utils.checkpoint import network_params, read_checkpoint


def average(paths, param_key='params'):
    """The last checkpoint of `paths` with its floating-point parameters averaged over all of them.

    Args:
        paths (list[str]): BasicSR network checkpoints (`net_g_<iter>.pth`) of one network.
        param_key (str): the parameters to average ('params'; 'params_ema' for an EMA network).
    Returns:
        dict: the checkpoint to save.
    """
    states = [read_checkpoint(p) for p in paths]
    params = [network_params(s, param_key, p) for s, p in zip(states, paths)]
    for p, sd in zip(paths[1:], params[1:]):
        if sd.keys() != params[0].keys() or any(sd[k].shape != params[0][k].shape for k in sd):
            raise UserError(f'{p}: not the network of {paths[0]} (other parameter names or shapes); average the '
                            f'checkpoints of one run')
    mean = {k: (torch.stack([sd[k].double() for sd in params]).mean(0).to(v.dtype) if v.is_floating_point() else v)
            for k, v in params[-1].items()}
    return dict(states[-1], **{param_key if param_key in states[-1] else 'params': mean})


def window_paths(models, first, last, every):
    """The checkpoints `models`/net_g_<i>.pth for i = first, first + every, .., last; refused in one line when one
    is missing.

    Args:
        models (str): a run's models folder.
        first (int): the window's first iteration.
        last (int): its last iteration.
        every (int): the step between checkpoints (the run's save_checkpoint_freq or a multiple of it).
    Returns:
        list[str]: the paths, oldest first.
    """
    if last < first:
        raise UserError(f'the window of checkpoints ends at {last}, before it starts at {first}')
    paths = [os.path.join(models, f'net_g_{i}.pth') for i in range(first, last + 1, every)]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise UserError(f'{len(missing)} of the {len(paths)} checkpoints are not there (e.g. {missing[0]}); the run '
                        f'saves one every save_checkpoint_freq iterations: choose a window and a step that match them')
    return paths


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--models', required=True, help="a run's models folder (net_g_<iter>.pth)")
    ap.add_argument('--first', type=int_at_least(0), required=True)
    ap.add_argument('--last', type=int_at_least(0), required=True)
    ap.add_argument('--every', type=int_at_least(1), default=100)
    ap.add_argument('--param-key', default='params')
    ap.add_argument('--out', required=True)
    args = ap.parse_args(argv)
    paths = window_paths(args.models, args.first, args.last, args.every)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    torch.save(average(paths, args.param_key), args.out)
    print(f'{args.out}: mean of {len(paths)} checkpoints, iterations {args.first}..{args.last} every {args.every}')


if __name__ == '__main__':
    sys.exit(command('average_checkpoints', main))
