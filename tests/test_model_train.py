"""LLVFSRModel through BasicSR's own pipelines: train (LLV-FSR, Model 1), test, start-up errors."""
import glob
import re

import pytest

from conftest import dataset_opt, run_cli, small_net, train_opt, write_yaml


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
        'lpips': {'type': 'calculate_lpips', 'random_backbone': True, 'better': 'lower'},  # no AlexNet weights here
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
    (('network_g', 'type', 'LLVFSRArc'), "network_g.type 'LLVFSRArc' is not a registered BasicSR arch. Did you mean 'LLVFSRArch'?"),
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


def test_shipped_option_files_are_valid_and_up_to_date(tmp_path):
    """Every option file passes the start-up check; the generated ones equal a fresh generation."""
    import filecmp
    import os
    import shutil
    import subprocess
    import sys

    from conftest import ROOT
    from llvfsr_plugin.options import check_options
    files = sorted(glob.glob(os.path.join(ROOT, 'options', '**', '*.yml'), recursive=True))
    assert len(files) >= 28
    for f in files:
        check_options(f)
    copy = tmp_path / 'options'
    shutil.copytree(os.path.join(ROOT, 'options'), copy)
    subprocess.run([sys.executable, str(copy / 'generate.py')], check=True)
    cmp = filecmp.dircmp(os.path.join(ROOT, 'options'), copy)
    stale = cmp.diff_files + [f'{d}/{x}' for d, sub in cmp.subdirs.items() for x in sub.diff_files]
    assert not stale, f'run `python options/generate.py`: stale {stale}'


@pytest.mark.parametrize('arch', ['EDSR', 'RCAN', 'SwinIR'])
@pytest.mark.parametrize('scale', [8, 16])
def test_baseline_networks_build_at_fsr_scales(arch, scale):
    import torch
    import yaml

    from basicsr.archs import build_network
    from conftest import ROOT
    opt = yaml.safe_load(open(f'{ROOT}/options/baselines/train_x{scale}_{arch}.yml'))['network_g']
    if arch == 'RCAN':
        opt.update(num_group=1, num_block=1)  # the shape contract, not the size, is under test
    if arch == 'SwinIR':
        opt.update(depths=[1], num_heads=[2], embed_dim=16)
    net = build_network(opt).eval()
    with torch.no_grad():
        assert net(torch.rand(1, 3, 256 // scale, 256 // scale)).shape == (1, 3, 256, 256)
