"""Bad input and faults across prep, train, infer and validate: every case ends with one line naming the
file / key / option and what to do (no traceback, no signal death), and nothing the user had is lost or
overwritten. One test per class of fault (README "Reliability")."""
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time

import numpy as np
import pytest
import torch
from PIL import Image

from llvfsr_plugin.prep.layout import hr_path, lr_path, prior_path, splits_json
from llvfsr_plugin.prep.pipeline import validate
from llvfsr_plugin.priors.store import Store

from helpers import DEMO, PY, ROOT, dataset_opt, demo_keys, run_cli, small_net, train_opt, write_yaml

MAKE = f'{ROOT}/datasets_prep/make_dataset.py'


def _run(args, **kw):
    return subprocess.run([PY, *args], capture_output=True, text=True, timeout=600, **kw)


def _one_line_error(r, *expect):
    assert r.returncode not in (0,) and r.returncode > 0, (r.returncode, r.stderr[-2000:])  # no signal death
    assert 'Traceback' not in r.stderr, r.stderr[-3000:]
    for e in expect:
        assert e in r.stderr, (e, r.stderr[-2000:])


def _digest(folder):
    h = hashlib.sha256()
    for dirpath, _, files in sorted(os.walk(folder)):
        for f in sorted(files):
            h.update(f.encode() + open(os.path.join(dirpath, f), 'rb').read())
    return h.hexdigest()


def _faces(tmp_path, n=4, split='train'):
    src = tmp_path / 'faces'
    src.mkdir(exist_ok=True)
    for k in demo_keys(split, n):
        shutil.copy(f'{DEMO}/images/{k}.jpg', src / f'{k}.jpg')
    return src


# ------------------------------------------------------------------------------- truncated / foreign LMDBs
@pytest.mark.parametrize('case, expect', [('truncated', 'is truncated'), ('empty', 'is empty'),
                                          ('random', 'is not an LMDB file')])
def test_broken_lmdb_file_is_named_not_a_bus_error(tiny_root, tmp_path, case, expect):
    root = str(tmp_path / 'd')
    shutil.copytree(tiny_root, root)
    f = os.path.join(prior_path(root, 'val', 8, 'mask'), 'data.mdb')
    data = open(f, 'rb').read()
    open(f, 'wb').write({'truncated': data[:len(data) // 2], 'empty': b'', 'random': os.urandom(len(data))}[case])
    r = _run([f'{ROOT}/datasets_prep/validate.py', '--root', root])
    assert r.returncode == 1 and expect in r.stdout and 'extract_priors.py --root' in r.stdout, r.stdout[-2000:]
    opt = train_opt(root, 'broken', iters=1)
    r = run_cli(['train', '-opt', write_yaml(tmp_path / 't.yml', opt)], cwd=tmp_path, check=False)
    _one_line_error(r, 'basicsr: error:', 'mask.lmdb: data.mdb', expect)


# ------------------------------------------------------------------------------------------- EXIF
def _exif_rotated(src, dst):
    """The face stored sideways with EXIF orientation 6 (rotate 90 degrees clockwise to show), as phones do."""
    img = Image.open(src)
    exif = Image.Exif()
    exif[0x0112] = 6
    img.transpose(Image.Transpose.ROTATE_90).save(dst, quality=95, exif=exif)


def test_exif_orientation_applied_where_images_enter(tmp_path):
    k = demo_keys('train', 1)[0]
    src = tmp_path / 'faces'
    src.mkdir()
    _exif_rotated(f'{DEMO}/images/{k}.jpg', src / f'{k}.jpg')
    raw = np.asarray(Image.open(src / f'{k}.jpg').convert('RGB'))  # the stored (sideways) pixels
    r = _run([MAKE, '--hr-dir', str(src), '--out', str(tmp_path / 'd'), '--scales', '8', '--hr-size', '0',
              '--split-json', _split_file(tmp_path, {'train': [k]})])
    assert r.returncode == 0, r.stderr[-2000:]
    from llvfsr_plugin.prep.images import decode_png
    stored = decode_png(Store(hr_path(str(tmp_path / 'd'), 'train')).get_bytes(k))
    np.testing.assert_array_equal(stored, np.rot90(raw, -1))  # upright, as every viewer shows it
    upright = np.asarray(Image.open(f'{DEMO}/images/{k}.jpg').convert('RGB')).astype(float)
    assert np.abs(stored - upright).mean() < 6  # the same face (JPEG re-encoding aside), not sideways


def _split_file(tmp_path, splits):
    p = tmp_path / f'split_{len(os.listdir(tmp_path))}.json'
    p.write_text(json.dumps(splits))
    return str(p)


# ----------------------------------------------------------------------------- overwritten / dropped files
@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    from basicsr.archs import build_network
    d = tmp_path_factory.mktemp('ckpt')
    torch.manual_seed(0)
    torch.save({'params': build_network(small_net()).state_dict()}, d / 'net.pth')
    write_yaml(d / 'opt.yml', {'name': 'inf', 'scale': 8, 'network_g': small_net(),
                               'path': {'pretrain_network_g': str(d / 'net.pth')}})
    return d


def _infer(checkpoint, inp, out, *extra):
    return _run(['-m', 'llvfsr_plugin.infer', '-opt', str(checkpoint / 'opt.yml'), '--input', str(inp), '--out',
                 str(out), '--from-hr', '--lr-size', '16', '--text-dir', f'{DEMO}/text', *extra])


def test_inputs_are_never_overwritten_nor_merged(checkpoint, tmp_path):
    inp = _faces(tmp_path, 2, 'val')
    before = _digest(inp)
    _one_line_error(_infer(checkpoint, inp, inp), 'llvfsr-infer: error:', 'is an input folder or inside it')
    _one_line_error(_infer(checkpoint, inp, inp / 'sub'), 'inside it')
    k = demo_keys('val', 1)[0]
    Image.open(inp / f'{k}.jpg').save(inp / f'{k}.png')  # face.jpg + face.png: one key, two files
    _one_line_error(_infer(checkpoint, inp, tmp_path / 'out'), f'{k}.jpg', f'{k}.png', 'rename or remove')
    r = _run([MAKE, '--hr-dir', str(inp), '--out', str(tmp_path / 'd'), '--scales', '8'])
    _one_line_error(r, 'make_dataset.py: error:', f'{k}.jpg', f'{k}.png')
    os.remove(inp / f'{k}.png')
    assert _digest(inp) == before
    (inp / 'broken.jpg').write_bytes(b'not a jpeg')
    out = tmp_path / 'out'
    r = _infer(checkpoint, inp, out)
    assert r.returncode == 0 and 'broken.jpg' in (out / 'skipped.txt').read_text(), r.stderr[-2000:]
    os.remove(inp / 'broken.jpg')
    r = _infer(checkpoint, inp, out)
    assert r.returncode == 0 and not (out / 'skipped.txt').exists()  # no stale report of an earlier run
    _one_line_error(_infer(checkpoint, tmp_path / 'nowhere', out), 'no such file or folder')
    (tmp_path / 'afile').write_text('x')
    _one_line_error(_infer(checkpoint, inp, tmp_path / 'afile'), '--out', 'is a file')


# ------------------------------------------------------------------------------ maintenance flags, locks
def test_overwrite_splits_and_lock_keep_finished_data(tmp_path):
    src = _faces(tmp_path, 3, 'train')
    val = demo_keys('val', 1)[0]
    shutil.copy(f'{DEMO}/images/{val}.jpg', src / f'{val}.jpg')
    train = demo_keys('train', 3)
    split = _split_file(tmp_path, {'train': train, 'val': [val]})
    root = str(tmp_path / 'd')
    base = [MAKE, '--hr-dir', str(src), '--out', root, '--scales', '8', '--hr-size', '64', '--split-json', split]
    assert _run(base).returncode == 0
    old = {k: Store(hr_path(root, 'train')).get_bytes(k) for k in train}
    # --overwrite with a bad file: the rebuild fails, the finished store is still there, unchanged
    src2 = tmp_path / 'faces2'
    shutil.copytree(src, src2)
    (src2 / f'{train[1]}.jpg').write_bytes(open(src2 / f'{train[1]}.jpg', 'rb').read()[:3000])
    r = _run([*base[:2], str(src2), *base[3:], '--overwrite'])
    _one_line_error(r, 'make_dataset.py: error:', f'{train[1]}.jpg', 'truncated')
    assert {k: Store(hr_path(root, 'train')).get_bytes(k) for k in train} == old
    # --splits val on a finished dataset: train stays in splits.json
    assert _run(base + ['--splits', 'val']).returncode == 0
    assert json.load(open(splits_json(root))) == {'train': train, 'val': [val]}
    assert validate(root, verbose=False) == []
    # a second prep process on the same root: one line, nothing touched
    with open(os.path.join(root, '.prep.lock'), 'a+') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        r = _run(base + ['--overwrite'])
    _one_line_error(r, 'another prep process')
    assert {k: Store(hr_path(root, 'train')).get_bytes(k) for k in train} == old


# ----------------------------------------------------------------------------- silently wrong training data
def test_stores_of_other_data_and_leaky_splits_are_refused(tiny_root, tmp_path):
    from llvfsr_plugin.data.prior_paired_dataset import PriorPairedDataset
    from llvfsr_plugin.errors import BadText, OptionError
    from llvfsr_plugin.priors.extractors.text_extractors import read_text_file
    from llvfsr_plugin.priors.store import content_digest
    lr = Store(lr_path(tiny_root, 'val', 8))
    assert lr.meta['content_sha256'] == content_digest((k, lr.get_bytes(k)) for k in lr.keys())
    assert lr.meta['hr_sha256'] == Store(hr_path(tiny_root, 'val')).meta['content_sha256']
    assert Store(prior_path(tiny_root, 'val', 8, 'mask')).meta['lr_sha256'] == lr.meta['content_sha256']
    # another dataset's mask store, same keys: its LR images were other ones
    root = str(tmp_path / 'd')
    shutil.copytree(tiny_root, root)
    other = str(tmp_path / 'other')
    os.makedirs(other)
    from llvfsr_plugin.prep.pipeline import extract_priors, make_image_lmdbs
    from llvfsr_plugin.priors.cli_args import default_extractors
    make_image_lmdbs({'val': [(k, f'{DEMO}/images/{k}.jpg') for k in demo_keys('val', 4)]}, other, [8], hr_size=256)
    extract_priors(other, ['val'], [8], default_extractors(None, ['mask']))
    shutil.rmtree(prior_path(root, 'val', 8, 'mask'))
    shutil.copytree(prior_path(other, 'val', 8, 'mask'), prior_path(root, 'val', 8, 'mask'))
    with pytest.raises(OptionError, match=r'mask.lmdb was not made from .*lr_x8.lmdb'):
        PriorPairedDataset(dict(dataset_opt(root, 'val'), phase='val', scale=8))
    assert any('was not made from' in p for p in validate(root, verbose=False))
    # a split with a duplicate row and a key in train and val
    k = demo_keys('train', 2)
    split = _split_file(tmp_path, {'train': [k[0], k[0], k[1]], 'val': [k[1]]})
    r = _run([MAKE, '--hr-dir', f'{DEMO}/images', '--out', str(tmp_path / 'x'), '--scales', '8', '--split-json', split])
    _one_line_error(r, 'more than once', 'more than one split (a leak)')
    assert not os.path.exists(tmp_path / 'x' / 'train')
    (tmp_path / 'nul.txt').write_bytes(b'\x00\x00\x00\n')
    with pytest.raises(BadText, match='NUL bytes'):
        read_text_file(str(tmp_path / 'nul.txt'))


# ------------------------------------------------------------------------- options, checkpoints, Ctrl-C
@pytest.mark.parametrize('where, value, expect', [
    (('datasets', 'train', 'batch_size_per_gpu'), 0, 'datasets.train.batch_size_per_gpu must be >= 1, got 0'),
    (('train', 'optim_g', 'lr'), -2e-4, 'train.optim_g.lr must be > 0, got -0.0002'),
    (('scale',), 'eight', "scale must be a whole number, got 'eight'"),
    (('val', 'val_freq'), 0, 'val.val_freq must be >= 1, got 0'),
    (('path', 'pretrain_network_g'), 'nope.pth', 'path.pretrain_network_g not found: nope.pth'),
])
def test_bad_option_values_fail_in_one_line(tiny_root, tmp_path, where, value, expect):
    opt = train_opt(tiny_root, 'bad_value')
    d = opt
    for k in where[:-1]:
        d = d[k]
    d[where[-1]] = value
    r = run_cli(['train', '-opt', write_yaml(tmp_path / 't.yml', opt)], cwd=tmp_path, check=False)
    _one_line_error(r, expect)
    assert not (tmp_path / 'experiments').exists()  # stopped before BasicSR made anything


def test_bad_numbers_and_paths_on_the_command_line(tmp_path):
    for flag, expect in (('--scales', 'must be >= 1, got 0'), ('--hr-size', 'must be >= 0, got -1')):
        r = _run([MAKE, '--hr-dir', f'{DEMO}/images', '--out', str(tmp_path / 'd'), flag, '0' if flag == '--scales'
                  else '-1'])
        assert r.returncode == 2 and expect in r.stderr and 'Traceback' not in r.stderr, r.stderr
    _one_line_error(_run([MAKE, '--hr-dir', str(tmp_path / 'none'), '--out', str(tmp_path / 'd')]),
                    'image folder not found')


def test_broken_checkpoints_and_resume_states(tiny_root, checkpoint, tmp_path):
    inp = _faces(tmp_path, 1, 'val')
    bad = tmp_path / 'bad.pth'
    bad.write_bytes(open(checkpoint / 'net.pth', 'rb').read()[:2000])
    for ckpt, expect in ((bad, 'not a readable checkpoint'), (tmp_path / 'none.pth', 'checkpoint not found')):
        _one_line_error(_infer(checkpoint, inp, tmp_path / 'o', '--ckpt', str(ckpt)), str(ckpt), expect)
    # a truncated newest training state: resume falls back to the one before, saying so
    opt = train_opt(tiny_root, 'states', iters=4)
    opt['val']['val_freq'] = 10 ** 6
    path = write_yaml(tmp_path / 's.yml', opt)
    run_cli(['train', '-opt', path], cwd=tmp_path)
    states = tmp_path / 'experiments' / 'states' / 'training_states'
    (states / '4.state').write_bytes((states / '4.state').read_bytes()[:500])
    opt['train']['total_iter'] = 6
    write_yaml(tmp_path / 's.yml', opt)
    r = run_cli(['train', '-opt', path, '--auto_resume'], cwd=tmp_path)
    out = r.stdout + r.stderr
    assert '4.state: not a readable checkpoint' in out and 'resuming from' in out and '2.state' in out, out[-3000:]
    assert (tmp_path / 'experiments' / 'states' / 'models' / 'net_g_6.pth').is_file()


def test_ctrl_c_is_one_line_and_resumable(tmp_path):
    src = tmp_path / 'faces'
    shutil.copytree(f'{DEMO}/images', src)
    cmd = [PY, MAKE, '--hr-dir', str(src), '--out', str(tmp_path / 'd'), '--scales', '8', '--hr-size', '256',
           '--workers', '1']
    # SIGINT as a terminal delivers it: a test run started in the background (`cmd &`) inherits SIGINT ignored,
    # and a Python started that way never raises KeyboardInterrupt (seen: exit 0 in a backgrounded CI run)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while not list((tmp_path / 'd').glob('*/*.partial/data.mdb')) and time.time() < deadline:
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130 and 'interrupted' in err and 'Traceback' not in err, err[-2000:]
    assert subprocess.run(cmd, capture_output=True).returncode == 0  # the rerun finishes
    assert validate(str(tmp_path / 'd'), verbose=False) == []
