"""The option builder and the shipped option files: valid, up to date, baselines that build."""
import filecmp
import glob
import os
import shutil
import subprocess
import sys

import pytest
import torch
import yaml

from basicsr.archs import build_network
from llvfsr_plugin.errors import OptionError
from llvfsr_plugin.options import check_options

from helpers import ROOT


def test_shipped_option_files_are_valid_and_up_to_date(tmp_path):
    """Every option file passes the start-up check; the generated ones equal a fresh generation."""
    files = sorted(glob.glob(os.path.join(ROOT, 'options', '**', '*.yml'), recursive=True))
    assert len(files) >= 28
    for f in files:
        check_options(f, check_paths=False)  # the data and checkpoints they name are not on this machine
    copy = tmp_path / 'options'
    shutil.copytree(os.path.join(ROOT, 'options'), copy)
    subprocess.run([sys.executable, str(copy / 'generate.py')], check=True)
    cmp = filecmp.dircmp(os.path.join(ROOT, 'options'), copy)
    stale = cmp.diff_files + [f'{d}/{x}' for d, sub in cmp.subdirs.items() for x in sub.diff_files]
    assert not stale, f'run `python options/generate.py`: stale {stale}'


@pytest.mark.parametrize('arch', ['EDSR', 'RCAN', 'SwinIR'])
@pytest.mark.parametrize('scale', [8, 16])
def test_baseline_networks_build_at_fsr_scales(arch, scale):
    opt = yaml.safe_load(open(f'{ROOT}/options/baselines/train_x{scale}_{arch}.yml'))['network_g']
    if arch == 'RCAN':
        opt.update(num_group=1, num_block=1)  # the shape contract, not the size, is under test
    if arch == 'SwinIR':
        opt.update(depths=[1], num_heads=[2], embed_dim=16)
    net = build_network(opt).eval()
    with torch.no_grad():
        assert net(torch.rand(1, 3, 256 // scale, 256 // scale)).shape == (1, 3, 256, 256)



def test_check_options_refuses_network_scale_other_than_data_scale(tmp_path):
    from helpers import small_net, train_opt, write_yaml
    opt = train_opt('/nowhere', 'scale', network=small_net(scale=16))
    with pytest.raises(OptionError, match=r'network_g.scale is 16 but scale is 8'):
        check_options(write_yaml(tmp_path / 'o.yml', opt))


def test_builder_writes_block_style_yaml(tmp_path):
    from llvfsr_plugin import options as O
    path = O.dump_yaml(tmp_path / 'o.yml', O.test_opt(O.train_opt('n', {'val': O.dataset_opt('d', 'val', 8, ['mask'])},
                                                                   O.network_opt(['mask']), 10)), header='a\nb')
    text = open(path).read()
    assert text.startswith('# a\n# b\n') and '{' not in text and '[' not in text
    assert yaml.safe_load(text)['datasets']['test_1']['prior_roots'] == {'mask': 'd/val/priors_x8/mask.lmdb'}
