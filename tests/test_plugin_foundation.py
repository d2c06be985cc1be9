"""Plugin foundation: registries, compat patches, the `basicsr` CLI, resume, torchrun on CPU, spawned workers."""
import glob
import importlib
import os
import re
import subprocess
import sys


from conftest import ROOT, dataset_opt, run_cli, train_opt, write_yaml


def test_registries_filled_and_reimport_harmless():
    import llvfsr_plugin
    from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY
    assert 'LLVFSRArch' in ARCH_REGISTRY
    assert 'PriorPairedDataset' in DATASET_REGISTRY
    assert 'LLVFSRModel' in MODEL_REGISTRY
    assert 'calculate_psnr' in METRIC_REGISTRY  # BasicSR's own stay
    importlib.reload(llvfsr_plugin)  # applying the patches again must be a no-op, not a duplicate registration
    import llvfsr_plugin.archs.llvfsr_arch  # noqa: F401
    assert ARCH_REGISTRY.get('LLVFSRArch') is llvfsr_plugin.archs.llvfsr_arch.LLVFSRArch


def test_compat_patches_applied():
    from llvfsr_plugin import compat
    import torchvision.transforms.functional_tensor as ft  # the removed module, aliased
    assert callable(ft.rgb_to_grayscale)
    import basicsr.data.degradations  # noqa: F401  (imported it at module level: works)
    assert {'dist', 'resume', 'collate'} <= set(compat.applied())
    assert compat.normalize_argv(['--local-rank=1', '-opt', 'x']) == ['--local_rank=1', '-opt', 'x']


def test_cli_help_and_bad_input(tmp_path):
    r = run_cli(['--help'], cwd=tmp_path)
    assert 'basicsr {train,test}' in r.stdout and '--auto_resume' in r.stdout and 'torchrun' in r.stdout
    r = run_cli(['train', '-opt', 'nope.yml'], cwd=tmp_path, check=False)
    assert r.returncode != 0 and 'option file not found: nope.yml' in r.stderr
    r = run_cli(['fly'], cwd=tmp_path, check=False)
    assert r.returncode != 0 and 'unknown subcommand' in r.stderr


def test_console_script_installed():
    exe = os.path.join(os.path.dirname(sys.executable), 'basicsr')
    r = subprocess.run([exe, '--help'], capture_output=True, text=True)
    assert r.returncode == 0 and 'train_pipeline' in r.stdout


def _baseline_opt(root, name, iters=4):
    """BasicSR's own EDSR on BasicSR's own PairedImageDataset, reading our LMDBs unchanged."""
    ds = {s: {k: v for k, v in dataset_opt(root, s, priors=()).items() if k not in ('priors', 'prior_roots')}
          for s in ('train', 'val')}
    for s in ds:
        ds[s]['type'] = 'PairedImageDataset'
    ds['train']['gt_size'] = 128
    net = {'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 16, 'num_block': 2, 'upscale': 8,
           'res_scale': 1, 'img_range': 255., 'rgb_mean': [0.4488, 0.4371, 0.4040]}
    return train_opt(root, name, network=net, datasets=ds, iters=iters, model_type='SRModel')


def test_basicsr_train_then_test_from_any_directory(tiny_root, tmp_path):
    opt = write_yaml(tmp_path / 'edsr.yml', _baseline_opt(tiny_root, 'edsr_tiny'))
    work = tmp_path / 'elsewhere'
    work.mkdir()
    r = run_cli(['train', '-opt', opt], cwd=work)
    exp = work / 'experiments' / 'edsr_tiny'
    assert (exp / 'models' / 'net_g_4.pth').is_file() and (exp / 'models' / 'net_g_latest.pth').is_file()
    assert glob.glob(str(exp / 'train_edsr_tiny_*.log'))
    assert 'End of training' in r.stderr + r.stdout
    test = _baseline_opt(tiny_root, 'edsr_tiny')
    test['datasets'] = {'test_1': test['datasets']['val']}
    test['path']['pretrain_network_g'] = str(exp / 'models' / 'net_g_latest.pth')
    test['val']['suffix'] = None
    r = run_cli(['test', '-opt', write_yaml(tmp_path / 'edsr_test.yml', test)], cwd=work)
    log = open(glob.glob(str(work / 'results' / 'edsr_tiny' / 'test_edsr_tiny_*.log'))[0]).read()
    psnr = float(re.search(r'# psnr: ([0-9.]+)', log).group(1))
    assert 5 < psnr < 60


def _state_iters(exp):
    return sorted(int(os.path.basename(p).split('.')[0]) for p in glob.glob(str(exp / 'training_states' / '*.state')))


def test_auto_resume_continues_on_cpu(tiny_root, tmp_path):
    opt = _baseline_opt(tiny_root, 'resume_tiny', iters=4)
    path = write_yaml(tmp_path / 'r.yml', opt)
    run_cli(['train', '-opt', path], cwd=tmp_path)
    exp = tmp_path / 'experiments' / 'resume_tiny'
    assert _state_iters(exp) == [2, 4]
    opt['train']['total_iter'] = 6
    write_yaml(tmp_path / 'r.yml', opt)
    r = run_cli(['train', '-opt', path, '--auto_resume'], cwd=tmp_path)
    out = r.stdout + r.stderr
    assert 'Resuming training from epoch' in out and 'iter: 4' in out
    assert _state_iters(exp) == [2, 4, 6]
    assert not glob.glob(str(tmp_path / 'experiments' / 'resume_tiny_archived_*'))  # resumed, not restarted


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
