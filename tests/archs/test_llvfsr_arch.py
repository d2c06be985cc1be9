"""LLVFSRArch (Sec. 3, Eq. 1): shapes, gradients per branch, ablations, checkpoints, determinism, errors."""
import pytest
import torch

from basicsr.archs import build_network
from basicsr.models.base_model import BaseModel
from llvfsr_plugin.archs.llvfsr_arch import LLVFSRArch, WindowAttention
from llvfsr_plugin.priors.contract import fake_priors

from helpers import awaken


def net(**kw):
    opt = dict(type='LLVFSRArch', num_feat=16, num_blocks=2, transformer_depth=1, num_heads=2)
    opt.update(kw)
    return build_network(opt)


@pytest.mark.parametrize('transformer', ['restormer', 'swin'])
@pytest.mark.parametrize('upsample', ['pixelshuffle', 'pre'])
@pytest.mark.parametrize('scale', [8, 16])
def test_arch_output_shape(scale, upsample, transformer):
    m = net(scale=scale, upsample=upsample, transformer=transformer, window_size=4)
    lq = torch.rand(2, 3, 128 // scale, 128 // scale)
    assert m(lq, fake_priors()).shape == (2, 3, 128, 128)


@pytest.mark.parametrize('transformer', ['restormer', 'swin'])
def test_arch_non_square_handled(transformer):
    m = net(scale=8, transformer=transformer, window_size=8)  # 8 x 12: padded to whole windows and back
    assert m(torch.rand(2, 3, 8, 12), fake_priors()).shape == (2, 3, 64, 96)


@pytest.mark.parametrize('shift, near, far', [(0, (7, 7), (8, 8)),     # W-MSA: windows are independent
                                              (4, (3, 3), (15, 15))])  # SW-MSA: the roll's wrap is masked
def test_arch_window_attention_sees_only_its_window(shift, near, far):
    """Pixel (0, 0) reads `near` (same window) but not `far` (another window, or a pixel that the cyclic
    shift only brought next to it)."""
    torch.manual_seed(0)
    a = WindowAttention(16, 2, window_size=8, shift=shift).eval()
    x = torch.rand(1, 16, 16, 16)
    with torch.no_grad():
        y = a(x)
        for (i, j), reads in ((near, True), (far, False)):
            x2 = x.clone()
            x2[:, :, i, j] += 5
            changed = (a(x2) - y)[0, :, 0, 0].abs().max().item() > 1e-6
            assert changed == reads, f'shift={shift}: pixel (0, 0) {"ignores" if reads else "reads"} {(i, j)}'


def test_arch_swin_gradients_reach_every_parameter():
    m = awaken(net(scale=8, transformer='swin', window_size=4, transformer_depth=2))
    m(torch.rand(2, 3, 8, 8), fake_priors()).abs().mean().backward()
    assert m.blocks[0][1].attn.shift == 2 and m.blocks[0][0].attn.shift == 0
    for n, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, n
    with pytest.raises(ValueError, match="`transformer` must be one of \\('restormer', 'swin'\\)"):
        net(transformer='window')


def _branch_params(m):
    groups = {'caption': ['caption_proj', 'capa'], 'description': ['description_proj', 'desa'],
              'mask': ['mask_encoder', 'sega', 'encoders.mask'], 'depth': ['depth_encoder', 'depa', 'encoders.depth']}
    return {p: [(n, q) for n, q in m.named_parameters() if any(f'{g}.' in n or n.startswith(g) for g in gs)]
            for p, gs in groups.items()}


@pytest.mark.parametrize('scale', [8, 16])
@pytest.mark.parametrize('kw', [{'body': 'hourglass', 'num_blocks': 7, 'num_feat': 32},
                                {'body': 'hourglass', 'num_blocks': 3},
                                {'body': 'lr', 'prior_tail': True, 'spatial': 'sft', 'capa': 'film', 'desa': 'query'}])
def test_arch_new_geometries_output_shape(scale, kw):
    m = net(scale=scale, **kw)
    lq = torch.rand(2, 3, 128 // scale, 128 // scale)
    assert m(lq, fake_priors()).shape == (2, 3, 128, 128)


def test_arch_hourglass_priors_meet_features_at_every_level():
    """x8, L = 7: stages at 64, 32, 16, neck 8, 16, 32, 64 (HR 64), each with its LVPFB; every level's map
    encoders run at that level's grid, channels halve per level up from the neck."""
    m = net(scale=8, body='hourglass', num_blocks=7, num_feat=32, num_heads=4)
    assert [b[0].norm1.weight.numel() for b in m.blocks] == [4, 8, 16, 32, 16, 8, 4]
    assert len(m.fusions) == 7 and len(m.mask_encoders) == 4
    seen = []
    for lv, enc in enumerate(m.mask_encoders):
        enc.register_forward_hook(lambda mod, inp, out, lv=lv: seen.append((lv, tuple(out.shape[-2:]))))
    m(torch.rand(1, 3, 8, 8), fake_priors(1))
    assert seen == [(0, (64, 64)), (1, (32, 32)), (2, (16, 16)), (3, (8, 8))]
    with pytest.raises(ValueError, match='odd num_blocks'):
        net(body='hourglass', num_blocks=4)
    with pytest.raises(ValueError, match="`body` must be one of"):
        net(body='unet')
    with pytest.raises(ValueError, match='18x16 is not divisible by 8'):  # x2 with 3 levels down
        net(scale=2, body='hourglass', num_blocks=7, num_feat=32)(torch.rand(1, 3, 9, 8), fake_priors(1))


def test_arch_prior_tail_modulates_every_x2_of_the_tail():
    m = net(scale=8, priors=['mask', 'depth'], prior_tail=True)
    assert len(m.tail_mods) == 3 and hasattr(m.tail_mods[0], 'sega') and hasattr(m.tail_mods[0], 'depa')
    sizes = []
    for t in m.tail_mods:
        t.register_forward_hook(lambda mod, inp, out: sizes.append(tuple(out.shape[-2:])))
    m(torch.rand(1, 3, 8, 8), fake_priors(1, ['mask', 'depth']))
    assert sizes == [(16, 16), (32, 32), (64, 64)]
    assert net(priors=[], prior_tail=True).tail_mods is None  # Model 1: no prior, nothing to modulate
    with pytest.raises(ValueError, match='`upsample: pre` has no such tail'):  # not a silently unmodulated network
        net(scale=8, priors=['mask', 'depth'], prior_tail=True, upsample='pre')


def test_arch_prior_tail_skip_leaves_the_finest_steps_unmodulated():
    """`prior_tail_skip: 1`: the x8 tail modulates after its first two x2 only; the output keeps its size, the
    weights outside the tail are those of the full tail, and a skip that leaves no modulation is refused."""
    kw = dict(scale=8, priors=['mask', 'depth'], prior_tail=True, spatial='sft')
    full, coarse = net(**kw), net(prior_tail_skip=1, **kw)
    sizes = []
    for t in coarse.tail_mods:
        t.register_forward_hook(lambda mod, inp, out: sizes.append(tuple(out.shape[-2:])))
    assert coarse(torch.rand(1, 3, 8, 8), fake_priors(1, ['mask', 'depth'])).shape == (1, 3, 64, 64)
    assert sizes == [(16, 16), (32, 32)]
    shapes = lambda m: {n: p.shape for n, p in m.named_parameters()}  # noqa: E731
    assert shapes(coarse) == {n: s for n, s in shapes(full).items() if not n.startswith('tail_mods.2.')}
    for bad in (3, -1, 1.0):
        with pytest.raises(ValueError, match='`prior_tail_skip` must be a whole number from 0 to 2'):
            net(prior_tail_skip=bad, **kw)
    with pytest.raises(ValueError, match='from 0 to 0'):
        net(body='hourglass', num_blocks=3, prior_tail_skip=1)
    with pytest.raises(ValueError, match='needs `prior_tail: true`'):
        net(scale=8, priors=['mask', 'depth'], prior_tail_skip=1)


def test_arch_fusion_none_puts_the_maps_in_the_tail_alone():
    """`fusion: none`: the body is Model 1's (no LVPFB, no body encoders; same weights and output under one seed at
    initialisation), the maps act only through the prior tail and reach it after one step; without a prior tail,
    or with text priors that no tail reads, it is refused."""
    kw = dict(scale=8, prior_tail=True, prior_tail_dim=8, prior_tail_skip=1, spatial='sft')
    torch.manual_seed(5)
    model1 = net(scale=8, priors=[])
    torch.manual_seed(5)
    m = net(priors=['mask', 'depth'], fusion='none', **kw)
    assert m.fusions is None and {n.split('.')[0] for n, _ in m.named_parameters()} == {
        n.split('.')[0] for n, _ in model1.named_parameters()} | {'tail_mods'}
    full_state = m.state_dict()
    assert all(torch.equal(v, full_state[k]) for k, v in model1.state_dict().items())
    lq, pri_a, pri_b = torch.rand(2, 3, 8, 8), fake_priors(seed=1), fake_priors(seed=2)
    with torch.no_grad():
        assert torch.equal(m(lq, pri_a), model1(lq))
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    (m(lq, pri_a) - torch.rand(2, 3, 64, 64)).abs().mean().backward()
    assert all(p.grad is not None for p in m.tail_mods.parameters())
    opt.step()
    with torch.no_grad():
        assert not torch.allclose(m(lq, pri_a), m(lq, pri_b))
    with pytest.raises(ValueError, match='`fusion: none` leaves the body without priors'):
        net(scale=8, priors=['mask', 'depth'], fusion='none')
    with pytest.raises(ValueError, match="map priors only .*got priors \\['caption', 'mask'\\]"):
        net(priors=['caption', 'mask'], fusion='none', **kw)
    assert net(scale=8, priors=[], fusion='none').fusions is None  # no prior at all: Model 1 whatever the fusion


def test_arch_prior_tail_dim_narrows_the_tail_map_features_only():
    """`prior_tail_dim`: the tail's map encoders give that many channels and its SFTs read them; the
    feature the tail modulates, and every module outside the tail, keep their widths."""
    kw = dict(scale=8, priors=['mask', 'depth'], prior_tail=True, spatial='sft', num_feat=32, num_heads=2)
    full, narrow = net(**kw), net(prior_tail_dim=8, **kw)
    seen = []
    for enc in narrow.tail_mods[2].encoders.values():
        enc.register_forward_hook(lambda mod, inp, out: seen.append(tuple(out.shape[1:])))
    assert narrow(torch.rand(1, 3, 8, 8), fake_priors(1, ['mask', 'depth'])).shape == (1, 3, 64, 64)
    assert seen == [(8, 64, 64), (8, 64, 64)]
    assert narrow.tail_mods[0].sega.body[0].in_channels == 32 + 8
    outside = {n: p.shape for n, p in full.named_parameters() if not n.startswith('tail_mods.')}
    assert {n: p.shape for n, p in narrow.named_parameters() if not n.startswith('tail_mods.')} == outside
    count = lambda m: sum(p.numel() for p in m.tail_mods.parameters())  # noqa: E731
    assert count(narrow) < count(full) / 3
    with pytest.raises(ValueError, match='`prior_tail_dim` must be a positive integer'):
        net(prior_tail_dim=0, **kw)


GEOMETRIES = [{}, {'body': 'hourglass', 'num_blocks': 3},
              {'prior_tail': True, 'spatial': 'sft', 'capa': 'film', 'desa': 'query'},
              {'prior_tail': True, 'prior_tail_dim': 8, 'spatial': 'sft'},
              {'prior_tail': True, 'prior_tail_dim': 8, 'prior_tail_skip': 1, 'spatial': 'sft'}]


@pytest.mark.parametrize('kw', GEOMETRIES)
def test_arch_prior_paths_start_as_the_identity(kw):
    """Every prior path ends in a zero-initialised layer: at initialisation the priors change nothing (the
    network is its Model 1 plus identity blocks); after one training step they do."""
    torch.manual_seed(0)
    m = net(scale=8, **kw)
    lq, pri_a, pri_b = torch.rand(2, 3, 8, 8), fake_priors(seed=1), fake_priors(seed=2)
    with torch.no_grad():
        assert torch.equal(m(lq, pri_a), m(lq, pri_b))
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    (m(lq, pri_a) - torch.rand(2, 3, 64, 64)).abs().mean().backward()
    opt.step()
    with torch.no_grad():
        assert not torch.allclose(m(lq, pri_a), m(lq, pri_b))


@pytest.mark.parametrize('kw', [{'priors': ['mask', 'depth'], 'spatial': 'sft'},
                                {'priors': ['caption'], 'capa': 'film'},
                                {'priors': ['mask'], 'spatial': 'sft', 'body': 'hourglass', 'num_blocks': 3}])
def test_arch_prior_content_reaches_the_first_gradient(kw):
    """One zero layer per prior path, not two in series: at initialisation the gradient of the zero-initialised
    fusion already depends on what the priors say (with a zero SFT / FiLM before it, it would not, and the
    path would stay dark until both layers had grown)."""
    torch.manual_seed(0)
    m = net(scale=8, **kw)
    lq, target = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 64, 64)
    grads = []
    for seed in (1, 2):
        m.zero_grad()
        (m(lq, fake_priors(seed=seed, names=kw['priors'])) - target).abs().mean().backward()
        grads.append(m.fusions[0].fuse[2].weight.grad.clone())
    assert not torch.allclose(grads[0], grads[1])


@pytest.mark.parametrize('kw', GEOMETRIES + [{'fusion': 'concat'}])
def test_arch_starts_as_its_model1_under_one_seed(kw):
    """Common random numbers: the prior modules draw from their own stream, so under one seed the backbone of
    an LLV-FSR network is its Model 1's weight for weight and the two give the same output at initialisation;
    building it leaves the global stream where Model 1 leaves it."""
    torch.manual_seed(3)
    model1 = net(scale=8, priors=[], **kw)
    after_model1 = torch.rand(4)
    torch.manual_seed(3)
    full = net(scale=8, **kw)
    assert torch.equal(torch.rand(4), after_model1)
    full_state = full.state_dict()
    for k, v in model1.state_dict().items():
        assert torch.equal(v, full_state[k]), k
    assert len(full_state) > len(model1.state_dict())
    lq = torch.rand(2, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(full(lq, fake_priors(2)), model1(lq))
    torch.manual_seed(4)  # another seed, another backbone
    assert not torch.equal(net(scale=8, **kw).conv_first.weight, full.conv_first.weight)


@pytest.mark.parametrize('kw', GEOMETRIES)
def test_arch_gradients_reach_every_switched_on_branch(kw):
    m = awaken(net(scale=8, **kw))
    m(torch.rand(2, 3, 8, 8), fake_priors()).abs().mean().backward()
    for prior, params in _branch_params(m).items():
        assert params, f'no parameters for {prior}'
        for n, p in params:
            assert p.grad is not None and p.grad.abs().sum() > 0, f'no gradient reaches {n}'
    for n, p in m.named_parameters():  # nothing in the network is dead
        assert p.grad is not None, n


def test_arch_switched_off_branches_do_not_exist_and_ignore_inputs():
    m = awaken(net(scale=8, priors=['mask', 'depth']))
    b = _branch_params(m)
    assert not b['caption'] and not b['description'] and b['mask'] and b['depth']
    pri = fake_priors()
    out1 = m(torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(1)), pri)
    pri2 = dict(pri, caption_tokens=pri['caption_tokens'] * 0 + 5, description_tokens=torch.zeros_like(
        pri['description_tokens']).requires_grad_())
    out2 = m(torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(1)), pri2)
    assert torch.equal(out1, out2)
    out2.mean().backward()
    assert pri2['description_tokens'].grad is None


def test_arch_ablation_param_counts():
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    model1, model2, full = net(priors=[]), net(fusion='concat'), net()
    assert model1.fusions is None and not any(k.startswith(('caption_', 'description_', 'mask_', 'depth_'))
                                              for k, _ in model1.named_parameters())
    assert n(model1) < n(model2) < n(full)
    # Model 1 is the same backbone: its parameters are a subset of the full model's, by name and shape
    full_shapes = {k: v.shape for k, v in full.state_dict().items()}
    for k, v in model1.state_dict().items():
        assert full_shapes[k] == v.shape
    assert model1(torch.rand(1, 3, 8, 8)).shape == (1, 3, 64, 64)  # no priors needed


@pytest.mark.parametrize('priors', [['caption'], ['description'], ['mask'], ['depth'], ['caption', 'depth'],
                                    ['caption', 'description', 'mask']])
def test_arch_prior_subsets_build_and_run(priors):
    for fusion in ('lvpfb', 'concat'):
        m = net(priors=priors, fusion=fusion)
        pri = {k: v for k, v in fake_priors().items() if k.split('_')[0] in priors}
        assert m(torch.rand(2, 3, 8, 8), pri).shape == (2, 3, 64, 64)


def test_arch_missing_or_misshaped_prior_errors_are_clear():
    m = net()
    pri = fake_priors()
    pri.pop('depth')
    with pytest.raises(KeyError, match=r"\['depth'\] missing.*priors: \['caption', 'description', 'mask', 'depth'\]"):
        m(torch.rand(2, 3, 8, 8), pri)
    pri = fake_priors(text_dim=512)
    with pytest.raises(ValueError, match=r'caption_tokens must be \[B=2, T, D_text=384\].*text_dim'):
        m(torch.rand(2, 3, 8, 8), pri)
    with pytest.raises(ValueError, match='unknown prior'):
        net(priors=['captions'])


def test_arch_checkpoint_roundtrip_strict(tmp_path):
    m = net()
    bm = BaseModel.__new__(BaseModel)
    bm.opt = {'path': {'models': str(tmp_path)}}
    BaseModel.save_network(bm, m, 'net_g', 7)
    m2 = net()
    BaseModel.load_network(bm, m2, str(tmp_path / 'net_g_7.pth'), strict=True)
    for (k, v), (k2, v2) in zip(m.state_dict().items(), m2.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)


def test_arch_eval_forward_deterministic():
    torch.manual_seed(0)
    m = net().eval()
    lq, pri = torch.rand(2, 3, 8, 8), fake_priors()
    with torch.no_grad():
        assert torch.equal(m(lq, pri), m(lq, pri))


@pytest.mark.parametrize('desa', ['gather', 'query'])
def test_arch_padding_tokens_do_not_change_output(desa):
    """Right-padding the text (as the collate function does) must not change the result."""
    m = awaken(net(desa=desa, capa='film' if desa == 'query' else 'gate')).eval()
    pri = fake_priors(b=1)
    padded = dict(pri)
    for p in ('caption', 'description'):
        t, mk = pri[f'{p}_tokens'], pri[f'{p}_token_mask']
        padded[f'{p}_tokens'] = torch.cat([t, torch.randn(1, 3, t.shape[2])], 1)
        padded[f'{p}_token_mask'] = torch.cat([mk, torch.zeros(1, 3, dtype=torch.bool)], 1)
    lq = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(m(lq, pri), m(lq, padded), rtol=1e-5, atol=1e-5)


def test_arch_channels_last_is_layout_only():
    """channels_last (the default, for speed) changes the memory layout, not the result; checkpoints load
    across both layouts; the output is correct for a contiguous consumer."""
    torch.manual_seed(0)
    a = net(channels_last=True).eval()
    b = net(channels_last=False).eval()
    b.load_state_dict(a.state_dict())
    assert a.conv_first.weight.is_contiguous(memory_format=torch.channels_last)
    assert b.conv_first.weight.is_contiguous()
    lq, pri = torch.rand(2, 3, 8, 8), fake_priors()
    with torch.no_grad():
        torch.testing.assert_close(a(lq, pri), b(lq, pri), rtol=1e-4, atol=1e-5)
    a.load_state_dict(b.state_dict())  # and back: params keep their layout
    assert a.conv_first.weight.is_contiguous(memory_format=torch.channels_last)


def test_arch_default_is_the_paper_depth():
    m = LLVFSRArch()
    assert len(m.blocks) == 7 and len(m.fusions) == 7 and len(m.blocks[0]) == 2
    assert m.priors == ('caption', 'description', 'mask', 'depth')

