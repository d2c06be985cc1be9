"""Make a released model from a training checkpoint: fp16 weights, the checkpoint's own configuration (so
`llvfsr-infer` and `basicsr test` need nothing else) and how it was trained; prints its size and SHA-256 for
the README's model zoo.

  python -m llvfsr_plugin.release experiments/LLVFSR_x8_celebahq256/models/net_g_2000.pth \\
      experiments/pretrained_models/LLVFSR_x8_celebahq256.pth --iters 2000 --cpu-hours 0.9 \\
      --data 'celebahq256 train (6,000 CelebA-HQ faces)'

The fp16 network is checked against the fp32 one on a random face before the file is written (outputs in
[0, 1]; PSNR of one against the other must exceed 40 dB).
"""
import argparse
import os
import sys

import torch

from llvfsr_plugin.cli import command
from llvfsr_plugin.errors import CheckpointError
from llvfsr_plugin.export import PositionalPriors, example_inputs
from llvfsr_plugin.utils.checkpoint import CONFIG_KEY, config_lr_size, load_model, network_params, read_checkpoint
from llvfsr_plugin.utils.files import sha256_file

MAX_MB = 5.0


def _psnr(a, b):
    mse = float(((a - b) ** 2).mean())
    return float('inf') if mse == 0 else 10 * torch.log10(torch.tensor(1.0 / mse)).item()


def make_release(src, dst, info=None, param_key='params'):
    """Write the fp16 release of checkpoint `src` to `dst` -> (size in MB, sha256, fp16-vs-fp32 PSNR)."""
    state = read_checkpoint(src)
    if CONFIG_KEY not in state:
        raise CheckpointError(f'{src} carries no configuration; a released model must describe itself (train it '
                              f'with this version of llvfsr_plugin)')
    params = network_params(state, param_key, src)
    half = {k: v.half() if v.is_floating_point() else v for k, v in params.items()}
    out = {'params': half, CONFIG_KEY: dict(state[CONFIG_KEY], release=dict(info or {}, source=os.path.basename(src)))}
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    torch.save(out, dst + '.tmp')
    net32, config = load_model(src, param_key=param_key, state=state)  # the checkpoint read above, not again
    net16, _ = load_model(dst + '.tmp')
    psnr = _psnr(*(_probe(n, config) for n in (net32, net16)))
    if psnr < 40:
        os.remove(dst + '.tmp')
        raise CheckpointError(f'{src}: the fp16 weights change the output too much (PSNR {psnr:.1f} dB < 40); '
                              f'not released')
    os.replace(dst + '.tmp', dst)
    return os.path.getsize(dst) / 1e6, sha256_file(dst), psnr


def _probe(net, config):
    """The network's output on one fixed random LR image with random priors (its own input contract)."""
    with torch.no_grad():
        return PositionalPriors(net)(*example_inputs(net, config_lr_size(config, config['scale']))).clamp(0, 1)


def main(argv=None):
    return command('llvfsr-release', _main, argv)


def _main(argv):
    ap = argparse.ArgumentParser(prog='llvfsr-release', description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('src', help='training checkpoint (net_g_<iter>.pth)')
    ap.add_argument('dst', help='released file (experiments/pretrained_models/<name>.pth)')
    ap.add_argument('--iters', type=int, default=None, help='training iterations (recorded)')
    ap.add_argument('--cpu-hours', type=float, default=None, help='training CPU hours (recorded)')
    ap.add_argument('--data', default=None, help="training data (recorded; llvfsr-infer prints it), e.g. "
                    "'celebahq256 train (6,000 CelebA-HQ faces)'")
    args = ap.parse_args(argv)
    info = {k: v for k, v in (('iters', args.iters), ('cpu_hours', args.cpu_hours), ('data', args.data)) if v}
    mb, digest, psnr = make_release(args.src, args.dst, info)
    print(f'{args.dst}: {mb:.2f} MB, sha256 {digest}, fp16 vs fp32 output {psnr:.1f} dB')
    if mb > MAX_MB:
        print(f'warning: {mb:.2f} MB is over the {MAX_MB} MB a model in the repo may take', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
