"""Training reliability: bit-exact resume after SIGKILL, torchrun on CPU (parity with one process, a dead
rank ends the job), spawned DataLoader workers."""
import glob
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from helpers import PY, ROOT, run_cli, train_opt, write_yaml
from test_cli_train_test import _baseline_opt


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


def test_torchrun_two_cpu_processes(tiny_root, tmp_path):
    opt = _baseline_opt(tiny_root, 'ddp_tiny', iters=4)
    opt['datasets']['train']['batch_size_per_gpu'] = 2
    path = write_yaml(tmp_path / 'ddp.yml', opt)
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', '--master_port=29613',
           '-m', 'llvfsr_plugin', 'train', '-opt', path, '--launcher', 'pytorch']
    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert r.returncode == 0, r.stderr[-3000:]
    exp = tmp_path / 'experiments' / 'ddp_tiny'
    assert sorted(os.listdir(exp / 'models')) == ['net_g_2.pth', 'net_g_4.pth', 'net_g_latest.pth']
    log = open(glob.glob(str(exp / 'train_ddp_tiny_*.log'))[0]).read()
    assert 'World size (gpu number): 2' in log
    assert re.findall(r'iter:\s+4,', log)  # rank 0 logged the full iteration count
    assert len(glob.glob(str(exp / 'train_ddp_tiny_*.log'))) == 1  # one log: only rank 0 writes


def test_shim_holds_in_spawned_dataloader_workers(tiny_root):
    """BasicSR's own dataset, unpickled in a *spawned* worker (the start method `init_dist` sets), imports
    basicsr there, and with it the removed torchvision module: the compat shim must hold in the worker.
    `python -c` has no __main__ file for the worker to re-import, so only the pickle path can save it."""
    code = f'''
import torch, llvfsr_plugin
from llvfsr_plugin import training
training.install()  # as the `basicsr` CLI does, before BasicSR's loader builder is looked up
from basicsr.data import build_dataloader, build_dataset
torch.multiprocessing.set_start_method("spawn")
opt = {{"name": "t", "type": "PairedImageDataset", "phase": "train", "scale": 8, "gt_size": 128,
       "use_hflip": False, "use_rot": False, "batch_size_per_gpu": 2, "num_worker_per_gpu": 1,
       "dataroot_gt": "{tiny_root}/train/hr.lmdb", "dataroot_lq": "{tiny_root}/train/lr_x8.lmdb",
       "io_backend": {{"type": "lmdb"}}}}
dl = build_dataloader(build_dataset(opt), opt, num_gpu=0, dist=False, sampler=None, seed=0)
assert dl.multiprocessing_context is None and torch.multiprocessing.get_start_method() == "spawn"
print("batches", sum(1 for _ in dl))
'''
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'batches 4' in r.stdout

