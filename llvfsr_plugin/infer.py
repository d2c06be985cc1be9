"""Super-resolve a folder of faces with a trained LLV-FSR: priors are computed on the fly from each LR face
with the chosen extractors (offline defaults: FaceMesh mask + depth; text from --text-dir), then the network.

  llvfsr-infer -opt options/test_x8.yml --input lr_faces/ --out sr/                 # LR faces in
  llvfsr-infer -opt options/test_x8.yml --input hr_faces/ --from-hr --out sr/ --grid  # degrade HR, evaluate

`-opt` gives `network_g` and `path.pretrain_network_g` (or pass --ckpt). Input sizes: LR faces that are not
`--lr-size` (default: 256 / scale) square are resized to it with MATLAB bicubic, and the run says how many;
with --from-hr, HR faces are resized to lr_size * scale first. Unreadable or refused files are skipped and
listed in <out>/skipped.txt; the run never stops on one bad file.
"""
import argparse
import os
import sys
import time

import numpy as np
import torch
import yaml
from tqdm import tqdm

from basicsr.archs import build_network
from llvfsr_plugin.cli import command, int_at_least
from llvfsr_plugin.errors import BadImage, OptionError
from llvfsr_plugin.prep.images import degrade, imresize_uint8, list_images, read_rgb
from llvfsr_plugin.priors.cli_args import add_extractor_args, build_extractors, extractor_help
from llvfsr_plugin.priors.contract import collate, to_tensors
from llvfsr_plugin.priors.extractors import Sample
from llvfsr_plugin.utils.checkpoint import load_network_params
from llvfsr_plugin.utils.vis import imwrite_rgb, make_grid


def build_parser():
    ap = argparse.ArgumentParser(prog='llvfsr-infer', description=__doc__, epilog=extractor_help(),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('-opt', required=True, help='option YAML with network_g (a train or test YAML)')
    ap.add_argument('--ckpt', default=None, help='checkpoint (default: path.pretrain_network_g of the YAML)')
    ap.add_argument('--param-key', default='params', help='params | params_ema')
    ap.add_argument('--input', required=True, help='a face image or a folder of faces (never written to)')
    ap.add_argument('--out', required=True, help='output folder (not the input folder nor inside it)')
    ap.add_argument('--from-hr', action='store_true', help='inputs are HR: degrade them (MATLAB bicubic) first')
    ap.add_argument('--lr-size', type=int_at_least(1), default=None, help='LR side the network was trained on')
    ap.add_argument('--batch-size', type=int_at_least(1), default=8)
    ap.add_argument('--device', default='auto', help='auto | cpu | cuda | cuda:1 ...')
    ap.add_argument('--grid', action='store_true', help='also write grid.png (LR | bicubic | SR [| HR])')
    add_extractor_args(ap)
    return ap


def load_network(opt, ckpt, param_key, device):
    net = build_network(dict(opt['network_g']))
    return load_network_params(net, ckpt, param_key).to(device).eval()


def main(argv=None):
    return command('llvfsr-infer', lambda a: run(build_parser().parse_args(a)), argv)


def input_files(inp, out):
    """The images of `--input` (a file or a folder); refuses an `--out` that would write over them."""
    if os.path.isfile(inp):
        files, folder = [inp], os.path.dirname(os.path.abspath(inp))
    else:
        files, folder = list_images(inp), os.path.abspath(inp)
    o = os.path.realpath(out)
    if o == os.path.realpath(folder) or o.startswith(os.path.realpath(folder) + os.sep):
        raise OptionError(f'--out {out} is the input folder or inside it: outputs would replace or mix with your '
                          f'inputs; choose another folder')
    if os.path.exists(out) and not os.path.isdir(out):
        raise OptionError(f'--out {out} is a file; give a folder')
    return files


def run(args):
    files = input_files(args.input, args.out)
    try:
        with open(args.opt) as f:
            opt = yaml.safe_load(f) or {}
    except yaml.YAMLError as e:
        raise OptionError(f'{args.opt}: not valid YAML: {e}') from None
    net_opt = opt.get('network_g') if isinstance(opt, dict) else None
    if not net_opt:
        raise OptionError(f'{args.opt}: no network_g')
    scale = int(net_opt.get('scale', opt.get('scale', 8)))
    lr_size = args.lr_size or 256 // scale
    ckpt = args.ckpt or (opt.get('path') or {}).get('pretrain_network_g')
    if not ckpt:
        raise OptionError('no checkpoint: pass --ckpt or set path.pretrain_network_g')
    device = ('cuda' if torch.cuda.is_available() else 'cpu') if args.device == 'auto' else args.device
    net = load_network(opt, ckpt, args.param_key, device)
    priors = list(getattr(net, 'priors', ()))
    extractors = build_extractors(args, priors)
    os.makedirs(args.out, exist_ok=True)
    if os.path.isfile(os.path.join(args.out, 'skipped.txt')):  # a report of an earlier run
        os.remove(os.path.join(args.out, 'skipped.txt'))
    skipped, resized, grid_rows, fallbacks = [], 0, [], {p: 0 for p in priors}
    t0 = time.time()
    bar = tqdm(total=len(files), desc='infer', unit='face', dynamic_ncols=True)
    for i in range(0, len(files), args.batch_size):
        batch = []
        for path in files[i:i + args.batch_size]:
            key = os.path.splitext(os.path.basename(path))[0]
            try:
                if args.from_hr:
                    hr = read_rgb(path, allow_resize_to=lr_size * scale)
                    lr = degrade(hr, scale)
                else:
                    hr, lr = None, read_rgb(path, allow_resize_to=None)
                    if lr.shape[0] != lr_size:
                        lr, resized = imresize_uint8(lr, out_hw=(lr_size, lr_size)), resized + 1
            except BadImage as e:
                skipped.append(f'{path}\t{e.problem}')
                continue
            batch.append((Sample(key, lr, os.path.join(args.text_dir, key + '.txt') if args.text_dir else None), hr))
        items = []
        for s, hr in batch:
            item = {'lq': torch.from_numpy(s.lr).permute(2, 0, 1).float() / 255.0}
            try:
                for p, ex in extractors.items():
                    (arrays, meta), = ex.extract([s])
                    fallbacks[p] += bool(meta.get('fallback'))
                    item.update(to_tensors(p, arrays))
            except ValueError as e:  # e.g. missing / empty caption file
                skipped.append(f'{s.key}\tprior: {e}')
                continue
            items.append((s, hr, item))
        if items:
            b = collate([it for _, _, it in items])
            b = {k: v.to(device) for k, v in b.items()}
            lq = b.pop('lq')
            with torch.no_grad():
                out = net(lq, b) if priors else net(lq)
            for (s, hr, _), sr in zip(items, out.clamp(0, 1).cpu()):
                sr = (sr.permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)
                imwrite_rgb(os.path.join(args.out, f'{s.key}.png'), sr)
                if args.grid and len(grid_rows) < 8:
                    row = [s.lr, imresize_uint8(s.lr, out_hw=sr.shape[:2]), sr] + ([hr] if hr is not None else [])
                    grid_rows.append(row)
        bar.update(len(files[i:i + args.batch_size]))
    bar.close()
    n_ok = len(files) - len(skipped)
    dt = time.time() - t0
    if grid_rows:
        titles = ['LR', 'bicubic', 'LLV-FSR'] + (['HR'] if args.from_hr else [])
        imwrite_rgb(os.path.join(args.out, 'grid.png'), make_grid(grid_rows, titles, size=128))
    if skipped:
        with open(os.path.join(args.out, 'skipped.txt'), 'w') as f:
            f.write('\n'.join(skipped) + '\n')
    print(f'[infer] {n_ok}/{len(files)} faces -> {args.out} in {dt:.1f}s ({dt / max(n_ok, 1) * 1000:.0f} ms/face incl. '
          f'priors) on {device}' + (f'; resized {resized} LR input(s) to {lr_size}px' if resized else '') +
          (f'; skipped {len(skipped)} (see skipped.txt)' if skipped else '') +
          ''.join(f'; {p}: mean-prior fallback for {n}' for p, n in fallbacks.items() if n))
    return 0 if n_ok else 1


if __name__ == '__main__':
    sys.exit(main())
