"""benchmarks/prior_sensitivity.py: what a trained network's output owes to its priors, and (--redraw) how it
scores with maps drawn again from its own output and from the HR face."""
import json
import os
import sys

import pytest
import torch

from basicsr.archs import build_network
from basicsr.utils import tensor2img
from llvfsr_plugin.data.prior_paired_dataset import PriorPairedDataset

from helpers import ROOT, awaken, dataset_opt, small_net, write_yaml

sys.path.insert(0, os.path.join(ROOT, 'benchmarks'))
from prior_sensitivity import REDRAWN, MapRedrawer, main  # noqa: E402

MD = ('mask', 'depth')


def test_redrawer_reproduces_the_stored_maps_from_the_lr_face(tiny_root):
    """Given the LR face the store was made from, the redrawer's extractors (rebuilt from the store meta) draw
    the stored maps again, fallback faces included: it is the store's extractor, reading another image."""
    ds = PriorPairedDataset(dict(dataset_opt(tiny_root, 'val', MD), phase='val', scale=8))
    redraw = MapRedrawer(ds)
    assert sorted(redraw.extractors) == sorted(MD)
    for i in range(len(ds)):
        it = ds[i]
        maps = redraw(tensor2img(it['lq']), it['key'])
        assert torch.equal(maps['mask'], it['mask'])
        torch.testing.assert_close(maps['depth'], it['depth'], atol=1e-6, rtol=0)


def sensitivity_run(root, tmp_path, priors, *flags):
    opt = {'scale': 8, 'datasets': {'test': dataset_opt(root, 'val', priors)}, 'network_g': small_net(priors)}
    yml = write_yaml(str(tmp_path / 'test.yml'), opt)
    ckpt = str(tmp_path / 'net_g.pth')
    torch.manual_seed(0)
    torch.save({'params': awaken(build_network(dict(opt['network_g']))).state_dict()}, ckpt)
    out = str(tmp_path / f'sens{"".join(flags)}.json')
    main(['-opt', yml, '--ckpt', ckpt, '--json', out, *flags])
    return json.load(open(out))


def test_redraw_and_face_psnr_conditions(tiny_root, tmp_path):
    plain = sensitivity_run(tiny_root, tmp_path, MD)
    full = sensitivity_run(tiny_root, tmp_path, MD, '--redraw', '--face-psnr')
    assert 'face_psnr' not in plain and not set(REDRAWN) & set(plain['psnr'])
    # the flags add conditions; the others score exactly as without them
    for c, v in plain['per_face_psnr'].items():
        assert full['per_face_psnr'][c] == v
    assert full['keys'] == plain['keys'] and len(full['keys']) == 4
    for c in REDRAWN:
        assert len(full['per_face_psnr'][c]) == 4 and c in full['own_minus'] and c in full['own_minus_face']
    # maps drawn from the HR face are not the stored LR maps: the awakened network answers differently
    assert full['per_face_psnr'][REDRAWN[1]] != full['per_face_psnr']['own priors']
    for c, v in full['per_face_face_psnr'].items():
        assert len(v) == 4 and all(0 < x < 100 for x in v)
    # face-region PSNR is its own score, not the whole image's
    assert full['per_face_face_psnr']['own priors'] != full['per_face_psnr']['own priors']
    assert full['redraw_extractors']['mask']['extractor'] == 'facemesh'
    assert 'first_pass' not in full['redraw_extractors']['mask']


def test_redraw_needs_map_priors(tiny_root, tmp_path):
    with pytest.raises(SystemExit, match='--redraw redraws maps'):
        sensitivity_run(tiny_root, tmp_path, ('caption',), '--redraw')
