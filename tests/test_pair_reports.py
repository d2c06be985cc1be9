"""benchmarks/pair_reports.py: paired per-face differences between methods of two reports."""
import csv
import os
import subprocess
import sys

import pytest

from llvfsr_plugin.errors import UserError

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(HERE, 'benchmarks'))
from pair_reports import pair, read_method  # noqa: E402


def write_report(path, rows):
    """A per_image.csv as llvfsr-report writes it: key, method, then the metrics."""
    with open(path, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['key', 'method', 'psnr', 'face_psnr'])
        w.writerows(rows)
    return str(path)


FACES = [('1000', 24.0, 23.0), ('1051', 26.5, 25.0), ('1100', 22.0, 21.5), ('1200', 25.0, 24.0)]


@pytest.fixture
def reports(tmp_path):
    # A: "Row" lists faces in one order; B: the same faces in reverse, "Row" 0.5 dB lower in PSNR on every face,
    # face PSNR equal but on the first face (+1 dB there), and a second method with the same scores as A's Row
    a = write_report(tmp_path / 'a.csv', [(k, 'Bicubic', p - 2, f - 2) for k, p, f in FACES]
                     + [(k, 'Row', p, f) for k, p, f in FACES])
    b = write_report(tmp_path / 'b.csv', [(k, 'Row', p - 0.5, f - (1.0 if k == '1000' else 0.0))
                                          for k, p, f in reversed(FACES)]
                     + [(k, 'Copy', p, f) for k, p, f in reversed(FACES)])
    return a, b


def test_pair_matches_faces_by_key_not_by_order(reports):
    a, b = reports
    d = pair(read_method(a, 'Row'), read_method(b, 'Row'))
    assert d['psnr']['mean'] == pytest.approx(0.5) and d['psnr']['lo'] == pytest.approx(0.5)
    assert d['psnr']['hi'] == pytest.approx(0.5) and d['psnr']['better'] == 1.0 and d['psnr']['n'] == 4
    assert d['face_psnr']['mean'] == pytest.approx(0.25) and d['face_psnr']['max_abs'] == pytest.approx(1.0)
    assert d['face_psnr']['better'] == 0.25


def test_pair_of_a_reproduced_run_is_zero_on_every_face(reports):
    a, b = reports
    d = pair(read_method(a, 'Row'), read_method(b, 'Copy'), ['psnr'])
    assert list(d) == ['psnr'] and d['psnr']['max_abs'] == 0.0 and d['psnr']['mean'] == 0.0


def test_pair_refuses_what_it_cannot_pair(reports, tmp_path):
    a, b = reports
    with pytest.raises(UserError, match=r"no method 'Model 1'; it holds: 'Bicubic', 'Row'"):
        read_method(a, 'Model 1')
    with pytest.raises(UserError, match='no such file'):
        read_method(str(tmp_path / 'none.csv'), 'Row')
    fewer = write_report(tmp_path / 'c.csv', [(k, 'Row', p, f) for k, p, f in FACES[:3]])
    with pytest.raises(UserError, match=r"1 only in A \(e.g. \['1200'\]\), 0 only in B"):
        pair(read_method(a, 'Row'), read_method(fewer, 'Row'))
    with pytest.raises(UserError, match=r"metrics \['lpips'\] are not in both reports"):
        pair(read_method(a, 'Row'), read_method(b, 'Row'), ['lpips'])


def test_cli_prints_the_table_and_errors_in_one_line(reports, tmp_path):
    a, b = reports
    env = dict(os.environ, PYTHONPATH=HERE)
    script = os.path.join(HERE, 'benchmarks', 'pair_reports.py')
    ok = subprocess.run([sys.executable, script, '--a', a, 'Row', '--b', b, 'Row', '--json', str(tmp_path / 'd.json')],
                        capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stderr
    assert '| psnr | +0.5000 [+0.5000, +0.5000] | 0.5 | 100% | 4 |' in ok.stdout
    assert os.path.isfile(tmp_path / 'd.json')
    bad = subprocess.run([sys.executable, script, '--a', a, 'Nope', '--b', b, 'Row'], capture_output=True, text=True,
                         env=env)
    assert bad.returncode == 1 and 'Traceback' not in bad.stderr
    assert bad.stderr.strip().splitlines() == [f"pair_reports: error: {a}: no method 'Nope'; it holds: 'Bicubic', "
                                               "'Row'"]
