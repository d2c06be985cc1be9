"""Paper-style evaluation report (Table 1, Fig. 5-7) for several methods at one scale.

  llvfsr-report --hr datasets/demo/val/hr.lmdb --lr datasets/demo/val/lr_x8.lmdb --scale 8 \
      --method LLV-FSR=results/LLVFSR_x8/visualization/val --method EDSR=results/EDSR_x8/visualization/val \
      --out reports/x8 [--faces 12 29] [--metrics psnr ssim lpips niqe id_dist face_psnr] [--reference EDSR]

HR / LR: a folder of images or an LMDB from datasets_prep (keys = file stems). Method folders hold one SR
image per key, named `<key>.png` or `<key>_<anything>.png` (BasicSR's `save_img` naming). Bicubic (MATLAB)
is always the first row. Writes report.md (best per column in bold), report.csv, per_image.csv (every
face's scores), id_distance.png (bar chart) and grid.png (LR | methods | HR); with --reference, the paired
per-face differences against that method with 95 % bootstrap intervals (report.md, paired.json).
PSNR/SSIM on Y, no border crop, for every row; face_psnr: PSNR on Y inside the HR face's FaceMesh oval.
"""
import argparse
import csv
import glob
import json
import os
import sys

import cv2
import numpy as np
from tqdm import tqdm

from basicsr.utils.registry import METRIC_REGISTRY
from llvfsr_plugin.cli import command
from llvfsr_plugin.errors import ModelUnavailable, OptionError
from llvfsr_plugin.metrics.face_metric import ID_STATS
from llvfsr_plugin.prep.images import decode_png, imresize_uint8, list_images
from llvfsr_plugin.priors.store import Store, is_lmdb
from llvfsr_plugin.utils.stats import paired_bootstrap
from llvfsr_plugin.utils.vis import imwrite_rgb, make_grid

METRICS = {  # name: (registry function, kwargs, higher is better, format)
    'psnr': ('calculate_psnr', {'crop_border': 0, 'test_y_channel': True}, True, '{:.2f}'),
    'ssim': ('calculate_ssim', {'crop_border': 0, 'test_y_channel': True}, True, '{:.4f}'),
    'lpips': ('calculate_lpips', {}, False, '{:.4f}'),
    'niqe': ('calculate_niqe_pyiqa', {'crop_border': 0}, False, '{:.3f}'),
    'id_dist': ('calculate_identity_distance', {}, False, '{:.4f}'),
    'face_psnr': ('calculate_face_psnr', {}, True, '{:.2f}'),
}


def open_images(path):
    """-> (keys, get(key) -> RGB uint8) for an LMDB (datasets_prep) or a folder."""
    if is_lmdb(path):
        s = Store(path)
        return sorted(s.keys()), lambda k: decode_png(s.get_bytes(k))
    files = {os.path.splitext(os.path.basename(p))[0]: p for p in list_images(path)}
    return sorted(files), lambda k: cv2.cvtColor(cv2.imread(files[k]), cv2.COLOR_BGR2RGB)


def read_per_image(path):
    """A report's per_image.csv (what `write_report` writes) -> {method: {key: {metric: score}}}, methods and
    faces in the file's order; a metric left empty for a method (not computed) is absent."""
    scores = {}
    with open(path, newline='') as f:
        for r in csv.DictReader(f):
            method, key = r.pop('method'), r.pop('key')
            scores.setdefault(method, {})[key] = {m: float(v) for m, v in r.items() if v not in ('', None)}
    return scores


def find_sr(folder, key):
    for cand in (os.path.join(folder, f'{key}.png'), *sorted(glob.glob(os.path.join(folder, f'{key}_*.png')))):
        if os.path.isfile(cand):
            return cand
    return None


def evaluate(hr_path, lr_path, methods, metrics, scale):
    """-> rows {method: {metric: mean}}, per-image scores, notes. Bicubic first."""
    keys, get_hr = open_images(hr_path)
    lr_keys, get_lr = open_images(lr_path)
    missing = sorted(set(keys) - set(lr_keys))
    if missing:
        sys.exit(f'llvfsr-report: {len(missing)} HR key(s) have no LR image in {lr_path}, e.g. {missing[:5]}')
    for name, folder in methods.items():
        absent = [k for k in keys if find_sr(folder, k) is None]
        if absent:
            sys.exit(f'llvfsr-report: method {name!r}: no SR image for {len(absent)} of {len(keys)} faces in '
                     f'{folder}, e.g. {absent[:5]} (a report never averages over fewer images than the set has)')
    names = ['Bicubic'] + list(methods)
    per = {n: {m: [] for m in metrics} for n in names}
    unavailable, id_missed = {}, {n: 0 for n in names}
    for k in tqdm(keys, desc='report', unit='face', dynamic_ncols=True):
        hr = get_hr(k)
        lr = get_lr(k)
        if hr.shape[0] != lr.shape[0] * scale:
            sys.exit(f'llvfsr-report: {k}: HR {hr.shape[:2]} is not x{scale} of LR {lr.shape[:2]}')
        imgs = {'Bicubic': imresize_uint8(lr, out_hw=hr.shape[:2])}
        for n, folder in methods.items():
            imgs[n] = cv2.cvtColor(cv2.imread(find_sr(folder, k)), cv2.COLOR_BGR2RGB)
        for n, img in imgs.items():
            for m in metrics:
                if m in unavailable:
                    continue
                fn, kw, _, _ = METRICS[m]
                before = ID_STATS['face_not_found']
                try:
                    v = METRIC_REGISTRY.get(fn)(img=img[..., ::-1], img2=hr[..., ::-1], **kw)
                except ModelUnavailable as e:
                    unavailable[m] = str(e)
                    continue
                id_missed[n] += ID_STATS['face_not_found'] - before
                per[n][m].append(float(v))
    rows = {n: {m: float(np.mean(v)) for m, v in per[n].items() if v} for n in names}
    notes = [f'{m}: not computed - {why}' for m, why in unavailable.items()]
    notes += [f'{n}: identity distance found no face in {c} of {len(keys)} SR/HR pairs (whole crop embedded)'
              for n, c in id_missed.items() if c]
    return rows, per, keys, notes


def paired_rows(per, keys, metrics, reference):
    """{method: {metric: paired_bootstrap(method, reference)}} for every other method, per-face paired."""
    out = {}
    for n, scores in per.items():
        if n == reference:
            continue
        out[n] = {m: paired_bootstrap(scores[m], per[reference][m]) for m in metrics
                  if len(scores[m]) == len(keys) == len(per[reference][m])}
    return out


def write_report(out, rows, per, keys, notes, metrics, scale, hr_path, lr_path, methods, faces, reference=None):
    os.makedirs(out, exist_ok=True)
    names = list(rows)
    best = {}
    for m in metrics:
        vals = {n: rows[n][m] for n in names if m in rows[n] and np.isfinite(rows[n][m])}
        if vals:
            best[m] = (max if METRICS[m][2] else min)(vals, key=vals.get)
    label = {'id_dist': 'ID dist', 'face_psnr': 'Face PSNR'}
    head = ['method'] + [f'{label.get(m, m.upper())} {"↑" if METRICS[m][2] else "↓"}' for m in metrics]
    lines = [f'# x{scale} evaluation ({len(keys)} faces)', '',
             f'HR: `{hr_path}`, LR: `{lr_path}`. PSNR/SSIM on Y, no border crop; best in bold.', '',
             '| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    with open(os.path.join(out, 'report.csv'), 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['method'] + metrics + ['n_faces'])
        for n in names:
            cells = []
            for m in metrics:
                if m not in rows[n]:
                    cells.append('n/a')
                    continue
                c = METRICS[m][3].format(rows[n][m])
                cells.append(f'**{c}**' if best.get(m) == n else c)
            lines.append(f'| {n} | ' + ' | '.join(cells) + ' |')
            w.writerow([n] + [rows[n].get(m, '') for m in metrics] + [len(keys)])
    with open(os.path.join(out, 'per_image.csv'), 'w', newline='') as f:  # every face's scores, for any test
        w = csv.writer(f)
        w.writerow(['key', 'method'] + metrics)
        for n in names:
            for i, k in enumerate(keys):
                w.writerow([k, n] + [per[n][m][i] if len(per[n][m]) == len(keys) else '' for m in metrics])
    if reference:
        paired = paired_rows(per, keys, metrics, reference)
        with open(os.path.join(out, 'paired.json'), 'w') as f:
            json.dump({'reference': reference, 'faces': len(keys), 'paired': paired}, f, indent=1)
        lines += ['', f'Paired differences against **{reference}** on the same {len(keys)} faces: mean of the per-face '
                  f'difference, 95 % bootstrap interval over faces, share of faces where the method scores higher.',
                  '', '| method | ' + ' | '.join(metrics) + ' |', '|' + '---|' * (len(metrics) + 1)]
        for n, cols in paired.items():
            lines.append(f'| {n} | ' + ' | '.join(
                f"{c['mean']:+.3f} [{c['lo']:+.3f}, {c['hi']:+.3f}] ({100 * c['better']:.0f} %)" if c else 'n/a'
                for c in (cols.get(m) for m in metrics)) + ' |')
    if notes:
        lines += [''] + [f'- {x}' for x in notes]
    if 'id_dist' in metrics and all('id_dist' in rows[n] for n in names):
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(names), 3.2), dpi=110)
        vals = [rows[n]['id_dist'] for n in names]
        err = [np.std(per[n]['id_dist']) / np.sqrt(len(per[n]['id_dist'])) for n in names]
        ax.bar(names, vals, yerr=err, color=['#999999'] + ['#4477aa'] * (len(names) - 1), capsize=3)
        ax.set_ylabel('identity distance ↓ (cosine)')
        ax.set_title(f'x{scale} SR vs HR, mean ± s.e.', fontsize=9)
        fig.tight_layout()
        fig.savefig(os.path.join(out, 'id_distance.png'))
        plt.close(fig)
        lines += ['', '![identity distance](id_distance.png)']
    _, get_hr = open_images(hr_path)
    _, get_lr = open_images(lr_path)
    grid_rows, titles = [], []
    for k in (faces or keys[:4]):
        hr, lr = get_hr(k), get_lr(k)
        row = [lr, imresize_uint8(lr, out_hw=hr.shape[:2])]
        row += [cv2.cvtColor(cv2.imread(find_sr(f, k)), cv2.COLOR_BGR2RGB) for f in methods.values()]
        grid_rows.append(row + [hr])
        titles.append([f'LR {k}'] + [f'{n} {per[n]["psnr"][keys.index(k)]:.2f}dB' if 'psnr' in per[n] and per[n]['psnr']
                                     else n for n in names] + ['HR'])
    imwrite_rgb(os.path.join(out, 'grid.png'), make_grid(grid_rows, titles, size=128))
    lines += ['', '![LR | methods | HR](grid.png)']
    with open(os.path.join(out, 'report.md'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return '\n'.join(lines)


def main(argv=None):
    return command('llvfsr-report', _main, argv)


def _main(argv):
    ap = argparse.ArgumentParser(prog='llvfsr-report', description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--hr', required=True)
    ap.add_argument('--lr', required=True)
    ap.add_argument('--scale', type=int, required=True)
    ap.add_argument('--method', action='append', default=[], metavar='NAME=FOLDER', help='repeatable')
    ap.add_argument('--metrics', nargs='+', default=list(METRICS), choices=list(METRICS))
    ap.add_argument('--faces', nargs='*', default=None, help='keys for grid.png (default: first 4)')
    ap.add_argument('--reference', default=None, metavar='NAME',
                    help='also report every method minus this one (e.g. Model 1), paired per face, with 95 %% '
                         'bootstrap intervals (paired.json)')
    ap.add_argument('--out', required=True)
    args = ap.parse_args(argv)
    methods = {}
    for m in args.method:
        if '=' not in m:
            sys.exit(f'--method expects NAME=FOLDER, got {m!r}')
        n, folder = m.split('=', 1)
        if not os.path.isdir(folder):
            sys.exit(f'--method {n}: folder not found: {folder}')
        methods[n] = folder
    if args.reference and args.reference not in ['Bicubic', *methods]:
        raise OptionError(f'--reference {args.reference!r} is not a method of this report: {["Bicubic", *methods]}')
    rows, per, keys, notes = evaluate(args.hr, args.lr, methods, args.metrics, args.scale)
    print(write_report(args.out, rows, per, keys, notes, args.metrics, args.scale, args.hr, args.lr, methods,
                       args.faces, args.reference))
    return 0


if __name__ == '__main__':
    sys.exit(main())
