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
Maps from a first SR pass (the mask / depth extractor reads a trained no-prior network's output, not the bicubic face):
  --mask-opt first_pass=model1/net_g_latest.pth --depth-opt first_pass=model1/net_g_latest.pth
The mean face's maps for every face (an ablation: a face template, not face-specific maps):
  --mask mean-face --depth mean-face
Distributed: torchrun --nproc_per_node=N datasets_prep/extract_priors.py ... --launcher pytorch
Resumable (rerun continues), atomic (<store>.partial until complete), `--on-error skip` reports bad inputs.
"""
import argparse
import json
import os
import sys

from llvfsr_plugin.cli import command, int_at_least, load_plugins
from llvfsr_plugin.errors import OptionError
from llvfsr_plugin.prep.layout import splits_json
from llvfsr_plugin.prep.pipeline import extract_priors
from llvfsr_plugin.priors.cli_args import add_extractor_args, build_extractors, extractor_help
from llvfsr_plugin.priors.contract import PAPER_PRIORS, PRIORS


def main(argv=None):
    return command('extract_priors.py', _main, argv)


def _main(argv):
    load_plugins()  # priors and extractors that other packages add (entry-point group `basicsr.plugins`)
    ap = argparse.ArgumentParser(description=__doc__, epilog=extractor_help(),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--root', required=True, help='dataset root written by make_dataset.py')
    ap.add_argument('--splits', nargs='+', default=None, help='default: every split in splits.json')
    ap.add_argument('--scales', type=int_at_least(1), nargs='+', default=[8, 16])
    ap.add_argument('--priors', nargs='+', default=list(PAPER_PRIORS), choices=list(PRIORS))
    add_extractor_args(ap)
    ap.add_argument('--batch-size', type=int_at_least(1), default=16)
    ap.add_argument('--on-error', choices=['skip', 'fail'], default='fail')
    ap.add_argument('--overwrite', action='store_true')
    ap.add_argument('--format', choices=['lmdb', 'folder'], default='lmdb', help='folder: one .llvp file per key')
    ap.add_argument('--wait', action='store_true', help='if another prep process writes --root, wait for it to end '
                    '(default: stop at once)')
    ap.add_argument('--launcher', choices=['none', 'pytorch'], default='none', help='pytorch: under torchrun')
    args = ap.parse_args(argv)

    if args.launcher == 'pytorch':
        import torch.distributed as dist
        dist.init_process_group('gloo')
    if not os.path.isfile(splits_json(args.root)):
        raise OptionError(f'--root {args.root}: no splits.json; build the dataset first with '
                          f'datasets_prep/make_dataset.py')
    splits = args.splits or list(json.load(open(splits_json(args.root))))
    extractors = build_extractors(args, args.priors)
    extract_priors(args.root, splits, args.scales, extractors, text_dir=args.text_dir, batch_size=args.batch_size,
                   on_error=args.on_error, overwrite=args.overwrite, fmt=args.format, wait=args.wait)


if __name__ == '__main__':
    sys.exit(main())
