"""benchmarks/bench_speed.py: the DataLoader step batches real stores (captions of different token counts)."""
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
