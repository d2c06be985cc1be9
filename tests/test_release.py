"""Released models: fp16, self-describing, checked against fp32; inference uses the released x8 by default."""
import hashlib
import os

import pytest
import torch

from llvfsr_plugin import release as R
from llvfsr_plugin.errors import CheckpointError
from llvfsr_plugin.utils import checkpoint as C

from helpers import identity_checkpoint


def _trained_like(tmp_path, config=True):
    """A self-describing checkpoint whose reconstructor is not zero (the output depends on every weight)."""
    src = identity_checkpoint(tmp_path, priors=('mask', 'depth'), config=config)
    state = torch.load(src, weights_only=True)
    g = torch.Generator().manual_seed(0)
    state['params'] = {k: v + 0.02 * torch.randn(v.shape, generator=g) if v.is_floating_point() else v
                       for k, v in state['params'].items()}
    torch.save(state, src)
    return src


def test_release_is_fp16_self_describing_and_matches_fp32(tmp_path):
    src, dst = _trained_like(tmp_path), str(tmp_path / 'zoo' / 'm.pth')
    mb, digest, psnr = R.make_release(src, dst, {'iters': 3, 'cpu_hours': 0.01})
    assert digest == hashlib.sha256(open(dst, 'rb').read()).hexdigest()
    assert mb == pytest.approx(os.path.getsize(dst) / 1e6) and 40 < psnr < float('inf')
    rel = torch.load(dst, weights_only=True)
    assert {v.dtype for v in rel['params'].values() if v.is_floating_point()} == {torch.float16}
    assert rel[C.CONFIG_KEY]['release'] == {'iters': 3, 'cpu_hours': 0.01, 'source': os.path.basename(src)}
    assert rel[C.CONFIG_KEY]['network_g'] == torch.load(src, weights_only=True)[C.CONFIG_KEY]['network_g']
    net, config = C.load_model(dst)  # loads into the fp32 network the configuration describes
    assert config['scale'] == 8 and next(net.parameters()).dtype == torch.float32
    assert not os.path.exists(dst + '.tmp')


def test_release_refuses_a_checkpoint_that_does_not_describe_itself(tmp_path, capsys):
    src = _trained_like(tmp_path, config=False)
    with pytest.raises(CheckpointError, match='carries no configuration'):
        R.make_release(src, str(tmp_path / 'm.pth'))
    assert R.main([src, str(tmp_path / 'm.pth')]) == 1
    assert 'llvfsr-release: error:' in capsys.readouterr().err and not os.path.exists(tmp_path / 'm.pth')


def test_no_model_given_means_the_released_x8(monkeypatch, tmp_path):
    assert C.default_model() == C.DEFAULT_MODEL
    net, config = C.load_model(C.default_model())
    assert config['scale'] == 8 and config['release']['iters'] > 0 and set(config['priors']) == {'mask', 'depth'}
    monkeypatch.setattr(C, 'DEFAULT_MODEL', str(tmp_path / 'absent.pth'))
    with pytest.raises(CheckpointError, match='released x8 model is not at .*absent.pth'):
        C.default_model()
