"""benchmarks/landmark_net_seen.py: LandmarkNet's landmark error on faces it trained on against faces it left out."""
import json
import os
import shutil
import sys

from helpers import DEMO, ROOT, demo_keys

sys.path.insert(0, os.path.join(ROOT, 'benchmarks'))
import landmark_net_seen  # noqa: E402


def test_seen_and_unseen_faces_are_told_apart_and_compared(tmp_path, capsys):
    """The bundled faces are ones the shipped net left out; copies under keys outside its excluded list count as
    faces it may have seen. Every face gets an error per scale, and seen minus each other group an interval."""
    faces = tmp_path / 'faces'
    faces.mkdir()
    for i, k in enumerate(demo_keys('train', 3)):
        shutil.copy(os.path.join(DEMO, 'images', f'{k}.jpg'), faces / f'{k}.jpg')  # unseen
        shutil.copy(os.path.join(DEMO, 'images', f'{k}.jpg'), faces / f'photo{i}.jpg')  # "seen" (not excluded)
    out = tmp_path / 'seen.json'
    landmark_net_seen.main(['--hr-dir', str(faces), '--faces', '3', '--scales', '8', '--out', str(out),
                            '--cache', str(tmp_path / 'labels.npz')])
    r = json.load(open(out))
    assert set(r['groups']) == {'seen', 'unseen'}
    for g in r['groups'].values():
        assert g['of'] == 3 and len(g['x8']) == g['faces'] >= 2 and all(0 < e < 10 for e in g['x8'])
    # the same images under two keys: identical errors, so seen - unseen is 0 within its interval
    d = r['seen_minus']['unseen_x8']
    assert d['lo'] <= 0 <= d['hi'] and abs(d['mean']) < 1e-6
    assert 'x8: seen' in capsys.readouterr().out


def test_a_folder_without_seen_faces_is_reported_not_a_crash(tmp_path, capsys):
    landmark_net_seen.main(['--hr-dir', os.path.join(DEMO, 'images'), '--faces', '2', '--scales', '16',
                            '--cache', str(tmp_path / 'labels.npz'), '--out', str(tmp_path / 'o.json')])
    assert 'no seen faces in' in capsys.readouterr().out
    r = json.load(open(tmp_path / 'o.json'))
    assert set(r['groups']) == {'unseen'} and r['seen_minus'] == {} and len(r['groups']['unseen']['x16']) >= 1
