"""Super-resolve faces with a trained LLV-FSR: whole photos (every face found, aligned, restored, pasted back) or
aligned face crops. A thin command over `llvfsr_plugin.restorer.LLVFSRRestorer`.

  llvfsr-infer -i photo.jpg -o out/                                          # the released x8 model
  llvfsr-infer -i photo.jpg -o out/ --model net_g_latest.pth                 # whole photo(s): file, folder, glob
  llvfsr-infer -i 'photos/*.png' -o out/ --model net.pth --upscale 4
  llvfsr-infer -i faces/ -o out/ --model net.pth --aligned                    # aligned face crops (LR or larger)
  llvfsr-infer -i hr_faces/ -o out/ --model net.pth --from-hr --grid          # aligned HR faces: degrade, evaluate

The checkpoint describes its network, scale, LR face size and priors (an earlier version's checkpoint needs
`-opt` with its network_g). Priors are computed from each LR face with the extractors the network was trained
on; no text is needed (see `--caption`). Outputs (whole photos, as GFPGAN): restored_imgs/<name>.png,
cropped_faces/<name>_<i>.png (the LR face the network saw), restored_faces/<name>_<i>.png, cmp/<name>.png
(input | restored side by side); aligned inputs: <name>.png (and grid.png). Unreadable inputs are skipped and
listed in <out>/skipped.txt; the run never stops on one bad file and never writes over an input.
"""
import argparse
import glob
import os
import sys
import time

import cv2
import numpy as np
import yaml
from tqdm import tqdm

from llvfsr_plugin.cli import command, int_at_least
from llvfsr_plugin.errors import BadImage, OptionError
from llvfsr_plugin.prep.images import (
    IMG_EXTS,
    check_unique_stems,
    degrade,
    image_key,
    imresize_uint8,
    list_images,
    read_rgb,
)
from llvfsr_plugin.priors.cli_args import extractor_help, parse_kv
from llvfsr_plugin.priors.contract import PRIORS
from llvfsr_plugin.priors.extractors.text_extractors import read_text_file
from llvfsr_plugin.restorer import LLVFSRRestorer
from llvfsr_plugin.utils.checkpoint import DEFAULT_MODEL, default_model
from llvfsr_plugin.utils.vis import imwrite_rgb, make_grid


def build_parser():
    ap = argparse.ArgumentParser(prog='llvfsr-infer', description=__doc__, epilog=extractor_help(),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('-i', '--input', required=True, help='an image, a folder, or a glob (quoted); never written to')
    ap.add_argument('-o', '--out', required=True, help='output folder (not the input folder nor inside it)')
    ap.add_argument('--model', '--ckpt', dest='model', default=None,
                    help='checkpoint (default: path.pretrain_network_g of -opt, else the released x8 model, '
                    f'experiments/pretrained_models/{os.path.basename(DEFAULT_MODEL)})')
    ap.add_argument('-opt', default=None, help='option YAML with network_g: only for checkpoints of earlier versions')
    ap.add_argument('--param-key', default='params', help='params | params_ema')
    ap.add_argument('--aligned', action='store_true', help='inputs are aligned face crops (LR, or larger: downscaled)')
    ap.add_argument('--from-hr', action='store_true', help='inputs are aligned HR faces: degrade (MATLAB bicubic) '
                    'to LR first and show HR in the grid (implies --aligned)')
    ap.add_argument('--upscale', type=float, default=2, help='whole photos: output size / input size (default 2)')
    ap.add_argument('--bg-upsampler', choices=['bicubic', 'lanczos'], default='bicubic')
    ap.add_argument('--min-face', type=int_at_least(1), default=16, help='smaller faces (px) stay background')
    ap.add_argument('--lr-size', type=int_at_least(1), default=None, help='LR face side, for a checkpoint that does '
                    'not record it')
    ap.add_argument('--batch-size', type=int_at_least(1), default=8, help='aligned inputs per network call')
    ap.add_argument('--device', default='auto', help='auto | cpu | cuda | cuda:1 ...')
    ap.add_argument('--half', action='store_true', help='fp16 on CUDA, bf16 on CPU')
    ap.add_argument('--grid', action='store_true', help='aligned inputs: also write grid.png (LR | bicubic | SR | HR)')
    ap.add_argument('--caption', default=None, help='a caption for every face (text the network was trained with)')
    ap.add_argument('--description', default=None, help='a description for every face')
    ap.add_argument('--text-dir', default=None, help='folder of <name>.txt: first line caption, all lines '
                    'description (per input file)')
    ap.add_argument('--text-encoder', default=None, help="default: the checkpoint's")
    for p, s in PRIORS.items():
        if s.kind == 'map':
            ap.add_argument(f'--{p}', default=None, help=f"{p} extractor (default: the checkpoint's)")
            ap.add_argument(f'--{p}-opt', nargs='*', default=None, metavar='KEY=VALUE')
    ap.add_argument('--allow-extractor-mismatch', action='store_true',
                    help='run with other prior extractors than the checkpoint was trained on')
    return ap


def main(argv=None):
    return command('llvfsr-infer', lambda a: run(build_parser().parse_args(a)), argv)


def input_files(inp, out):
    """The images of `--input` (a file, a folder or a glob); refuses an `--out` that would write over them."""
    if os.path.isfile(inp):
        files = [inp]
    elif os.path.isdir(inp):
        files = list_images(inp)
    else:
        files = sorted(f for f in glob.glob(inp) if f.lower().endswith(IMG_EXTS) and os.path.isfile(f))
        if not files:
            raise OptionError(f'--input {inp}: no such file or folder, and no image matches it as a pattern')
        check_unique_stems(files)
    o = os.path.realpath(out)
    for folder in {os.path.dirname(os.path.realpath(f)) for f in files}:
        if o == folder or o.startswith(folder + os.sep):
            raise OptionError(f'--out {out} is an input folder or inside it: outputs would replace or mix with your '
                              f'inputs; choose another folder')
    if os.path.exists(out) and not os.path.isdir(out):
        raise OptionError(f'--out {out} is a file; give a folder')
    return files


def read_opt(path):
    try:
        with open(path) as f:
            opt = yaml.safe_load(f) or {}
    except yaml.YAMLError as e:
        raise OptionError(f'{path}: not valid YAML: {e}') from None
    except FileNotFoundError:
        raise OptionError(f'-opt {path}: file not found') from None
    if not isinstance(opt, dict) or not opt.get('network_g'):
        raise OptionError(f'{path}: no network_g')
    return opt


def text_for(args, key):
    """{prior: text} for one input from --caption / --description / --text-dir (None: no text)."""
    text = {'caption': args.caption, 'description': args.description}
    path = os.path.join(args.text_dir, key + '.txt') if args.text_dir else None
    if path and os.path.isfile(path):  # the prep defaults' policies (priors.cli_args.DEFAULTS), one reader
        text = {'caption': text['caption'] or read_text_file(path, 'first', key),
                'description': text['description'] or read_text_file(path, 'all', key)}
    return {k: v for k, v in text.items() if v} or None


def run(args):
    files = input_files(args.input, args.out)
    opt = read_opt(args.opt) if args.opt else {}
    model = args.model or (opt.get('path') or {}).get('pretrain_network_g') or default_model()
    requested = {p: (getattr(args, p), parse_kv(getattr(args, f'{p}_opt'), f'--{p}-opt'))
                 for p, s in PRIORS.items() if s.kind == 'map' and (getattr(args, p) or getattr(args, f'{p}_opt'))}
    try:
        restorer = LLVFSRRestorer(model, device=args.device, upscale=args.upscale, half=args.half,
                                  net_opt=opt.get('network_g'), extractors=requested,
                                  allow_extractor_mismatch=args.allow_extractor_mismatch, min_face=args.min_face,
                                  bg_upsampler=args.bg_upsampler, lr_size=args.lr_size, text_encoder=args.text_encoder)
    except (KeyError, ImportError) as e:  # an extractor that is not registered / not installed
        raise OptionError(str(e).strip('"')) from None
    os.makedirs(args.out, exist_ok=True)
    if os.path.isfile(os.path.join(args.out, 'skipped.txt')):  # a report of an earlier run
        os.remove(os.path.join(args.out, 'skipped.txt'))
    aligned = args.aligned or args.from_hr
    stats = {'images': len(files), 'faces': 0, 'small': 0, 'large': 0, 'no_face': [], 'skipped': [], 'resized': 0,
             'fallback': 0, 'seconds': 0.0}
    t0 = time.time()
    (run_aligned if aligned else run_photos)(args, restorer, files, stats)
    stats['seconds'] = time.time() - t0
    if stats['skipped']:
        with open(os.path.join(args.out, 'skipped.txt'), 'w') as f:
            f.write('\n'.join(stats['skipped']) + '\n')
    print(summary(args, restorer, stats))
    return 0 if stats['faces'] or (not aligned and len(stats['skipped']) < len(files)) else 1


def summary(args, restorer, s):
    per_face = s['seconds'] / max(s['faces'], 1)
    lines = [f"[infer] {s['faces']} face(s) restored from {s['images'] - len(s['skipped'])}/{s['images']} image(s) "
             f"-> {args.out} in {s['seconds']:.1f}s ({per_face:.2f} s/face incl. detection and priors) on "
             f"{restorer.device}{' (' + str(restorer.dtype).split('.')[-1] + ')' if restorer.dtype else ''}; "
             f'x{restorer.scale} network: each face is seen at {restorer.lr_size} px']
    rel = restorer.config.get('release')
    trained = ' '.join(x for x in (rel and rel.get('iters') and f"{rel['iters']} iterations",
                                    rel and rel.get('data') and f"on {rel['data']}") if x)
    lines.append(f'[infer] model: {restorer.model_path}' + (f' (released: {trained})' if trained else ''))
    if s['large']:
        lines.append(f"[infer] {s['large']} face(s) are over twice the network's LR size in the photo: their detail "
                     f'above {restorer.lr_size} px is not used (an x{restorer.scale} network restores faces of about '
                     f'{restorer.lr_size} px)')
    if s['small']:
        lines.append(f"[infer] {s['small']} face(s) below --min-face {args.min_face} px or without landmarks: left "
                     f'to the background')
    if s['no_face']:
        lines.append(f"[infer] no face found in {len(s['no_face'])} image(s), written upscaled unchanged: "
                     + ', '.join(s['no_face'][:5]) + (' ...' if len(s['no_face']) > 5 else ''))
    if s['resized']:
        lines.append(f"[infer] resized {s['resized']} aligned input(s) to {restorer.lr_size}px LR (MATLAB bicubic)")
    if s['fallback']:
        lines.append(f"[infer] {s['fallback']} face(s) got a mean-prior fallback (FaceMesh found no face in the LR)")
    if s['skipped']:
        lines.append(f"[infer] skipped {len(s['skipped'])} input(s), see skipped.txt")
    return '\n'.join(lines)


def run_photos(args, restorer, files, stats):
    dirs = {d: os.path.join(args.out, d) for d in ('restored_imgs', 'cropped_faces', 'restored_faces', 'cmp')}
    for d in dirs.values():
        os.makedirs(d, exist_ok=True)
    for path in tqdm(files, desc='infer', unit='img', dynamic_ncols=True):
        key = image_key(path)
        try:
            img = read_rgb(path, square=False)
        except BadImage as e:
            stats['skipped'].append(f'{path}\t{e.problem}')
            continue
        lrs, srs, restored = restorer.enhance(img, text=text_for(args, key), rgb=True)
        stats['faces'] += len(srs)
        stats['small'] += restorer.last['small']
        stats['large'] += sum(f.size > 2 * restorer.lr_size for f in restorer.last['faces'])
        stats['fallback'] += sum(any(f.values()) for f in restorer.last['fallback'])
        if not srs:
            stats['no_face'].append(os.path.basename(path))
        for i, (lr, sr) in enumerate(zip(lrs, srs)):
            imwrite_rgb(os.path.join(dirs['cropped_faces'], f'{key}_{i:02d}.png'), lr)
            imwrite_rgb(os.path.join(dirs['restored_faces'], f'{key}_{i:02d}.png'), sr)
        imwrite_rgb(os.path.join(dirs['restored_imgs'], f'{key}.png'), restored)
        imwrite_rgb(os.path.join(dirs['cmp'], f'{key}.png'), comparison(img, restored, lrs, srs, restorer))


def comparison(img, restored, lrs, srs, restorer, height=512):
    """Input (upscaled like the output, bicubic) | restored photo, and under them each face: LR | SR."""
    up = cv2.resize(img, restored.shape[1::-1], interpolation=cv2.INTER_CUBIC)
    f = height / restored.shape[0]
    size = (max(1, round(restored.shape[1] * f)), height)
    top = np.concatenate([cv2.resize(up, size, interpolation=cv2.INTER_AREA), np.full((height, 4, 3), 255, np.uint8),
                          cv2.resize(restored, size, interpolation=cv2.INTER_AREA)], 1)
    if not srs:
        return top
    rows = [[lr, sr] for lr, sr in zip(lrs, srs)]
    faces = make_grid(rows, [f'LR {restorer.lr_size}px (network input)', f'LLV-FSR x{restorer.scale}'], size=160,
                      row_labels=[f'face {i}' for i in range(len(rows))])
    w = max(top.shape[1], faces.shape[1])
    pad = lambda a: np.concatenate([a, np.full((a.shape[0], w - a.shape[1], 3), 255, np.uint8)], 1)  # noqa: E731
    return np.concatenate([pad(top), np.full((4, w, 3), 255, np.uint8), pad(faces)], 0)


def run_aligned(args, restorer, files, stats):
    rows = []
    bar = tqdm(total=len(files), desc='infer', unit='face', dynamic_ncols=True)
    for i in range(0, len(files), args.batch_size):
        batch = []
        for path in files[i:i + args.batch_size]:
            try:
                if args.from_hr:
                    hr = read_rgb(path, allow_resize_to=restorer.face_size)
                    lr = degrade(hr, restorer.scale)
                else:
                    hr, lr = None, read_rgb(path, allow_resize_to=None)
                    if lr.shape[0] != restorer.lr_size:
                        lr, stats['resized'] = restorer.to_lr(lr), stats['resized'] + 1
            except BadImage as e:
                stats['skipped'].append(f'{path}\t{e.problem}')
                continue
            batch.append((image_key(path), lr, hr))
        texts = [text_for(args, k) for k, _, _ in batch]
        groups = {}  # one network call per distinct text
        for j, t in enumerate(texts):
            groups.setdefault(repr(t), []).append(j)
        srs = [None] * len(batch)
        fallback = [None] * len(batch)
        for idx in groups.values():
            out, flags = restorer.super_resolve([batch[j][1] for j in idx], texts[idx[0]], [batch[j][0] for j in idx])
            for j, sr, fl in zip(idx, out, flags):
                srs[j], fallback[j] = sr, fl
        for (key, lr, hr), sr, fl in zip(batch, srs, fallback):
            imwrite_rgb(os.path.join(args.out, f'{key}.png'), sr)
            stats['faces'] += 1
            stats['fallback'] += any(fl.values())
            if args.grid and len(rows) < 8:
                rows.append([lr, imresize_uint8(lr, out_hw=sr.shape[:2]), sr] + ([hr] if hr is not None else []))
        bar.update(len(files[i:i + args.batch_size]))
    bar.close()
    if rows:
        titles = ['LR', 'bicubic', 'LLV-FSR'] + (['HR'] if args.from_hr else [])
        imwrite_rgb(os.path.join(args.out, 'grid.png'), make_grid(rows, titles, size=128))


if __name__ == '__main__':
    sys.exit(main())
