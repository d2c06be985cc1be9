"""benchmarks/pair_reports.py: paired per-face differences between methods of two reports."""
import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from llvfsr_plugin.errors import UserError
from llvfsr_plugin.priors.store import PriorWriter

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(HERE, 'benchmarks'))
from pair_reports import fallback_flags, interpolate, pair, pair_by_fallback, pair_line, read_method  # noqa: E402


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


def test_interpolate_and_pair_line_give_the_equal_minutes_comparison(reports):
    """A row's scores a fraction of the way between two runs, face by face; paired with the first run it differs by
    that fraction of the two runs' difference (the results scripts' equal-minutes line)."""
    a, b = reports
    lo, hi = read_method(b, 'Row'), read_method(a, 'Row')  # hi = lo + 0.5 dB PSNR on every face
    mid = interpolate(lo, hi, 0.4, ['psnr'])
    assert set(mid) == set(lo) and all(mid[k]['psnr'] == pytest.approx(lo[k]['psnr'] + 0.2) for k in lo)
    assert pair_line('row - lo', mid, lo, ['psnr']) == '  row - lo: psnr +0.200 [+0.200, +0.200]'
    assert interpolate(lo, hi, 0.0, ['psnr', 'face_psnr']) == lo


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


def write_mask_store(path, fallback, keys):
    """A finished mask store over `keys`; the records of `fallback` flagged as the extractor's fallback."""
    w = PriorWriter(str(path), {'prior': 'mask', 'extractor': 'facemesh', 'scale': 16})
    w.put_records([(k, {'mask': np.zeros((8, 8), np.uint8)}, {'source': k, 'fallback': k in fallback})
                   for k in keys])
    w.finalize(keys)
    return str(path)


def test_pair_by_fallback_splits_the_faces_by_the_store_s_flags(reports, tmp_path):
    a, b = reports
    store = write_mask_store(tmp_path / 'mask.lmdb', {'1000'}, [k for k, _, _ in FACES])
    assert fallback_flags(store) == {'1000': True, '1051': False, '1100': False, '1200': False}
    d = pair_by_fallback(read_method(a, 'Row'), read_method(b, 'Row'), fallback_flags(store))
    # face PSNR differs on face 1000 only (+1 dB): all of it in the fallback group
    assert d['found']['face_psnr']['n'] == 3 and d['found']['face_psnr']['mean'] == pytest.approx(0.0)
    assert d['fallback']['face_psnr']['n'] == 1 and d['fallback']['face_psnr']['mean'] == pytest.approx(1.0)
    assert d['found']['psnr']['mean'] == pytest.approx(0.5) == d['fallback']['psnr']['mean']
    none = pair_by_fallback(read_method(a, 'Row'), read_method(b, 'Row'), dict.fromkeys(fallback_flags(store), False))
    assert list(none) == ['found'] and none['found']['psnr']['n'] == 4  # an empty group is left out
    fewer = write_mask_store(tmp_path / 'fewer.lmdb', set(), ['1000', '1051'])
    with pytest.raises(UserError, match=r"no record of 2 of the report's faces \(e.g. \['1100', '1200'\]\)"):
        pair_by_fallback(read_method(a, 'Row'), read_method(b, 'Row'), fallback_flags(fewer))


def test_cli_by_fallback_prints_a_table_per_group(reports, tmp_path):
    a, b = reports
    store = write_mask_store(tmp_path / 'mask.lmdb', {'1000'}, [k for k, _, _ in FACES])
    env = dict(os.environ, PYTHONPATH=HERE)
    script = os.path.join(HERE, 'benchmarks', 'pair_reports.py')
    ok = subprocess.run([sys.executable, script, '--a', a, 'Row', '--b', b, 'Row', '--metrics', 'face_psnr',
                         '--by-fallback', store, '--json', str(tmp_path / 'd.json')], capture_output=True, text=True,
                        env=env)
    assert ok.returncode == 0, ok.stderr
    out = ok.stdout.split(f'found ({store}):')
    assert len(out) == 2 and '| face_psnr | +0.2500 [' in out[0]  # all faces first
    found, fallback = out[1].split(f'fallback ({store}):')
    assert '| face_psnr | +0.0000 [+0.0000, +0.0000] | 0 | 0% | 3 |' in found
    assert '| face_psnr | +1.0000 [+1.0000, +1.0000] | 1 | 100% | 1 |' in fallback
    d = json.load(open(tmp_path / 'd.json'))
    assert d['by_fallback']['store'] == store and d['by_fallback']['fallback']['face_psnr']['n'] == 1
    missing = subprocess.run([sys.executable, script, '--a', a, 'Row', '--b', b, 'Row', '--by-fallback',
                              str(tmp_path / 'none.lmdb')], capture_output=True, text=True, env=env)
    assert missing.returncode == 1 and 'Traceback' not in missing.stderr
    assert missing.stderr.startswith('pair_reports: error: store not found: ')
