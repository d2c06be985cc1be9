"""The evaluation report and the inference command, on real faces."""
import csv
import json
import os
import shutil
import subprocess

import cv2
import numpy as np
import pytest
import torch
import yaml

from basicsr.archs import build_network
from llvfsr_plugin.prep.images import decode_png, imresize_uint8
from llvfsr_plugin.priors.store import Store

from helpers import DEMO, PY, demo_keys, small_net


@pytest.fixture(scope='module')
def result_folders(tiny_root, tmp_path_factory):
    """Two 'methods' on the tiny val set: a sharp-ish one (HR lightly blurred, `<key>.png`) and a blurry one
    (bicubic, BasicSR-style `<key>_name.png`)."""
    d = tmp_path_factory.mktemp('results')
    hr, lr = Store(f'{tiny_root}/val/hr.lmdb'), Store(f'{tiny_root}/val/lr_x8.lmdb')
    for name in ('good', 'blurry'):
        os.makedirs(d / name)
    for k in hr.keys():
        h = decode_png(hr.get_bytes(k))
        cv2.imwrite(str(d / 'good' / f'{k}.png'), cv2.GaussianBlur(h, (0, 0), 0.8)[..., ::-1])
        b = imresize_uint8(decode_png(lr.get_bytes(k)), out_hw=h.shape[:2])
        cv2.imwrite(str(d / 'blurry' / f'{k}_blurry_model.png'), cv2.GaussianBlur(b, (0, 0), 1.5)[..., ::-1])
    return d


def test_report_table_chart_grid(tiny_root, result_folders, tmp_path):
    out = tmp_path / 'rep'
    r = subprocess.run([PY, '-m', 'llvfsr_plugin.report', '--hr', f'{tiny_root}/val/hr.lmdb', '--lr',
                        f'{tiny_root}/val/lr_x8.lmdb', '--scale', '8', '--method', f'Good={result_folders}/good',
                        '--method', f'Blurry={result_folders}/blurry', '--out', str(out), '--reference', 'Bicubic'],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    md = (out / 'report.md').read_text()
    rows = {row['method']: row for row in csv.DictReader(open(out / 'report.csv'))}
    assert list(rows) == ['Bicubic', 'Good', 'Blurry'] and all(row['n_faces'] == '4' for row in rows.values())
    assert float(rows['Good']['psnr']) > float(rows['Bicubic']['psnr']) > float(rows['Blurry']['psnr'])
    good_psnr = f"**{float(rows['Good']['psnr']):.2f}**"
    assert good_psnr in md and '| Good |' in md and 'ID dist ↓' in md
    assert 'lpips: not computed' in md or float(rows['Good']['lpips']) >= 0  # no AlexNet weights here
    assert float(rows['Good']['id_dist']) < float(rows['Blurry']['id_dist'])
    per_image = list(csv.DictReader(open(out / 'per_image.csv')))
    assert len(per_image) == 3 * 4 and {r['method'] for r in per_image} == {'Bicubic', 'Good', 'Blurry'}
    paired = json.load(open(out / 'paired.json'))['paired']
    good = [float(r['psnr']) - float(b['psnr']) for r, b in zip(per_image[4:8], per_image[:4])]
    assert paired['Good']['psnr']['mean'] == pytest.approx(np.mean(good)) and paired['Good']['psnr']['lo'] > 0
    assert paired['Blurry']['psnr']['hi'] < 0 and 'Paired differences against **Bicubic**' in md
    assert float(rows['Good']['face_psnr']) > float(rows['Blurry']['face_psnr'])
    for png in ('id_distance.png', 'grid.png'):
        img = cv2.imread(str(out / png))
        assert img is not None and img.shape[0] > 100
    assert cv2.imread(str(out / 'grid.png')).shape[1] > 4 * 128  # LR | bicubic | 2 methods | HR


def test_report_refuses_incomplete_method(tiny_root, result_folders, tmp_path):
    part = tmp_path / 'part'
    shutil.copytree(result_folders / 'good', part)
    os.remove(part / f'{demo_keys("val", 4)[2]}.png')
    r = subprocess.run([PY, '-m', 'llvfsr_plugin.report', '--hr', f'{tiny_root}/val/hr.lmdb', '--lr',
                        f'{tiny_root}/val/lr_x8.lmdb', '--scale', '8', '--method', f'Part={part}', '--out',
                        str(tmp_path / 'o'), '--metrics', 'psnr'], capture_output=True, text=True)
    assert r.returncode != 0 and "method 'Part': no SR image for 1 of 4 faces" in r.stderr


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    d = tmp_path_factory.mktemp('ckpt')
    torch.manual_seed(0)
    net = build_network(small_net())
    torch.save({'params': net.state_dict()}, d / 'net.pth')
    opt = {'name': 'inf', 'scale': 8, 'network_g': small_net(), 'path': {'pretrain_network_g': str(d / 'net.pth')}}
    (d / 'opt.yml').write_text(yaml.safe_dump(opt))
    return d


def test_infer_from_hr_with_bad_files(checkpoint, tmp_path):
    inp = tmp_path / 'in'
    inp.mkdir()
    keys = demo_keys('val', 3)
    for k in keys:
        shutil.copy(f'{DEMO}/images/{k}.jpg', inp / f'{k}.jpg')
    (inp / 'broken.jpg').write_bytes(b'not a jpeg')
    cv2.imwrite(str(inp / 'wide.png'), cv2.imread(f'{DEMO}/images/{keys[0]}.jpg')[:200])
    out = tmp_path / 'out'
    r = subprocess.run([PY, '-m', 'llvfsr_plugin.infer', '-opt', str(checkpoint / 'opt.yml'), '--input', str(inp),
                        '--from-hr', '--lr-size', '16', '--text-dir', f'{DEMO}/text', '--out', str(out), '--grid',
                        '--batch-size', '2'], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert '3 face(s) restored from 3/5 image(s)' in r.stdout and 'skipped 2' in r.stdout
    for k in keys:
        assert cv2.imread(str(out / f'{k}.png')).shape == (128, 128, 3)
    skipped = (out / 'skipped.txt').read_text()
    assert 'broken.jpg' in skipped and 'wide.png' in skipped and 'not square' in skipped
    assert cv2.imread(str(out / 'grid.png')) is not None


def test_infer_aligned_resizes_other_lr_sizes_without_text(checkpoint, tmp_path):
    """Aligned LR faces of another size are resized to the network's LR size; no text is needed (a checkpoint
    of an earlier version, whose network uses text: blank text, said so)."""
    inp = tmp_path / 'in'
    inp.mkdir()
    k = demo_keys('val', 1)[0]
    cv2.imwrite(str(inp / f'{k}.png'), cv2.resize(cv2.imread(f'{DEMO}/images/{k}.jpg'), (24, 24),
                                                  interpolation=cv2.INTER_AREA))
    r = subprocess.run([PY, '-m', 'llvfsr_plugin.infer', '-opt', str(checkpoint / 'opt.yml'), '--input', str(inp),
                        '--lr-size', '16', '--aligned', '--out', str(tmp_path / 'out')], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'resized 1 aligned input(s) to 16px' in r.stdout and 'without text it gets a blank caption' in r.stdout
    assert cv2.imread(str(tmp_path / 'out' / f'{k}.png')).shape == (128, 128, 3)


def test_infer_rejects_mismatched_checkpoint(checkpoint, tmp_path):
    opt = yaml.safe_load(open(checkpoint / 'opt.yml'))
    opt['network_g']['num_blocks'] = 3
    (tmp_path / 'o.yml').write_text(yaml.safe_dump(opt))
    r = subprocess.run([PY, '-m', 'llvfsr_plugin.infer', '-opt', str(tmp_path / 'o.yml'), '--input', DEMO + '/images',
                        '--out', str(tmp_path / 'x'), '--text-dir', DEMO + '/text'], capture_output=True, text=True)
    assert r.returncode != 0 and 'trained with other network options' in r.stderr
    assert 'missing in checkpoint' in r.stderr

