"""The prior contract: one table entry decides a prior's arrays, batch keys, checks and network branch."""
import numpy as np
import pytest
import torch

from basicsr.archs import build_network
from llvfsr_plugin.errors import OptionError, RecordError
from llvfsr_plugin.priors.contract import (
    PAPER_PRIORS,
    PRIORS,
    PriorSpec,
    batch_keys,
    check_arrays,
    check_store_meta,
    collate,
    fake_priors,
    map_array,
    mirror_permutation,
    register_prior,
    rename_legacy,
    to_tensors,
)

from helpers import awaken


@pytest.fixture
def edges():
    """A toy fifth map prior, registered for one test and removed after it."""
    spec = register_prior(PriorSpec('edges', 'map', 'F_E', 'spatial', 'EdgA'))
    yield spec
    PRIORS.pop('edges')


def test_paper_priors_and_their_symbols():
    assert PAPER_PRIORS == ('caption', 'description', 'mask', 'depth')
    assert [(PRIORS[p].symbol, PRIORS[p].branch_name) for p in PAPER_PRIORS] == [
        ('E_C', 'CapA'), ('E_D', 'DesA'), ('F_S', 'SegA'), ('F_D', 'DepA')]
    assert batch_keys(PAPER_PRIORS) == ['caption_tokens', 'caption_token_mask', 'description_tokens',
                                        'description_token_mask', 'mask', 'depth']


def test_a_fifth_prior_is_one_table_entry(edges):
    """Arrays, tensors, collate, checks and the network branch of a new prior all follow from its spec."""
    assert edges.arrays == {'edges': ('float16', 2)} and edges.batch_keys == ['edges']
    arrays = map_array('edges', np.random.rand(32, 32))
    check_arrays('edges', arrays)
    with pytest.raises(RecordError, match="lacks array 'edges'"):
        check_arrays('edges', {'depth': arrays['edges']})
    t = to_tensors('edges', arrays)
    assert t['edges'].shape == (1, 32, 32) and t['edges'].dtype == torch.float32
    assert collate([t, t])['edges'].shape == (2, 1, 32, 32)
    net = build_network(dict(type='LLVFSRArch', scale=8, num_feat=16, num_blocks=2, transformer_depth=1, num_heads=2,
                             priors=['mask', 'edges']))
    assert net.priors == ('mask', 'edges') and hasattr(net, 'edges_encoder') and hasattr(net.fusions[0], 'edga')
    out = awaken(net)(torch.rand(2, 3, 8, 8), fake_priors(2, ['mask', 'edges']))
    out.abs().mean().backward()
    assert out.shape == (2, 3, 64, 64) and net.edges_encoder.body[0].weight.grad.abs().sum() > 0


def test_spec_refuses_a_branch_that_does_not_fit_its_kind():
    with pytest.raises(ValueError, match='a map prior uses'):
        PriorSpec('edges', 'map', 'F_E', 'cross', 'EdgA')
    with pytest.raises(ValueError, match='registered already'):
        register_prior(PriorSpec('mask', 'map', 'F_M', 'spatial', 'SegA'))


def test_store_meta_checks_follow_the_spec():
    net = {'scale': 8, 'text_dim': 384, 'num_classes': 10}
    check_store_meta('caption', {'scale': 8, 'text_dim': 384}, net, 'datasets.train')
    with pytest.raises(OptionError, match='embedded by clip-hf with dim 512, but network_g.text_dim is 384'):
        check_store_meta('caption', {'text_encoder': 'clip-hf', 'text_dim': 512}, net, 'datasets.train')
    with pytest.raises(OptionError, match='num_classes 12, but network_g.num_classes is 10'):
        check_store_meta('mask', {'num_classes': 12}, net, 'datasets.train')
    with pytest.raises(OptionError, match='scale 16, but network_g.scale is 8'):
        check_store_meta('depth', {'scale': 16}, net, 'datasets.train')


def test_mirror_permutation_and_legacy_names():
    perm = mirror_permutation({'labels': ['background', 'left_eye', 'right_eye', 'nose']})
    assert perm[:4].tolist() == [0, 2, 1, 3]
    assert mirror_permutation({'labels': 'area-rank'}) is None  # SAM's labels have no side
    labels = np.zeros((4, 4), np.uint8)
    assert list(rename_legacy('mask', {'labels': labels})) == ['mask']  # stores of earlier versions still read
