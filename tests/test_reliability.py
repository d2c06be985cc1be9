"""Reliability: prep survives SIGKILL, training resumes exactly, distributed runs agree and end cleanly,
bad input gets one clear message and nothing else is lost."""
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

import numpy as np
import pytest
import torch

from conftest import DEMO, ROOT, dataset_opt, demo_keys, run_cli, small_net, tamper, train_opt, write_yaml
from llvfsr_plugin.prep.pipeline import prior_path, validate
from llvfsr_plugin.priors.record import encode_record
from llvfsr_plugin.priors.store import Store

PY = sys.executable


def _prep_cmd(root, split_json):
    return (f'{PY} {ROOT}/datasets_prep/make_dataset.py --hr-dir {DEMO}/images --split-json {split_json} '
            f'--out {root} --scales 8 --hr-size 128 && '
            f'{PY} {ROOT}/datasets_prep/extract_priors.py --root {root} --scales 8 --text-dir {DEMO}/text '
            f'--batch-size 2')


def _all_stores(root):
    return sorted(os.path.relpath(p, root) for p in glob.glob(f'{root}/*/*.lmdb') + glob.glob(f'{root}/*/*/*.lmdb'))


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
                                        if os.path.getmtime(x) > started]:
            time.sleep(0.01)
        if p.poll() is not None:  # everything finished before a write was caught: start over from nothing
            shutil.rmtree(root, ignore_errors=True)
            continue
        time.sleep(rng.uniform(0, 0.15) if kills < 3 else rng.uniform(0, 1.0))  # the image LMDBs take ~1 s
        phases |= {os.path.basename(os.path.dirname(x)).split('.')[0]
                   for x in glob.glob(f'{root}/**/*.partial/data.mdb', recursive=True) if os.path.getmtime(x) > started}
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


def _weights(path):
    return torch.load(path, map_location='cpu', weights_only=True)['params']


def _resume_opt(tiny_root, name, iters):
    opt = train_opt(tiny_root, name, iters=iters)
    opt['datasets']['train'].update(batch_size_per_gpu=2, use_hflip=True)  # 4 iterations per epoch
    opt['logger']['save_checkpoint_freq'] = 3  # states at 3, 6, 9: mid-epoch
    opt['val']['val_freq'] = 10 ** 6
    return opt


def test_training_resume_after_sigkill_is_bit_exact(tiny_root, tmp_path):
    ref = tmp_path / 'ref'
    ref.mkdir()
    run_cli(['train', '-opt', write_yaml(ref / 'o.yml', _resume_opt(tiny_root, 'exact', 10))], cwd=ref)
    w_ref = _weights(ref / 'experiments' / 'exact' / 'models' / 'net_g_latest.pth')

    work = tmp_path / 'killed'
    work.mkdir()
    opt = write_yaml(work / 'o.yml', _resume_opt(tiny_root, 'exact', 10))
    p = subprocess.Popen([PY, '-m', 'llvfsr_plugin', 'train', '-opt', opt], cwd=work, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    states = work / 'experiments' / 'exact' / 'training_states'
    deadline = time.time() + 300
    while not (states / '3.state').exists() and time.time() < deadline and p.poll() is None:
        time.sleep(0.05)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    killed_at = sorted(int(f.split('.')[0]) for f in os.listdir(states) if f.endswith('.state'))
    assert killed_at and killed_at[-1] < 10, killed_at  # really interrupted mid-run
    r = run_cli(['train', '-opt', opt, '--auto_resume'], cwd=work)
    assert f"iter: {killed_at[-1]}" in r.stdout + r.stderr
    w = _weights(work / 'experiments' / 'exact' / 'models' / 'net_g_latest.pth')
    for k in w_ref:
        assert torch.equal(w[k], w_ref[k]), f'{k} differs after resume (from iter {killed_at[-1]})'


def _losses(exp_dir):
    log = open(glob.glob(f'{exp_dir}/train_*.log')[0]).read()
    return [float(x) for x in re.findall(r'l_pix: ([0-9.e+-]+)', log)]


def test_torchrun_two_processes_match_one_process(tiny_root, tmp_path):
    """Same global batch (all 8 faces each step, no augmentation): the loss curve of 2 gloo ranks x 4
    matches 1 process x 8 within 1e-3 relative (the log prints 5 significant digits; fp32 sums are
    reduced in another order), and the weights within 1e-4."""
    def opt(name, bs):
        o = train_opt(tiny_root, name, iters=4)
        o['datasets']['train'].update(batch_size_per_gpu=bs, use_hflip=False)
        o['val']['val_freq'] = 10 ** 6
        o['logger']['save_checkpoint_freq'] = 10 ** 6
        return o
    run_cli(['train', '-opt', write_yaml(tmp_path / 'one.yml', opt('one', 8))], cwd=tmp_path)
    r = subprocess.run([PY, '-m', 'torch.distributed.run', '--nproc_per_node=2', '--master_port=29619', '-m',
                        'llvfsr_plugin', 'train', '-opt', write_yaml(tmp_path / 'two.yml', opt('two', 4)),
                        '--launcher', 'pytorch'], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert r.returncode == 0, r.stderr[-3000:]
    l1, l2 = _losses(tmp_path / 'experiments' / 'one'), _losses(tmp_path / 'experiments' / 'two')
    assert len(l1) == len(l2) == 4
    np.testing.assert_allclose(l2, l1, rtol=1e-3)
    w1 = _weights(tmp_path / 'experiments' / 'one' / 'models' / 'net_g_latest.pth')
    w2 = _weights(tmp_path / 'experiments' / 'two' / 'models' / 'net_g_latest.pth')
    for k in w1:
        torch.testing.assert_close(w2[k], w1[k], atol=1e-4, rtol=1e-3)


def _pids_with(text):
    out = []
    for pid in os.listdir('/proc'):
        if pid.isdigit():
            try:
                if text in open(f'/proc/{pid}/cmdline', 'rb').read().decode(errors='replace'):
                    env = open(f'/proc/{pid}/environ', 'rb').read().decode(errors='replace').split('\0')
                    out.append((int(pid), dict(e.split('=', 1) for e in env if '=' in e)))
            except OSError:
                pass
    return out


def test_killed_rank_ends_the_job(tiny_root, tmp_path):
    o = train_opt(tiny_root, 'dies', iters=100000)
    o['datasets']['train'].update(batch_size_per_gpu=2)
    path = write_yaml(tmp_path / 'dies_unique.yml', o)
    p = subprocess.Popen([PY, '-m', 'torch.distributed.run', '--nproc_per_node=2', '--master_port=29621', '-m',
                          'llvfsr_plugin', 'train', '-opt', path, '--launcher', 'pytorch'], cwd=tmp_path,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ, OMP_NUM_THREADS='1', LLVFSR_DIST_TIMEOUT='60'))
    log = tmp_path / 'experiments' / 'dies'
    deadline = time.time() + 240
    while not glob.glob(f'{log}/train_*.log') or 'iter:' not in open(glob.glob(f'{log}/train_*.log')[0]).read():
        assert time.time() < deadline and p.poll() is None, 'training did not start'
        time.sleep(0.2)
    victims = [pid for pid, env in _pids_with('dies_unique.yml') if env.get('LOCAL_RANK') == '1']
    assert victims
    os.kill(victims[0], signal.SIGKILL)
    t = time.time()
    try:
        rc = p.wait(timeout=180)
    except subprocess.TimeoutExpired:
        p.kill()
        pytest.fail('torchrun kept running after a rank was killed')
    assert rc != 0 and time.time() - t < 180
    assert not [pid for pid, _ in _pids_with('dies_unique.yml')]  # no orphaned rank left behind


# ------------------------------------------------------------------------------------------ bad input
def test_prep_bad_images_skip_or_fail(tmp_path):
    from PIL import Image
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
    from test_priors import _images_only
    root = _images_only(tiny_root, tmp_path)
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


def test_nan_prior_named_at_read(tiny_root, tmp_path):
    from llvfsr_plugin.data.prior_paired_dataset import PriorPairedDataset
    from llvfsr_plugin.priors.record import RecordError
    root = str(tmp_path / 'd')
    shutil.copytree(tiny_root, root)
    key = demo_keys('val', 4)[0]
    bad = np.full((64, 64), np.nan, np.float16)
    import struct
    import zlib
    blob = encode_record({'depth': np.zeros((64, 64), np.float16)})  # then smuggle NaNs past the writer
    head_len = struct.unpack_from('<I', blob, 5)[0]
    header = json.loads(blob[9:9 + head_len])
    header['crc32'] = zlib.crc32(bad.tobytes())
    h = json.dumps(header, sort_keys=True).encode()
    tamper(prior_path(root, 'val', 8, 'depth'), key, b'LLVP1' + struct.pack('<I', len(h)) + h + bad.tobytes())
    ds = PriorPairedDataset(dict(dataset_opt(root, 'val'), phase='val', scale=8))
    idx = ds.keys.index(key)
    with pytest.raises(RecordError, match=rf"depth.lmdb\[{key}\].*NaN/inf"):
        ds[idx]
    assert any('NaN/inf' in p for p in validate(root, verbose=False))


def test_prior_store_from_another_extractor_refused(tiny_root):
    from llvfsr_plugin.data.prior_paired_dataset import DatasetOptionError, PriorPairedDataset
    with pytest.raises(DatasetOptionError, match=r"made by extractor 'facemesh', but `prior_extractors.mask` asks "
                                                 r"for 'sam'"):
        PriorPairedDataset(dict(dataset_opt(tiny_root, 'val'), phase='val', scale=8, prior_extractors={'mask': 'sam'}))


def test_checkpoint_of_other_network_options(tiny_root, tmp_path):
    run_cli(['train', '-opt', write_yaml(tmp_path / 'a.yml', train_opt(tiny_root, 'ck', iters=2))], cwd=tmp_path)
    opt = train_opt(tiny_root, 'ck_test', network=small_net(num_feat=24))
    test = dict(opt, datasets={'test_1': dataset_opt(tiny_root, 'val')},
                path={'pretrain_network_g': str(tmp_path / 'experiments/ck/models/net_g_latest.pth'),
                      'strict_load_g': True})
    r = run_cli(['test', '-opt', write_yaml(tmp_path / 't.yml', test)], cwd=tmp_path, check=False)
    assert r.returncode != 0 and 'trained with other network options' in r.stderr
    assert 'shape differs: conv_first.weight: checkpoint (16, 3, 3, 3) vs network (24, 3, 3, 3)' in r.stderr
    assert 'Traceback' not in r.stderr


def test_disk_full_stops_cleanly_and_resumes(tiny_root, tmp_path):
    from test_priors import _images_only
    root = _images_only(tiny_root, tmp_path)
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
        cmd = [PY, f'{ROOT}/datasets_prep/extract_priors.py', '--root', str(mnt / 'd'), '--splits', 'val', '--scales', '8',
               '--text-dir', f'{DEMO}/text', '--priors', 'description', 'mask']
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert r.returncode != 0 and 'disk full?' in r.stderr and 'Traceback' not in r.stderr, r.stderr[-2000:]
        pdir = mnt / 'd' / 'val' / 'priors_x8'
        assert not (pdir / 'description.lmdb').exists()  # nothing that reads as valid
        subprocess.run(['mount', '-o', 'remount,size=64m', str(mnt)], check=True)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
        assert validate(str(mnt / 'd'), splits=['val'], verbose=False) == []
        for p in ('description', 'mask'):
            a, b = Store(prior_path(tiny_root, 'val', 8, p)), Store(prior_path(str(mnt / 'd'), 'val', 8, p))
            assert [a.get_bytes(k) for k in a.keys()] == [b.get_bytes(k) for k in b.keys()]
    finally:
        subprocess.run(['umount', '-l', str(mnt)])
