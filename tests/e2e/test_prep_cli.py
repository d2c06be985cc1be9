"""Prep commands end to end: SIGKILL at random moments then a rerun gives the same bytes, bad inputs skipped
or named, a full disk, torchrun extraction."""
import glob
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
from PIL import Image

from llvfsr_plugin.prep.layout import prior_dir, prior_path
from llvfsr_plugin.prep.pipeline import validate
from llvfsr_plugin.priors.store import PriorStore, Store

from helpers import DEMO, PY, ROOT, demo_keys, images_only


def _prep_cmd(root, split_json):
    return (f'{PY} {ROOT}/datasets_prep/make_dataset.py --hr-dir {DEMO}/images --split-json {split_json} '
            f'--out {root} --scales 8 --hr-size 128 && '
            f'{PY} {ROOT}/datasets_prep/extract_priors.py --root {root} --scales 8 --text-dir {DEMO}/text '
            f'--batch-size 2')


def _all_stores(root):
    return sorted(os.path.relpath(p, root) for p in glob.glob(f'{root}/*/*.lmdb') + glob.glob(f'{root}/*/*/*.lmdb'))


def _mtime(path):
    """A file's mtime, 0 when it is gone: a store finalised between the glob and the stat loses its .partial."""
    try:
        return os.path.getmtime(path)
    except FileNotFoundError:
        return 0


def test_prep_survives_sigkill_at_random_moments(tiny_root, tmp_path):
    """10 SIGKILLs at random moments of make_dataset + extract_priors, then a rerun: every LMDB equals the
    uninterrupted build (the tiny_root fixture, same inputs) key for key, byte for byte, and validates."""
    split_json = tmp_path / 'splits.json'
    split_json.write_text(json.dumps({'train': demo_keys('train', 8), 'val': demo_keys('val', 4)}))
    root = str(tmp_path / 'killed')
    cmd = _prep_cmd(root, split_json)
    env = dict(os.environ, GLOG_minloglevel='2')
    t = time.time()
    rng = random.Random(1234)
    kills, phases = 0, set()
    while kills < 10:
        p = subprocess.Popen(cmd, shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                             start_new_session=True)
        # wait until this run writes to some store, then kill at a random moment of that write
        started = time.time()
        while p.poll() is None and not [x for x in glob.glob(f'{root}/**/*.partial/data.mdb', recursive=True)
                                        if _mtime(x) > started]:
            time.sleep(0.01)
        if p.poll() is not None:  # everything finished before a write was caught: start over from nothing
            shutil.rmtree(root, ignore_errors=True)
            continue
        time.sleep(rng.uniform(0, 0.15) if kills < 3 else rng.uniform(0, 1.0))  # the image LMDBs take ~1 s
        phases |= {os.path.basename(os.path.dirname(x)).split('.')[0]
                   for x in glob.glob(f'{root}/**/*.partial/data.mdb', recursive=True) if _mtime(x) > started}
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        kills += 1
        for bad in validate(root, verbose=False):  # an interrupted store never reads as valid
            assert 'unfinished' in bad or 'not found' in bad or 'interrupted' in bad, bad
    r = subprocess.run(cmd, shell=True, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert {'hr', 'lr_x8'} & phases and {'caption', 'description', 'mask', 'depth'} & phases, phases
    problems = validate(root, verbose=False)
    assert problems == []
    assert _all_stores(root) == _all_stores(tiny_root)
    for rel in _all_stores(tiny_root):
        a, b = Store(os.path.join(tiny_root, rel)), Store(os.path.join(root, rel))
        assert a.keys() == b.keys(), rel
        assert a.meta == b.meta, rel
        for k in a.keys():
            assert a.get_bytes(k) == b.get_bytes(k), (rel, k)
    assert not glob.glob(f'{root}/**/*.partial', recursive=True) and not glob.glob(f'{root}/**/*.tmp', recursive=True)
    print(f'prep kill test: {kills} kills in {time.time() - t:.0f}s')


def test_prep_bad_images_skip_or_fail(tmp_path):
    src = tmp_path / 'faces'
    src.mkdir()
    good = demo_keys('train', 4)
    for k in good:
        shutil.copy(f'{DEMO}/images/{k}.jpg', src / f'{k}.jpg')
    img = Image.open(f'{DEMO}/images/{good[0]}.jpg')
    (src / 'trunc.jpg').write_bytes(open(f'{DEMO}/images/{good[1]}.jpg', 'rb').read()[:4000])
    img.convert('RGBA').save(src / 'alpha.png')
    img.convert('L').save(src / 'gray.png')
    img.crop((0, 0, 256, 200)).save(src / 'wide.png')
    img.crop((0, 0, 250, 250)).save(src / 'odd.png')
    split = tmp_path / 's.json'
    split.write_text(json.dumps({'train': sorted(p.stem for p in src.iterdir())}))
    base = [PY, f'{ROOT}/datasets_prep/make_dataset.py', '--hr-dir', str(src), '--split-json', str(split),
            '--scales', '8', '--hr-size', '0']
    r = subprocess.run(base + ['--out', str(tmp_path / 'fail')], capture_output=True, text=True)
    assert r.returncode != 0 and '--on-error skip' in r.stderr and 'Traceback' not in r.stderr
    assert re.search(r'(alpha|gray|odd|trunc|wide)\.(png|jpg)', r.stderr)
    assert not os.path.isdir(tmp_path / 'fail' / 'train' / 'hr.lmdb')  # nothing finished that reads as valid
    r = subprocess.run(base + ['--out', str(tmp_path / 'skip'), '--on-error', 'skip'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert sorted(Store(str(tmp_path / 'skip' / 'train' / 'hr.lmdb')).keys()) == sorted(good)
    report = (tmp_path / 'skip' / 'skipped.txt').read_text()
    for name, why in [('trunc.jpg', 'truncated'), ('alpha.png', 'alpha'), ('gray.png', 'grayscale'),
                      ('wide.png', 'not square'), ('odd.png', 'not divisible')]:
        assert re.search(rf'{name}\t.*{why}', report), (name, report)
    assert json.load(open(tmp_path / 'skip' / 'splits.json'))['train'] == sorted(good)


def test_bad_caption_files(tiny_root, tmp_path):
    root = images_only(tiny_root, tmp_path)
    texts = tmp_path / 'text'
    shutil.copytree(f'{DEMO}/text', texts)
    keys = demo_keys('val', 4)
    (texts / f'{keys[0]}.txt').write_text('   \n\n')
    (texts / f'{keys[1]}.txt').write_bytes(b'\xff\xfe caption in latin-1 \xe9')
    base = [PY, f'{ROOT}/datasets_prep/extract_priors.py', '--root', root, '--splits', 'val', '--scales', '8',
            '--priors', 'caption', '--text-dir', str(texts)]
    r = subprocess.run(base, capture_output=True, text=True)
    assert r.returncode != 0 and 'Traceback' not in r.stderr
    assert re.search(rf"for key '({keys[0]}|{keys[1]})'.*(empty caption file|not UTF-8)", r.stderr)
    r = subprocess.run(base + ['--on-error', 'skip'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    report = open(f'{root}/skipped.txt').read()
    assert 'empty caption file' in report and 'not UTF-8' in report
    cap = Store(prior_path(root, 'val', 8, 'caption'))
    assert sorted(cap.keys()) == sorted(keys[2:])  # the other records are there, untouched


def test_disk_full_stops_cleanly_and_resumes(tiny_root, tmp_path):
    root = images_only(tiny_root, tmp_path)
    shutil.rmtree(f'{root}/train')
    used = int(subprocess.run(['du', '-sk', root], capture_output=True, text=True).stdout.split()[0])
    mnt = tmp_path / 'small_disk'
    mnt.mkdir()
    # room for the images and ~1.5 description records: the disk fills during the first prior store
    if subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={used + 200}k', 'tmpfs', str(mnt)],
                      capture_output=True).returncode:
        pytest.skip('cannot mount a small tmpfs here (needs root / CAP_SYS_ADMIN) to fill a disk for real')
    try:
        shutil.copytree(root, mnt / 'd')
        cmd = [PY, f'{ROOT}/datasets_prep/extract_priors.py', '--root', str(mnt / 'd'), '--splits', 'val',
               '--scales', '8',
               '--text-dir', f'{DEMO}/text', '--priors', 'description', 'mask']
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert r.returncode != 0 and 'disk full?' in r.stderr and 'Traceback' not in r.stderr, r.stderr[-2000:]
        pdir = prior_dir(str(mnt / 'd'), 'val', 8)
        assert not os.path.exists(os.path.join(pdir, 'description.lmdb'))  # nothing that reads as valid
        subprocess.run(['mount', '-o', 'remount,size=64m', str(mnt)], check=True)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
        assert validate(str(mnt / 'd'), splits=['val'], verbose=False) == []
        for p in ('description', 'mask'):
            a, b = Store(prior_path(tiny_root, 'val', 8, p)), Store(prior_path(str(mnt / 'd'), 'val', 8, p))
            assert [a.get_bytes(k) for k in a.keys()] == [b.get_bytes(k) for k in b.keys()]
    finally:
        subprocess.run(['umount', '-l', str(mnt)])


def test_distributed_extraction_matches_single_process(tiny_root, tmp_path):
    """torchrun with 2 CPU processes shards the keys; the merged store equals a single-process one."""
    single = PriorStore(prior_path(tiny_root, 'train', 8, 'mask'))
    root = images_only(tiny_root, tmp_path)
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', '--master_port=29617',
           os.path.join(ROOT, 'datasets_prep', 'extract_priors.py'), '--root', root, '--splits', 'train',
           '--scales', '8', '--priors', 'mask', 'depth', 'caption', '--text-dir', os.path.join(DEMO, 'text'),
           '--launcher', 'pytorch', '--batch-size', '3']
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert r.returncode == 0, r.stderr[-3000:]
    for prior in ('mask', 'depth', 'caption'):
        a, b = PriorStore(prior_path(tiny_root, 'train', 8, prior)), PriorStore(prior_path(root, 'train', 8, prior))
        assert a.keys() == b.keys()
        for k in a.keys():
            assert a.get_bytes(k) == b.get_bytes(k), (prior, k)
    assert not [d for d in os.listdir(prior_dir(root, 'train', 8)) if 'shard' in d or 'partial' in d]
    assert single.meta['extractor'] == 'facemesh'

