"""llvfsr_plugin.cli and the training lock it holds: the experiment name BasicSR will use, one training per
experiment."""
import fcntl
import os

import pytest
import yaml

from llvfsr_plugin.cli import experiment_name
from llvfsr_plugin.errors import TrainBusy
from llvfsr_plugin.training import experiment_lock


@pytest.mark.parametrize('extra,name', [
    ([], 'run'),
    (['--auto_resume'], 'run'),
    (['--force_yml', 'train:total_iter=4', 'name=other', '--auto_resume'], 'other'),
    (['--force_yml', 'train:total_iter=4', '--debug'], 'debug_run'),
    (['--debug', '--force_yml', 'name=debug_x'], 'debug_x'),  # BasicSR adds no second prefix
])
def test_experiment_name_is_basicsr_s(tmp_path, extra, name):
    opt = tmp_path / 'o.yml'
    opt.write_text(yaml.safe_dump({'name': 'run', 'train': {'total_iter': 8}}))
    assert experiment_name(['-opt', str(opt), *extra]) == name


def test_a_second_training_of_one_experiment_stops_at_once(tmp_path):
    os.makedirs(tmp_path / 'experiments')
    holder = open(tmp_path / 'experiments' / '.run.lock', 'a+')
    holder.write('4242')
    holder.flush()
    fcntl.flock(holder, fcntl.LOCK_EX)  # another open file: to flock, another process
    with pytest.raises(TrainBusy, match=r'experiments/run is being trained by another process \(pid 4242\); .*'
                                        r'--auto_resume, or give this run another `name`'):
        with experiment_lock(str(tmp_path), 'run'):
            pytest.fail('entered a held lock')
    with experiment_lock(str(tmp_path), 'other'):  # another experiment in the same folder trains
        assert open(tmp_path / 'experiments' / '.other.lock').read() == str(os.getpid())
    fcntl.flock(holder, fcntl.LOCK_UN)
    with experiment_lock(str(tmp_path), 'run'):  # the first ended: this one trains and holds it
        assert open(tmp_path / 'experiments' / '.run.lock').read() == str(os.getpid())
        with pytest.raises(TrainBusy):
            with experiment_lock(str(tmp_path), 'run'):
                pass
    holder.close()
