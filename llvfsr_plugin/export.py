"""Export a trained LLV-FSR to TorchScript and ONNX, the priors as positional tensors.

  python -m llvfsr_plugin.export --model net_g_latest.pth --out exported/ [--formats torchscript onnx]

The exported graph takes `lq` [B, 3, h, w] (RGB in [0, 1]) and then the network's prior tensors in the order
of the prior contract's batch keys (`contract.batch_keys(net.priors)`, written to <out>/inputs.json with their
shapes): label maps as int64, depth as float, text tokens [B, T, D] with masks [B, T] (bool). Batch size and T
are dynamic in ONNX; the LR size is fixed to the checkpoint's. Each export is checked against the eager network
on the example inputs; the largest difference is printed and written to inputs.json.
"""
import argparse
import json
import os
import sys

import torch

from llvfsr_plugin.cli import command
from llvfsr_plugin.errors import OptionError
from llvfsr_plugin.priors.contract import PRIORS, batch_keys, fake_priors
from llvfsr_plugin.utils.checkpoint import config_lr_size, load_model


class PositionalPriors(torch.nn.Module):
    """`net(lq, {key: tensor})` as `forward(lq, *tensors)` in the order of `keys`."""

    def __init__(self, net):
        super().__init__()
        self.net, self.keys = net, batch_keys(getattr(net, 'priors', ()))

    def forward(self, lq, *priors):
        return self.net(lq, dict(zip(self.keys, priors))) if self.keys else self.net(lq)


def example_inputs(net, lr_size, batch=1, text_len=8, prior_size=None):
    """Example (lq, *priors) for tracing / checking, shaped as inference feeds them."""
    priors = getattr(net, 'priors', ())
    g = torch.Generator().manual_seed(0)
    fake = fake_priors(batch, priors, text_len=text_len, text_dim=getattr(net, 'text_dim', 384),
                       size=prior_size or getattr(net, 'prior_size', 128), num_classes=getattr(net, 'num_classes', 10))
    return (torch.rand(batch, 3, lr_size, lr_size, generator=g), *[fake[k] for k in batch_keys(priors)])


def export(net, out, lr_size, formats=('torchscript', 'onnx'), atol=1e-3, log=print):
    """Write <out>/llvfsr.ts and/or <out>/llvfsr.onnx and <out>/inputs.json; returns {format: max |diff|}.
    `net` is put in eval mode and the contiguous memory layout (the exported graphs compute the same)."""
    os.makedirs(out, exist_ok=True)
    net = net.eval()
    if getattr(net, 'channels_last', False):  # plain layouts export cleanly; results are the same
        net.channels_last = False
        net.to(memory_format=torch.contiguous_format)
    wrapper = PositionalPriors(net).eval()
    args = example_inputs(net, lr_size, batch=2)
    check = example_inputs(net, lr_size, batch=1, text_len=5)
    with torch.no_grad():
        want = wrapper(*check)
    names = ['lq'] + wrapper.keys
    diffs = {}
    if 'torchscript' in formats:
        path = os.path.join(out, 'llvfsr.ts')
        with torch.no_grad():
            traced = torch.jit.trace(wrapper, args, check_trace=False)
        traced.save(path)
        with torch.no_grad():
            diffs['torchscript'] = float((torch.jit.load(path)(*check) - want).abs().max())
    if 'onnx' in formats:
        import onnxruntime as ort
        path = os.path.join(out, 'llvfsr.onnx')
        auto = torch.export.Dim.AUTO  # batch and text length stay free; the LR size is the checkpoint's
        text = {k for p in getattr(net, 'priors', ()) if PRIORS[p].kind == 'text' for k in PRIORS[p].batch_keys}
        dyn = ({0: auto}, tuple({0: auto, 1: auto} if n in text else {0: auto} for n in names[1:]))  # lq, *priors
        with torch.no_grad():
            torch.onnx.export(wrapper, args, path, input_names=names, output_names=['sr'], dynamic_shapes=dyn,
                              dynamo=True, verbose=False)
        sess = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
        got = sess.run(None, {n: t.numpy() for n, t in zip(names, check)})[0]
        diffs['onnx'] = float((torch.from_numpy(got) - want).abs().max())
    spec = {'inputs': [{'name': n, 'shape': list(t.shape), 'dtype': str(t.dtype).replace('torch.', '')}
                       for n, t in zip(names, check)], 'output': 'sr [B, 3, h*scale, w*scale] RGB',
            'max_abs_diff_vs_eager': diffs}
    with open(os.path.join(out, 'inputs.json'), 'w') as f:
        json.dump(spec, f, indent=1)
    for fmt, d in diffs.items():
        log(f'[export] {fmt}: max |exported - eager| = {d:.2e}' + ('' if d <= atol else f' (above {atol:g}!)'))
    return diffs


def main(argv=None):
    return command('llvfsr-export', _main, argv)


def _main(argv):
    ap = argparse.ArgumentParser(prog='python -m llvfsr_plugin.export', description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--model', required=True, help='checkpoint (self-describing; else pass -opt)')
    ap.add_argument('-opt', default=None, help='option YAML with network_g, for checkpoints of earlier versions')
    ap.add_argument('--out', required=True)
    ap.add_argument('--formats', nargs='+', default=['torchscript', 'onnx'], choices=['torchscript', 'onnx'])
    ap.add_argument('--lr-size', type=int, default=None)
    args = ap.parse_args(argv)
    net_opt = None
    if args.opt:
        import yaml
        net_opt = (yaml.safe_load(open(args.opt)) or {}).get('network_g')
    net, config = load_model(args.model, net_opt)
    lr_size = args.lr_size or config_lr_size(config, config.get('scale') or net.scale)
    if 'onnx' in args.formats:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            raise OptionError('ONNX export needs onnx and onnxruntime: pip install "llvfsr_plugin[export]"') from None
    diffs = export(net, args.out, lr_size, args.formats)
    return 0 if all(d <= 1e-3 for d in diffs.values()) else 1


if __name__ == '__main__':
    sys.exit(main())
