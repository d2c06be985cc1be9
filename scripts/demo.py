#!/usr/bin/env python
"""End-to-end LLV-FSR demo on the 64 bundled CelebA-HQ faces, on CPU, in a few minutes:

  1. HR -> LR x8 LMDBs (128x128 HR, 16x16 LR)                   datasets_prep/make_dataset.py
  2. the four priors from the LR faces with the offline extractors  datasets_prep/extract_priors.py
  3. validate every LMDB                                          datasets_prep/validate.py
  4. train a small LLV-FSR with BasicSR's pipeline                  basicsr train -opt options/demo/...
  5. test it (PSNR/SSIM, SR images)                                 basicsr test -opt options/demo/...
  6. paper-style report: table, identity-distance chart, grid       llvfsr-report -> demo_out/report/
  7. inference on new faces, priors computed on the fly             llvfsr-infer  -> demo_out/infer/
  8. demo_out/comparison.png (LR | bicubic | LLV-FSR | HR) and demo_out/summary.md

Run from the repository root: `make demo` (installs first) or `.venv/bin/python scripts/demo.py`.
"""
import argparse
import glob
import os
import shutil
import subprocess
import sys
import time

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
    step('6/8 evaluation report (PSNR, SSIM, LPIPS, NIQE, identity distance)')
    run([py, '-m', 'llvfsr_plugin.report', '--hr', f'{OUT}/data/val/hr.lmdb', '--lr', f'{OUT}/data/val/lr_x8.lmdb',
         '--scale', '8', '--method', f'LLV-FSR={sr_dir}', '--out', f'{OUT}/report'])
    step('7/8 inference on faces given as HR files (degraded, priors on the fly)')
    import csv
    val = [r['celebahq_idx'] for r in csv.DictReader(open(f'{DEMO}/index.csv')) if r['split'] == 'val'][:4]
    os.makedirs(f'{OUT}/infer_in', exist_ok=True)
    for k in val:
        shutil.copy(f'{DEMO}/images/{k}.jpg', f'{OUT}/infer_in/{k}.jpg')
    run([py, '-m', 'llvfsr_plugin.infer', '-opt', TEST_OPT, '--input', f'{OUT}/infer_in', '--from-hr', '--lr-size',
         '16', '--text-dir', f'{DEMO}/text', '--out', f'{OUT}/infer', '--grid'])
    step('8/8 comparison picture')
    summary = make_comparison()
    print(summary)
    print(f'\ndemo finished in {time.time() - t0:.0f} s; see {OUT}/comparison.png, {OUT}/summary.md, '
          f'{OUT}/report/report.md and {OUT}/infer/grid.png')


def make_comparison(n_faces=6):
    import numpy as np

    import llvfsr_plugin  # noqa: F401  (compat patches before basicsr)
    from basicsr.metrics import calculate_psnr, calculate_ssim

    from llvfsr_plugin.prep.images import decode_png, imresize_uint8
    from llvfsr_plugin.priors.store import Store
    from llvfsr_plugin.utils.vis import imwrite_rgb, make_grid
    import cv2

    lr_s, hr_s = Store(f'{OUT}/data/val/lr_x8.lmdb'), Store(f'{OUT}/data/val/hr.lmdb')
    keys = sorted(hr_s.keys(), key=lambda k: int(k) if k.isdigit() else k)
    sr_dir = os.path.join('results', NAME, 'visualization', 'demo_val')
    rows, titles, scores = [], [], {'bicubic': [], 'LLV-FSR': []}
    for k in keys:
        lr, hr = decode_png(lr_s.get_bytes(k)), decode_png(hr_s.get_bytes(k))
        bic = imresize_uint8(lr, out_hw=hr.shape[:2])  # MATLAB bicubic, the FSR tables' 'Bicubic' row
        cand = glob.glob(os.path.join(sr_dir, f'{k}_*.png'))
        if not cand:
            raise FileNotFoundError(f'no SR image for {k} in {sr_dir}')
        sr = cv2.cvtColor(cv2.imread(cand[0]), cv2.COLOR_BGR2RGB)
        row_scores = {}
        for name, img in (('bicubic', bic), ('LLV-FSR', sr)):
            p = calculate_psnr(img[..., ::-1], hr[..., ::-1], crop_border=0, test_y_channel=True)
            s = calculate_ssim(img[..., ::-1], hr[..., ::-1], crop_border=0, test_y_channel=True)
            scores[name].append((p, s))
            row_scores[name] = p
        if len(rows) < n_faces:
            rows.append([lr, bic, sr, hr])
            titles.append([f'LR {lr.shape[0]}px', f'bicubic {row_scores["bicubic"]:.2f}dB',
                           f'LLV-FSR {row_scores["LLV-FSR"]:.2f}dB', f'HR {k}'])
    imwrite_rgb(f'{OUT}/comparison.png', make_grid(rows, titles, size=128))
    lines = [f'Demo (bundled val faces, n={len(keys)}, x8: {lr.shape[0]}->{hr.shape[0]} px; PSNR/SSIM on Y):', '',
             '| method | PSNR (dB) | SSIM |', '|---|---|---|']
    for name, v in scores.items():
        a = np.array(v)
        lines.append(f'| {name} | {a[:, 0].mean():.2f} | {a[:, 1].mean():.4f} |')
    text = '\n'.join(lines)
    with open(f'{OUT}/summary.md', 'w') as f:
        f.write(text + '\n')
    return text


if __name__ == '__main__':
    main()
