#!/usr/bin/env python
"""End-to-end LLV-FSR demo on the 64 bundled CelebA-HQ faces, on CPU, in a few minutes:

  1. HR -> LR x8 LMDBs (128x128 HR, 16x16 LR)                   datasets_prep/make_dataset.py
  2. the four priors from the LR faces with the offline extractors  datasets_prep/extract_priors.py
  3. validate every LMDB                                          datasets_prep/validate.py
  4. train a small LLV-FSR with BasicSR's pipeline                  basicsr train -opt options/demo/...
  5. test it (PSNR/SSIM, SR images)                                 basicsr test -opt options/demo/...
  6. paper-style report: table, identity-distance chart, grid       llvfsr-report -> demo_out/report/
  7. inference on new faces, priors computed on the fly             llvfsr-infer  -> demo_out/infer/
     and, with the released x8 model (README "Model zoo", not the   llvfsr-infer  -> demo_out/photo/
     demo's), on a whole photo (faces found, aligned, pasted back)
  8. demo_out/comparison.png (LR | bicubic | LLV-FSR | HR) and demo_out/summary.md, from the report

Run from the repository root: `make demo` (installs first) or `.venv/bin/python scripts/demo.py`.
"""
import argparse
import csv
import os
import shutil
import subprocess
import sys
import time

import cv2

from llvfsr_plugin.prep.layout import hr_path, lr_path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, 'demo_data', 'celebahq_demo')
OUT = 'demo_out'
TRAIN_OPT = 'options/demo/train_llvfsr_x8_cpu_demo.yml'
TEST_OPT = 'options/demo/test_llvfsr_x8_cpu_demo.yml'
NAME = 'demo_LLVFSR_x8_cpu'


def step(msg):
    print(f'\n==== {msg}', flush=True)


def run(cmd):
    print('$ ' + ' '.join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--iters', type=int, default=None, help='override train:total_iter (default: the YAML)')
    ap.add_argument('--fresh', action='store_true', help='rebuild demo_out/ and the experiment from scratch')
    args = ap.parse_args(argv)
    os.chdir(ROOT)
    os.environ.setdefault('GLOG_minloglevel', '2')  # MediaPipe's C++ logging
    t0 = time.time()
    py = sys.executable
    if args.fresh:
        shutil.rmtree(OUT, ignore_errors=True)
        shutil.rmtree(os.path.join('experiments', NAME), ignore_errors=True)

    step('1/8 HR -> LR x8 LMDBs from the bundled faces')
    run([py, 'datasets_prep/make_dataset.py', '--hr-dir', f'{DEMO}/images', '--split-csv', f'{DEMO}/index.csv',
         '--out', f'{OUT}/data', '--scales', '8', '--hr-size', '128'])
    step('2/8 priors from the LR faces (offline: FaceMesh mask+depth, caption files (oracle), MiniLM)')
    run([py, 'datasets_prep/extract_priors.py', '--root', f'{OUT}/data', '--scales', '8', '--text-dir', f'{DEMO}/text'])
    step('3/8 validate')
    run([py, 'datasets_prep/validate.py', '--root', f'{OUT}/data'])
    step('4/8 train (BasicSR pipeline)')
    train = [py, '-m', 'llvfsr_plugin', 'train', '-opt', TRAIN_OPT]
    if os.path.isdir(os.path.join('experiments', NAME, 'training_states')):
        train.append('--auto_resume')
    if args.iters:
        train += ['--force_yml', f'train:total_iter={args.iters}']
    run(train)
    step('5/8 test')
    run([py, '-m', 'llvfsr_plugin', 'test', '-opt', TEST_OPT])
    sr_dir = os.path.join('results', NAME, 'visualization', 'demo_val')
    val = [r['celebahq_idx'] for r in csv.DictReader(open(f'{DEMO}/index.csv')) if r['split'] == 'val']
    step('6/8 evaluation report (PSNR, SSIM, LPIPS, NIQE, identity distance)')
    run([py, '-m', 'llvfsr_plugin.report', '--hr', hr_path(f'{OUT}/data', 'val'), '--lr',
         lr_path(f'{OUT}/data', 'val', 8),
         '--scale', '8', '--method', f'LLV-FSR={sr_dir}', '--out', f'{OUT}/report', '--faces', *val[:6]])
    step('7/8 inference on faces given as HR files (degraded, priors on the fly)')
    os.makedirs(f'{OUT}/infer_in', exist_ok=True)
    for k in val[:4]:
        shutil.copy(f'{DEMO}/images/{k}.jpg', f'{OUT}/infer_in/{k}.jpg')
    run([py, '-m', 'llvfsr_plugin.infer', '-opt', TEST_OPT, '--input', f'{OUT}/infer_in', '--from-hr',
         '--text-dir', f'{DEMO}/text', '--out', f'{OUT}/infer', '--grid'])
    step('7b/8 a whole photo (skimage\'s astronaut) with the released x8 model (no --model): face found, aligned, '
         'restored, pasted back; no YAML, no text')
    from skimage import data
    os.makedirs(f'{OUT}/photo_in', exist_ok=True)
    cv2.imwrite(f'{OUT}/photo_in/astronaut.jpg', data.astronaut()[..., ::-1])
    run([py, '-m', 'llvfsr_plugin.infer', '-i', f'{OUT}/photo_in', '-o', f'{OUT}/photo'])
    step('8/8 comparison picture and summary (the report\'s grid and table)')
    shutil.copy(f'{OUT}/report/grid.png', f'{OUT}/comparison.png')
    summary = open(f'{OUT}/report/report.md').read().replace('](', '](report/')
    with open(f'{OUT}/summary.md', 'w') as f:
        f.write(summary)
    print(summary)
    print(f'\ndemo finished in {time.time() - t0:.0f} s; the model trained here made {OUT}/comparison.png, '
          f'{OUT}/summary.md, {OUT}/report/report.md and {OUT}/infer/grid.png; the released x8 model made '
          f'{OUT}/photo/cmp/astronaut.png')


if __name__ == '__main__':
    main()
