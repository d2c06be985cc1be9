#!/usr/bin/env python
"""Compute the four LLV-FSR priors from the LR faces of a prepared dataset (datasets_prep/make_dataset.py)
and write one store per prior per scale: <root>/<split>/priors_x<s>/<prior>.lmdb.

Offline defaults (run here, no downloads):
  caption      file  (first line of <text-dir>/<key>.txt; ORACLE: written from HR annotations)
  description  file  (all lines joined; ORACLE)
  mask         facemesh  (MediaPipe FaceMesh regions)
  depth        facemesh  (dense depth from the mesh z)
  text encoder minilm    (all-MiniLM-L6-v2, 384-d)
The paper's models (weights from a local path or hub id; offline once cached):
  --caption blip2 --caption-opt model=Salesforce/blip2-opt-2.7b
  --description openai --description-opt model=gpt-4o base_url=https://... (key: $OPENAI_API_KEY)
  --mask sam --mask-opt checkpoint=sam_vit_h_4b8939.pth model_type=vit_h
  --depth depth-anything --depth-opt model=LiheYoung/depth-anything-large-hf
  --text-encoder open_clip --text-encoder-opt model=ViT-L-14 pretrained=openai
Distributed: torchrun --nproc_per_node=N datasets_prep/extract_priors.py ... --launcher pytorch
Resumable (rerun continues), atomic (<store>.partial until complete), `--on-error skip` reports bad inputs.
"""
import argparse
import os
import sys

from llvfsr_plugin.priors.base import EXTRACTORS, PriorModelUnavailable, build_extractor
from llvfsr_plugin.priors.record import PRIOR_NAMES

DEFAULTS = {'caption': ('file', {'policy': 'first'}), 'description': ('file', {'policy': 'all'}),
            'mask': ('facemesh', {}), 'depth': ('facemesh', {})}


def parse_kv(pairs, flag):
    out = {}
    for p in pairs or []:
        if '=' not in p:
            sys.exit(f'{flag}: expected KEY=VALUE, got {p!r}')
        k, v = p.split('=', 1)
        for cast in (int, float):
            try:
                v = cast(v)
                break
            except ValueError:
                pass
        out[k] = {'true': True, 'false': False, 'none': None}.get(v, v) if isinstance(v, str) else v
    return out


def extractor_help():
    from llvfsr_plugin.priors import maps, text  # noqa: F401
    lines = ['extractors (choose with --<prior> NAME, options with --<prior>-opt KEY=VALUE ...):']
    for (prior, name), cls in sorted(EXTRACTORS.items()):
        doc = (cls.__doc__ or '').strip().splitlines()
        src = getattr(cls, 'source_cls', None)
        doc = doc or ((src.__doc__ or '').strip().splitlines() if src else [])
        lines.append(f'  {prior:12s} {name:15s} {doc[0] if doc else ""}')
    lines.append('  text encoders (--text-encoder): minilm (offline, 384-d) | clip-hf (model=ID_OR_PATH) | '
                 'open_clip (model=ViT-B-32 pretrained=TAG_OR_PATH)')
    return '\n'.join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, epilog=extractor_help(),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--root', required=True, help='dataset root written by make_dataset.py')
    ap.add_argument('--splits', nargs='+', default=None, help='default: every split in splits.json')
    ap.add_argument('--scales', type=int, nargs='+', default=[8, 16])
    ap.add_argument('--priors', nargs='+', default=list(PRIOR_NAMES), choices=PRIOR_NAMES)
    for p in PRIOR_NAMES:
        ap.add_argument(f'--{p}', default=DEFAULTS[p][0], help=f'{p} extractor (default: {DEFAULTS[p][0]})')
        ap.add_argument(f'--{p}-opt', nargs='*', default=None, metavar='KEY=VALUE', help=f'{p} extractor options')
    ap.add_argument('--text-encoder', default='minilm', help='minilm | clip-hf | open_clip (default: minilm)')
    ap.add_argument('--text-encoder-opt', nargs='*', default=None, metavar='KEY=VALUE')
    ap.add_argument('--text-dir', default=None, help='folder of <key>.txt for the `file` text extractors')
    ap.add_argument('--batch-size', type=int, default=16)
    ap.add_argument('--on-error', choices=['skip', 'fail'], default='fail')
    ap.add_argument('--overwrite', action='store_true')
    ap.add_argument('--format', choices=['lmdb', 'folder'], default='lmdb', help='folder: one .llvp file per key')
    ap.add_argument('--launcher', choices=['none', 'pytorch'], default='none', help='pytorch: under torchrun')
    args = ap.parse_args(argv)

    if args.launcher == 'pytorch':
        import torch.distributed as dist
        dist.init_process_group('gloo')
    import json
    splits = args.splits or list(json.load(open(os.path.join(args.root, 'splits.json'))))
    enc_opts = parse_kv(args.text_encoder_opt, '--text-encoder-opt')
    extractors = {}
    try:
        for p in args.priors:
            name = getattr(args, p)
            opts = dict(DEFAULTS[p][1]) if name == DEFAULTS[p][0] else {}
            opts.update(parse_kv(getattr(args, f'{p}_opt'), f'--{p}-opt'))
            if p in ('caption', 'description'):
                opts.update(encoder=args.text_encoder, encoder_opts=enc_opts)
                if name == 'file':
                    if not args.text_dir:
                        sys.exit(f'--{p} file needs --text-dir (a folder of <key>.txt)')
                    opts.setdefault('text_dir', args.text_dir)
            extractors[p] = build_extractor(p, name, **opts)
    except (PriorModelUnavailable, KeyError, ImportError) as e:
        sys.exit(f'[priors] {e}')
    from llvfsr_plugin.prep.pipeline import extract_priors
    extract_priors(args.root, splits, args.scales, extractors, text_dir=args.text_dir, batch_size=args.batch_size,
                   on_error=args.on_error, overwrite=args.overwrite, fmt=args.format)


if __name__ == '__main__':
    main()
