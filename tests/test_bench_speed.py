"""benchmarks/bench_speed.py: the DataLoader step batches real stores (captions of different token counts); the
first-pass end-to-end timing runs both pipelines."""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_loader_speed_batches_text_of_different_lengths(tiny_root):
    # in a subprocess: loader_speed installs the plugin's dataloader into BasicSR, as the `basicsr` CLI does
    code = ('import json, sys; sys.path.insert(0, "benchmarks"); import bench_speed; '
            f'print(json.dumps(bench_speed.loader_speed({tiny_root!r}, [0], seconds=0.5)))')
    r = subprocess.run([sys.executable, '-c', code], cwd=HERE, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=HERE))
    assert r.returncode == 0, r.stderr[-2000:]
    speed = json.loads(r.stdout.strip().splitlines()[-1])
    assert speed['0'] > 0


def test_released_models_end_to_end_run_every_pipeline():
    """The released x8 models end to end on demo faces: LLV-FSR with maps from the LR face and from a first pass
    through the released Model 1, the light and coarse prior tails and the default SFT body on LandmarkNet's maps:
    each runs and is timed (how long is the benchmark's business, not a test's)."""
    code = ('import json, sys; sys.path.insert(0, "benchmarks"); import bench_speed; '
            'print(json.dumps(bench_speed.released_e2e(2, per_round=2)))')
    r = subprocess.run([sys.executable, '-c', code], cwd=HERE, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=HERE, OMP_NUM_THREADS='1'))
    assert r.returncode == 0, r.stderr[-2000:]
    ms = json.loads(r.stdout.strip().splitlines()[-1])
    assert set(ms) == {'LR maps', 'first-pass maps', 'landmark-net light tail', 'landmark-net coarse tail',
                       'landmark-net SFT body (default)'}
    assert all(v > 0 for v in ms.values())
