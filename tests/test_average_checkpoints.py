"""benchmarks/average_checkpoints.py: a run's weights averaged over a window of checkpoints."""
import os
import subprocess
import sys

import pytest
import torch

from llvfsr_plugin.errors import UserError

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(HERE, 'benchmarks'))
from average_checkpoints import average  # noqa: E402


def save(path, it, **extra):
    """A BasicSR-style network checkpoint whose weight is `it` everywhere; an integer buffer and a config key."""
    torch.save({'params': {'w': torch.full((2, 2), float(it)), 'steps': torch.tensor(it)}, 'llvfsr_config': {'it': it},
                **extra}, path)
    return str(path)


def test_average_is_the_mean_of_the_floats_and_keeps_the_last_checkpoint_s_rest(tmp_path):
    paths = [save(tmp_path / f'net_g_{i}.pth', i) for i in (100, 200, 600)]
    ck = average(paths)
    assert torch.equal(ck['params']['w'], torch.full((2, 2), 300.0)) and ck['params']['w'].dtype == torch.float32
    assert ck['params']['steps'].item() == 600 and ck['llvfsr_config'] == {'it': 600}  # not averaged: the last's
    other = str(tmp_path / 'other.pth')
    torch.save({'params': {'w': torch.zeros(3)}}, other)
    with pytest.raises(UserError, match='other.pth: not the network of .*net_g_100.pth'):
        average(paths + [other])


def test_cli_writes_a_loadable_checkpoint_and_names_a_missing_one(tmp_path):
    for i in (100, 200, 300):
        save(tmp_path / f'net_g_{i}.pth', i)
    script = os.path.join(HERE, 'benchmarks', 'average_checkpoints.py')
    env = dict(os.environ, PYTHONPATH=HERE)
    out = tmp_path / 'avg' / 'net_g_latest.pth'
    ok = subprocess.run([sys.executable, script, '--models', str(tmp_path), '--first', '100', '--last', '300',
                         '--out', str(out)], capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stderr
    assert torch.equal(torch.load(out, weights_only=True)['params']['w'], torch.full((2, 2), 200.0))
    bad = subprocess.run([sys.executable, script, '--models', str(tmp_path), '--first', '100', '--last', '400',
                          '--out', str(out)], capture_output=True, text=True, env=env)
    assert bad.returncode == 1 and 'Traceback' not in bad.stderr
    assert bad.stderr.strip() == (f'average_checkpoints: error: 1 of the 4 checkpoints are not there (e.g. '
                                  f'{tmp_path}/net_g_400.pth); the run saves one every save_checkpoint_freq '
                                  'iterations: choose a window and a step that match them')
