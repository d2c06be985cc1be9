"""LLV-FSR network (arXiv 2411.09293, Sec. 3, Eq. 1, Fig. 2-3), one readable file.

    F_0 = conv(I_LR)
    F_i = Block_i(LVPFB_i(F_{i-1}, E_C, E_D, F_S, F_D)),   i = 1..L      (Eq. 1, L = 7)
    I_SR = reconstructor(F_L)

Choices where the paper is silent (each an option, defaults chosen by measurement, see README/benchmarks):
  * `body`: 'lr' runs the L stages on the LR grid and draws the HR pixels in a PixelShuffle tail;
    'hourglass' takes the bicubic-upsampled face into L = 2k + 1 stages at k + 1 resolutions (k down, a
    neck, k up, skips between mirrored stages; x8: 256, 128, 64, neck 32), as the authors' SFMNet and the
    WFEN baseline do, so the priors meet the features at every scale where HR detail is drawn.
    `prior_tail: true` (body 'lr') adds SFT modulation from the map priors after each x2 of the tail.
  * `spatial`: SegA / DepA as a sigmoid 'gate' on the feature (the paper's spatial attention) or 'sft'
    (spatial feature transform: scale and shift from the prior, which can add an edge the feature lacks).
  * `capa`: 'gate' (the paper: channel attention) or 'film' (per-channel scale and shift from the caption).
  * `desa`: 'gather' (below) or 'query' (pixels query the text tokens: Q = pixels, K/V = text, so the
    text's content reaches the features).
  * Every prior path starts as the identity through one zero-initialised layer (the last of each LVPFB
    fusion, and of the prior tail's SFT; not a second one in series, which would starve the path of
    gradient) and the prior modules draw their initial weights from a random stream of their own: under
    one seed an LLV-FSR network begins as its Model 1, weight for weight, and can only learn to use its
    priors (a paired seed-for-seed comparison then measures the priors, not two initialisations).
  * `upsample`: 'pixelshuffle' keeps features at LR size and ends with a PixelShuffle tail; 'pre' bicubic-
    upsamples I_LR to HR size first (SFMNet / WFEN style) and the reconstructor is a single conv.
    Both add the bicubic LR as a global residual (the network predicts the missing detail).
  * `transformer`: 'restormer' (default) is Restormer's block (MDTA transposed attention + gated-dconv FFN):
    its attention is C x C per head, so cost is linear in pixels and affordable at 256 x 256. 'swin' swaps
    the attention for Swin/SwinIR's window MHSA (the basic block's two transformer blocks become W-MSA then
    SW-MSA), same FFN, so the two differ only in how pixels attend.
  * DesA read-out: the T description tokens first gather from the pixels (Q = text, K/V = pixels), then
    every pixel reads back from those T gathered tokens (Q = pixels, K = text, V = gathered): an attention
    whose result is a spatial map, linear in the number of pixels (T is ~77).
Priors: the prior contract (`llvfsr_plugin.priors.contract`) names them, their batch tensors, their encoded
symbol and the LVPFB branch that fuses them; this file builds one encoder and one branch per prior from it:
  text (caption, description): <name>_tokens [B, T, D_text], <name>_token_mask [B, T] (True = real token)
      -> Linear -> E_C / E_D;  CapA (channel attention) / DesA (cross-attention)
  map (mask, depth): <name> [B, 1, h, w] (labels one-hot to `num_classes` channels, or one continuous channel)
      -> conv encoder at the feature grid -> F_S / F_D;  SegA / DepA (spatial attention)
  Maps of any resolution are resized to each feature grid here, so prep stores them once for all scales
  (`prior_size`: the map resolution the network is meant for, recorded so checks can note a coarser store).
"""
import contextlib
import inspect
import math

import torch
import torch.nn.functional as F
from torch import nn

from basicsr.utils.registry import ARCH_REGISTRY
from llvfsr_plugin.priors.contract import (
    NUM_MASK_CLASSES,
    PAPER_PRIORS,
    PRIORS,
    canonical,
    check_inputs,
    check_prior_names,
)


# ------------------------------------------------------------------------------------------------ backbone
class LayerNorm2d(nn.Module):
    """Per-pixel LayerNorm over channels (Restormer's 'WithBias' LN)."""

    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.eps = eps

    def forward(self, x):
        mu = x.mean(1, keepdim=True)
        var = (x - mu).pow(2).mean(1, keepdim=True)
        x = (x - mu) / torch.sqrt(var + self.eps)
        return x * self.weight[:, None, None] + self.bias[:, None, None]


class MDTA(nn.Module):
    """Multi-Dconv-head Transposed Attention (Restormer, Zamir et al. 2022): attention across channels."""

    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, 1)
        self.qkv_dw = nn.Conv2d(dim * 3, dim * 3, 3, padding=1, groups=dim * 3)
        self.proj = nn.Conv2d(dim, dim, 1)

    def forward(self, x):
        b, c, h, w = x.shape
        q, k, v = self.qkv_dw(self.qkv(x)).chunk(3, dim=1)
        q, k, v = (t.reshape(b, self.num_heads, c // self.num_heads, h * w) for t in (q, k, v))
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        attn = (q @ k.transpose(-2, -1) * self.temperature).softmax(dim=-1)
        return self.proj((attn @ v).reshape(b, c, h, w))


class GDFN(nn.Module):
    """Gated-Dconv Feed-forward Network (Restormer)."""

    def __init__(self, dim, expansion=2.66):
        super().__init__()
        hidden = int(dim * expansion)
        self.proj_in = nn.Conv2d(dim, hidden * 2, 1)
        self.dw = nn.Conv2d(hidden * 2, hidden * 2, 3, padding=1, groups=hidden * 2)
        self.proj_out = nn.Conv2d(hidden, dim, 1)

    def forward(self, x):
        x1, x2 = self.dw(self.proj_in(x)).chunk(2, dim=1)
        return self.proj_out(F.gelu(x1) * x2)


class WindowAttention(nn.Module):
    """(Shifted-)window multi-head self-attention (Swin, Liu et al. 2021; SwinIR): attention among the
    window_size^2 pixels of each window, with a learned relative-position bias; `shift` > 0 rolls the map
    first and masks pairs that the roll brought together. Maps not a multiple of the window are zero-padded."""

    def __init__(self, dim, num_heads, window_size=8, shift=0):
        super().__init__()
        self.num_heads, self.ws, self.shift = num_heads, window_size, shift
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.rel_bias = nn.Parameter(torch.zeros(num_heads, (2 * window_size - 1) ** 2))
        nn.init.trunc_normal_(self.rel_bias, std=0.02)
        yy, xx = torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing='ij')
        coords = torch.stack([yy.flatten(), xx.flatten()])  # [2, ws*ws]
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + window_size - 1
        self.register_buffer('rel_index', rel[..., 0] * (2 * window_size - 1) + rel[..., 1], persistent=False)

    def _shift_mask(self, hp, wp, device):
        """[nW, ws*ws, ws*ws]: True where two pixels of a window came from the same region before the roll."""
        ws, s = self.ws, self.shift
        region = torch.zeros(hp, wp, device=device)
        n = 0
        for hs in (slice(0, -ws), slice(-ws, -s), slice(-s, None)):
            for wsl in (slice(0, -ws), slice(-ws, -s), slice(-s, None)):
                region[hs, wsl] = n
                n += 1
        r = region.reshape(hp // ws, ws, wp // ws, ws).transpose(1, 2).reshape(-1, ws * ws)
        return r[:, :, None] == r[:, None, :]

    def forward(self, x):
        b, c, h, w = x.shape
        ws, heads = self.ws, self.num_heads
        ph, pw = (-h) % ws, (-w) % ws
        x = F.pad(x, (0, pw, 0, ph)) if ph or pw else x
        hp, wp = h + ph, w + pw
        if self.shift:
            x = torch.roll(x, (-self.shift, -self.shift), dims=(2, 3))
        # [B, C, Hp, Wp] -> windows [B*nW, ws*ws, C]
        t = x.permute(0, 2, 3, 1).reshape(b, hp // ws, ws, wp // ws, ws, c).transpose(2, 3).reshape(-1, ws * ws, c)
        q, k, v = self.qkv(t).reshape(t.shape[0], ws * ws, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
        bias = self.rel_bias[:, self.rel_index].to(q.dtype)  # [heads, N, N]
        if self.shift:
            nw = (hp // ws) * (wp // ws)
            keep = self._shift_mask(hp, wp, x.device)[:, None]  # [nW, 1, N, N]
            bias = bias.masked_fill(~keep, float('-inf'))  # [nW, heads, N, N]
            q, k, v = (z.reshape(b, nw, heads, ws * ws, c // heads) for z in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        out = self.proj(out.transpose(-3, -2).reshape(-1, ws * ws, c))
        out = out.reshape(b, hp // ws, wp // ws, ws, ws, c).transpose(2, 3).reshape(b, hp, wp, c).permute(0, 3, 1, 2)
        if self.shift:
            out = torch.roll(out, (self.shift, self.shift), dims=(2, 3))
        return out[:, :, :h, :w]


class TransformerBlock(nn.Module):
    """x + Attn(LN(x)); x + GDFN(LN(x)). Attn: MDTA ('restormer') or (shifted-)window MHSA ('swin')."""

    def __init__(self, dim, num_heads, ffn_expansion, transformer='restormer', window_size=8, shift=0):
        super().__init__()
        attn = (MDTA(dim, num_heads) if transformer == 'restormer' else
                WindowAttention(dim, num_heads, window_size, shift))
        self.norm1, self.attn = LayerNorm2d(dim), attn
        self.norm2, self.ffn = LayerNorm2d(dim), GDFN(dim, ffn_expansion)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class BasicBlock(nn.Sequential):
    """'Block_i' of Eq. 1: two cascaded transformer blocks (Sec. 3.2); with 'swin', W-MSA then SW-MSA."""

    def __init__(self, dim, num_heads, ffn_expansion, depth=2, transformer='restormer', window_size=8):
        super().__init__(*[TransformerBlock(dim, num_heads, ffn_expansion, transformer, window_size,
                                            shift=window_size // 2 if i % 2 else 0) for i in range(depth)])


# ---------------------------------------------------------------------------------------- prior encoders
class ImageEncoder(nn.Module):
    """The conv 'image encoder' that turns the mask (one-hot) or depth map into F_S / F_D (Sec. 3.3)."""

    def __init__(self, in_ch, dim):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(in_ch, dim, 3, padding=1), nn.GELU(), nn.Conv2d(dim, dim, 3, padding=1))

    def forward(self, x, size):
        if x.shape[-2:] != size:  # resized in fp32: antialiased resize has no bf16 kernel on CPU
            x = F.interpolate(x.float(), size=size, mode='bilinear', align_corners=False,
                              antialias=x.shape[-1] > size[-1]).to(x.dtype)
        return self.body(x)


def masked_mean(tokens, mask):
    """Mean over real (unpadded) tokens: [B, T, C], [B, T] -> [B, C]."""
    m = mask.to(tokens.dtype).unsqueeze(-1)
    return (tokens * m).sum(1) / m.sum(1).clamp_min(1.0)


# ------------------------------------------------------------------------------------ the four attentions
class SpatialPriorAttention(nn.Module):
    """SegA / DepA: facial-structure-aware spatial attention from the mask / depth feature through cascaded
    convs, modulating the LR feature (Sec. 3.2, Fig. 3). Convs: 1x1 (mix LR + prior) -> depthwise 3x3
    (spatial context) -> 1x1 -> sigmoid: a per-pixel, per-channel attention map far cheaper than two dense
    3x3 convs (benchmarks/arch_cost.py)."""

    def __init__(self, dim, num_heads=None):
        super().__init__()
        hidden = dim // 2
        self.body = nn.Sequential(
            nn.Conv2d(dim * 2, hidden, 1), nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden), nn.GELU(),
            nn.Conv2d(hidden, dim, 1), nn.Sigmoid())

    def forward(self, feat, prior_feat):
        return feat * self.body(torch.cat([feat, prior_feat], dim=1))


def zero_init(layer):
    """Zero a layer's weight and bias: the path it ends starts as 'adds nothing' (ControlNet's zero conv)."""
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class SFT(nn.Module):
    """SegA / DepA, `spatial: sft`: spatial feature transform (Wang et al. 2018, SFTGAN): a per-pixel,
    per-channel scale and shift computed from the LR feature and the prior feature, F * (1 + gamma) + beta.
    Unlike a sigmoid gate it can add structure the feature lacks. `identity_start`: the last conv starts at zero
    (the identity), for an SFT used on its own (the prior tail); inside an LVPFB the fusion already starts at
    zero, and two zero layers in series leave the prior path without a gradient until both have grown.
    `prior_dim`: channels of the prior feature (default `dim`)."""

    def __init__(self, dim, num_heads=None, identity_start=False, prior_dim=None):
        super().__init__()
        hidden = max(dim // 2, 4)
        last = nn.Conv2d(hidden, dim * 2, 1)
        self.body = nn.Sequential(nn.Conv2d(dim + (prior_dim or dim), hidden, 1),
                                  nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden), nn.GELU(),
                                  zero_init(last) if identity_start else last)

    def forward(self, feat, prior_feat):
        gamma, beta = self.body(torch.cat([feat, prior_feat], dim=1)).chunk(2, dim=1)
        return feat * (1 + gamma) + beta


class CapA(nn.Module):
    """CapA: global pooling of the caption embedding, conv, sigmoid -> channel attention (Sec. 3.2)."""

    def __init__(self, dim, num_heads=None, reduction=4):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(dim, dim // reduction, 1), nn.GELU(), nn.Conv2d(dim // reduction, dim, 1), nn.Sigmoid())

    def forward(self, feat, caption):
        g = masked_mean(*caption)[:, :, None, None]  # global average pooling over the (tokens, mask)
        return feat * self.body(g)


class CapAFiLM(nn.Module):
    """CapA, `capa: film`: feature-wise linear modulation (Perez et al. 2018) from the pooled caption, a
    per-channel scale and shift F * (1 + gamma) + beta (inside an LVPFB, whose fusion starts at zero)."""

    def __init__(self, dim, num_heads=None):
        super().__init__()
        last = nn.Linear(dim, dim * 2)  # drawn before the first layer (the initialisation of 504cd10)
        self.body = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), last)

    def forward(self, feat, caption):
        gamma, beta = self.body(masked_mean(*caption))[:, :, None, None].chunk(2, dim=1)
        return feat * (1 + gamma) + beta


class _HeadsMixin:
    def _heads(self, t):  # [B, N, C] -> [B, h, N, d]
        return t.reshape(t.shape[0], t.shape[1], self.num_heads, self.head_dim).transpose(1, 2)


class DesA(_HeadsMixin, nn.Module):
    """DesA: cross-attention, queries from the description E_D, keys/values from the LR feature (Sec. 3.2).

    Gather: Z = softmax(Q_text K_pix^T / sqrt(d)) V_pix   ([B, h, T, d]); read-out: each pixel attends over
    the T gathered tokens, softmax(Q_pix K_text^T / sqrt(d)) Z, masking padded tokens. Cost O(N T d).
    """

    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.q_text = nn.Linear(dim, dim)
        self.k_text = nn.Linear(dim, dim)
        self.kv_pix = nn.Conv2d(dim, dim * 2, 1)
        self.q_pix = nn.Conv2d(dim, dim, 1)
        self.proj = nn.Conv2d(dim, dim, 1)

    def forward(self, feat, description):
        """description: (tokens [B, T, C], mask [B, T] bool, True = real token)."""
        des_tokens, des_mask = description
        b, c, hh, ww = feat.shape
        # [B, N, C] each, channels contiguous: SDPA's fused CPU/GPU kernels need a unit-stride last dim (else
        # it falls back to the slow math path)
        k_pix, v_pix = self.kv_pix(feat).flatten(2).transpose(1, 2).contiguous().chunk(2, dim=-1)
        q_pix = self.q_pix(feat).flatten(2).transpose(1, 2).contiguous()
        q_t, k_t = self._heads(self.q_text(des_tokens)), self._heads(self.k_text(des_tokens))
        k_pix, v_pix, q_pix = self._heads(k_pix), self._heads(v_pix), self._heads(q_pix)
        gathered = F.scaled_dot_product_attention(q_t, k_pix, v_pix)  # [B, h, T, d]
        # pixels never read padded tokens (the gathered rows of padded queries are meaningless)
        out = F.scaled_dot_product_attention(q_pix, k_t, gathered, attn_mask=des_mask[:, None, None, :])  # [B, h, N, d]
        out = out.transpose(1, 2).reshape(b, hh * ww, c).transpose(1, 2).reshape(b, c, hh, ww)
        return self.proj(out)


def fusion_convs(dim, n_inputs):
    """Fuse n concatenated C-channel maps back to C: 1x1, GELU, depthwise 3x3 (shared by LVPFB and Model 2).
    The last conv starts at zero, so the block it ends starts as its skip connection (the identity)."""
    return nn.Sequential(nn.Conv2d(dim * n_inputs, dim, 1), nn.GELU(),
                         zero_init(nn.Conv2d(dim, dim, 3, padding=1, groups=dim)))


class DesAQuery(_HeadsMixin, nn.Module):
    """DesA, `desa: query`: every pixel queries the description tokens (Q = pixels, K / V = text, padded
    tokens masked), so the text's content, not only its attention weights, reaches the features. O(N T d)."""

    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.q_pix = nn.Conv2d(dim, dim, 1)
        self.kv_text = nn.Linear(dim, dim * 2)
        self.proj = nn.Conv2d(dim, dim, 1)

    def forward(self, feat, description):
        tokens, mask = description
        b, c, hh, ww = feat.shape
        q = self._heads(self.q_pix(feat).flatten(2).transpose(1, 2).contiguous())  # [B, h, N, d]
        k, v = (self._heads(t.contiguous()) for t in self.kv_text(tokens).chunk(2, dim=-1))  # [B, h, T, d]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])
        return self.proj(out.transpose(1, 2).reshape(b, hh * ww, c).transpose(1, 2).reshape(b, c, hh, ww))


# PriorSpec.branch -> {variant option value: module}; the variant options are `spatial`, `capa`, `desa`
DEFAULT_VARIANTS = {'spatial': 'gate', 'capa': 'gate', 'desa': 'gather'}
BRANCHES = {'spatial': {'gate': SpatialPriorAttention, 'sft': SFT},
            'channel': {'gate': CapA, 'film': CapAFiLM},
            'cross': {'gather': DesA, 'query': DesAQuery}}
VARIANT_OPTION = {'spatial': 'spatial', 'channel': 'capa', 'cross': 'desa'}


class LVPFB(nn.Module):
    """Language-Vision Prior Fusion Block (Sec. 3.2, Fig. 3): one branch per prior (SegA, DepA, CapA, DesA)
    in parallel on the LR feature, concatenated with it, fused by convs, plus a skip connection."""

    def __init__(self, dim, priors, num_heads, variants=None):
        super().__init__()
        self.specs = [PRIORS[p] for p in priors]
        self.norm = LayerNorm2d(dim)
        variants = dict(DEFAULT_VARIANTS, **(variants or {}))
        for s in self.specs:  # self.sega, self.depa, self.capa, self.desa
            setattr(self, s.branch_name.lower(), BRANCHES[s.branch][variants[VARIANT_OPTION[s.branch]]](dim, num_heads))
        self.fuse = fusion_convs(dim, 1 + len(self.specs))

    def forward(self, feat, enc):
        x = self.norm(feat)
        outs = [x] + [getattr(self, s.branch_name.lower())(x, enc[s.symbol]) for s in self.specs]
        return feat + self.fuse(torch.cat(outs, dim=1))


class ConcatFusion(nn.Module):
    """Table 2 'Model 2': the priors are concatenated with the LR feature and fused by plain convs (text
    priors as their token mean, broadcast over the grid)."""

    def __init__(self, dim, priors, num_heads=None, variants=None):
        super().__init__()
        self.specs = [PRIORS[p] for p in priors]
        self.fuse = fusion_convs(dim, 1 + len(self.specs))

    def forward(self, feat, enc):
        outs = [feat]
        for s in self.specs:
            e = enc[s.symbol]
            outs.append(masked_mean(*e)[:, :, None, None].expand(-1, -1, *feat.shape[-2:]) if s.kind == 'text' else e)
        return feat + self.fuse(torch.cat(outs, dim=1))


class TailModulation(nn.Module):
    """`prior_tail` (body 'lr'): after one x2 of the PixelShuffle tail, each map prior modulates the feature at
    that grid through its own encoder and an SFT (SegA / DepA, SFT-style); zero-initialised (identity).
    The encoders give `prior_dim` channels (default `dim`): they and the SFTs run at up to HR size, where at
    prior_dim = dim they nearly triple the network's FLOPs (README "The network")."""

    def __init__(self, dim, map_specs, num_classes, prior_dim=None):
        super().__init__()
        self.specs = map_specs
        prior_dim = prior_dim or dim
        self.encoders = nn.ModuleDict({s.name: ImageEncoder(s.in_channels(num_classes), prior_dim)
                                       for s in map_specs})
        for s in map_specs:  # self.sega, self.depa
            setattr(self, s.branch_name.lower(), SFT(dim, identity_start=True, prior_dim=prior_dim))

    def forward(self, feat, maps):
        for s in self.specs:
            feat = getattr(self, s.branch_name.lower())(feat, self.encoders[s.name](maps[s.name], feat.shape[-2:]))
        return feat


@contextlib.contextmanager
def own_random_stream():
    """Build the prior modules from a random stream of their own (common random numbers): the backbone then
    draws exactly what its Model 1 draws, so under one seed an LLV-FSR network starts as its Model 1 weight
    for weight (the prior paths start as the identity), and a paired comparison of the two measures the
    priors, not two backbone initialisations. The stream is forked from, and seeded by, the current one."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(2**62, ())))
        yield


# ------------------------------------------------------------------------------------------------ network
CHOICES = {'fusion': ('lvpfb', 'concat', 'none'), 'body': ('lr', 'hourglass'), 'upsample': ('pixelshuffle', 'pre'),
           'transformer': ('restormer', 'swin'), 'spatial': tuple(BRANCHES['spatial']),
           'capa': tuple(BRANCHES['channel']), 'desa': tuple(BRANCHES['cross'])}


@ARCH_REGISTRY.register()
class LLVFSRArch(nn.Module):
    """LLV-FSR (Eq. 1). `forward(lq, priors)`; `priors` maps the batch keys of the prior contract
    (`llvfsr_plugin.priors.contract`) to tensors. `priors=[]` builds Table 2's Model 1 (same backbone, no
    fusion blocks); `fusion='concat'` builds Model 2.

    Args:
        scale: 8 (32->256) or 16 (16->256); any power of two works.
        num_feat: channels C of the features on the LR grid (body 'hourglass': of the neck; each level up
            halves them: C/8, C/4, C/2, C at 256, 128, 64, 32 for x8 with L = 7).
        num_blocks: L, the number of stages F_i = Block_i(LVPFB_i(F_{i-1}, ...)); odd for 'hourglass'.
        num_heads: heads of MDTA and DesA (body 'hourglass': on the neck, halved each level up, at least 1).
        priors: names of the prior contract (default: the paper's caption, description, mask, depth).
        fusion: 'lvpfb' (the paper), 'concat' (Model 2) or 'none' (the body reads no prior: with `prior_tail`
            the map priors act in the tail alone, Model 1 plus a prior tail).
        body: 'lr' (stages on the LR grid, PixelShuffle tail) or 'hourglass' (bicubic-upsampled face in,
            k = (L - 1) / 2 stages down, a neck, k up, skips between mirrored stages; a conv reconstructor).
        prior_tail: body 'lr', upsample pixelshuffle: SFT modulation from the map priors after each x2 of the tail
            (64, 128, 256 at x8).
        prior_tail_dim: channels of the map features in the prior tail (default: num_feat); fewer make the
            tail cheaper (its encoders run at up to HR size).
        prior_tail_skip: the last this many x2 of the prior tail (the finest grids) go unmodulated. At 1 the
            x8 tail modulates at 64 and 128, not at 256: maps stored at 128 (prior_size) say nothing new there,
            and that grid holds three quarters of the tail's work.
        spatial / capa / desa: SegA / DepA ('gate' | 'sft'), CapA ('gate' | 'film'), DesA ('gather' |
            'query'); the first of each is the paper's reading.
        upsample: body 'lr': 'pixelshuffle' (features at LR size) or 'pre' (bicubic to HR size first).
        transformer: 'restormer' (MDTA + GDFN) or 'swin' ((shifted-)window MHSA + GDFN).
        window_size: the 'swin' window, in feature pixels (ignored by 'restormer').
        text_dim: D_text of the stored text embeddings (512 CLIP B/32, 768 CLIP L/14, 384 MiniLM).
        num_classes: labels of the mask prior.
        prior_size: the side of the mask / depth maps the network is meant for (stores of another size are
            resized to each feature grid all the same; the model notes a coarser store).
        channels_last: keep weights and activations NHWC (faster on CPU, README "Benchmarks"). Same results
            either way.
    """

    def __init__(self,
                 num_in_ch=3,
                 num_out_ch=3,
                 scale=8,
                 num_feat=64,
                 num_blocks=7,
                 transformer_depth=2,
                 num_heads=4,
                 ffn_expansion=2.66,
                 priors=PAPER_PRIORS,
                 fusion='lvpfb',
                 body='lr',
                 prior_tail=False,
                 prior_tail_dim=None,
                 prior_tail_skip=0,
                 spatial='gate',
                 capa='gate',
                 desa='gather',
                 upsample='pixelshuffle',
                 transformer='restormer',
                 window_size=8,
                 text_dim=384,
                 num_classes=NUM_MASK_CLASSES,
                 prior_size=128,
                 channels_last=True):
        super().__init__()
        priors = tuple(priors or ())
        check_prior_names(priors, 'LLVFSRArch option `priors`')
        chosen = dict(fusion=fusion, body=body, upsample=upsample, transformer=transformer, spatial=spatial,
                      capa=capa, desa=desa)
        for opt, value in chosen.items():
            if value not in CHOICES[opt]:
                raise ValueError(f'LLVFSRArch: option `{opt}` must be one of {CHOICES[opt]}, got {value!r}')
        if prior_tail_dim is not None and (not isinstance(prior_tail_dim, int) or prior_tail_dim < 1):
            raise ValueError(f'LLVFSRArch: option `prior_tail_dim` must be a positive integer (channels), got '
                             f'{prior_tail_dim!r}')
        if scale < 1 or scale & (scale - 1):
            raise ValueError(f'LLVFSRArch: option `scale` must be a power of two, got {scale}')
        if body == 'hourglass' and (num_blocks % 2 == 0 or upsample != 'pixelshuffle' or prior_tail):
            raise ValueError('LLVFSRArch: body hourglass needs an odd num_blocks (k down, a neck, k up) and takes '
                             f'no `upsample: pre` / `prior_tail` (it works at HR size throughout); got num_blocks '
                             f'{num_blocks}, upsample {upsample!r}, prior_tail {prior_tail}')
        self.levels = (num_blocks - 1) // 2 if body == 'hourglass' else 0  # k
        k = self.levels
        dims = [num_feat >> (k - lv) for lv in range(k + 1)]  # level 0 = the grid of conv_first
        heads = [max(1, num_heads >> (k - lv)) for lv in range(k + 1)]
        for d, h in zip(dims, heads):
            if d < 1 or d % h:
                raise ValueError(f'LLVFSRArch: num_feat ({num_feat}) must be divisible by num_heads ({num_heads})'
                                 + (f' on every level of the hourglass (channels {dims}, heads {heads})' if k else ''))
        self.priors = canonical(priors)  # the contract's order: option files may list priors in any order
        if fusion == 'none' and self.priors and (not prior_tail or any(PRIORS[p].kind != 'map' for p in self.priors)):
            # (whether there is a tail to modulate: the prior_tail check below, for every fusion)
            raise ValueError(f'LLVFSRArch: option `fusion: none` leaves the body without priors; they then act only '
                             f'in the prior tail, which needs `prior_tail: true` and map priors only (mask, depth); '
                             f'got priors {list(self.priors)}, prior_tail {prior_tail}')
        self.body_priors = self.priors if fusion != 'none' else ()  # the priors the body's stages encode and fuse
        self.scale, self.upsample, self.fusion, self.body = scale, upsample, fusion, body
        self.text_dim, self.num_classes, self.prior_size = text_dim, num_classes, prior_size
        # stage i works on level stage_level[i]: 0..k-1 down, k the neck, k-1..0 up (all 0 for body 'lr')
        self.stage_level = list(range(k)) + [k] + list(range(k - 1, -1, -1)) if k else [0] * num_blocks

        self.conv_first = nn.Conv2d(num_in_ch, dims[0], 3, padding=1)  # F_0
        with own_random_stream():  # prior modules: the backbone draws what its Model 1 draws
            # prior encoders, shared by the fusion blocks of one level: <text>_proj (-> E_*), <map>_encoder
            # (-> F_*); the hourglass has one per level (<text>_projs, <map>_encoders)
            for p in self.body_priors:
                s = PRIORS[p]
                make = (lambda d: nn.Linear(text_dim, d)) if s.kind == 'text' else (
                    lambda d, s=s: ImageEncoder(s.in_channels(num_classes), d))
                name = f'{p}_proj' if s.kind == 'text' else f'{p}_encoder'
                if k:
                    setattr(self, name + 's', nn.ModuleList([make(d) for d in dims]))
                else:
                    setattr(self, name, make(num_feat))
            fusion_cls = LVPFB if fusion == 'lvpfb' else ConcatFusion
            variants = {'spatial': spatial, 'capa': capa, 'desa': desa}
            self.fusions = nn.ModuleList([fusion_cls(dims[lv], self.body_priors, heads[lv], variants)
                                          for lv in self.stage_level]) if self.body_priors else None
        self.blocks = nn.ModuleList([BasicBlock(dims[lv], heads[lv], ffn_expansion, transformer_depth, transformer,
                                                window_size) for lv in self.stage_level])
        if k:  # Restormer's resampling: conv + PixelUnshuffle (C -> 2C) / conv + PixelShuffle (C -> C/2)
            self.downs = nn.ModuleList([nn.Sequential(nn.Conv2d(dims[lv], dims[lv] // 2, 3, padding=1),
                                                      nn.PixelUnshuffle(2)) for lv in range(k)])
            self.ups = nn.ModuleList([nn.Sequential(nn.Conv2d(dims[lv + 1], dims[lv + 1] * 2, 3, padding=1),
                                                    nn.PixelShuffle(2)) for lv in reversed(range(k))])
            self.skip_fuse = nn.ModuleList([nn.Conv2d(dims[lv] * 2, dims[lv], 1) for lv in reversed(range(k))])
        else:
            self.conv_after_body = nn.Conv2d(num_feat, num_feat, 3, padding=1)
        self.tail_steps = int(math.log2(scale)) if body == 'lr' and upsample == 'pixelshuffle' else 0
        if not isinstance(prior_tail_skip, int) or not 0 <= prior_tail_skip < max(self.tail_steps, 1):
            raise ValueError(f'LLVFSRArch: option `prior_tail_skip` must be a whole number from 0 to '
                             f'{max(self.tail_steps - 1, 0)} (the tail has {self.tail_steps} x2 steps and at least '
                             f'one keeps its modulation), got {prior_tail_skip!r}')
        if prior_tail and not self.tail_steps:  # (body hourglass: refused above with its own reason)
            raise ValueError('LLVFSRArch: option `prior_tail: true` modulates the x2 steps of the PixelShuffle tail; '
                             '`upsample: pre` has no such tail (it upsamples before the body). Use upsample '
                             'pixelshuffle, or prior_tail false')
        if prior_tail_skip and not prior_tail:
            raise ValueError('LLVFSRArch: option `prior_tail_skip` leaves steps of the prior tail unmodulated and '
                             'needs `prior_tail: true`')
        if self.tail_steps:
            tail = []
            for _ in range(self.tail_steps):
                tail += [nn.Conv2d(num_feat, num_feat * 4, 3, padding=1), nn.PixelShuffle(2), nn.LeakyReLU(0.2, True)]
            self.upsampler = nn.Sequential(*tail)
        map_specs = [PRIORS[p] for p in self.priors if PRIORS[p].kind == 'map']
        with own_random_stream():
            self.tail_mods = nn.ModuleList([TailModulation(num_feat, map_specs, num_classes, prior_tail_dim)
                                            for _ in range(self.tail_steps - prior_tail_skip)
                                            ]) if prior_tail and map_specs else None
        self.conv_last = nn.Conv2d(dims[0], num_out_ch, 3, padding=1)  # the reconstructor
        self.channels_last = channels_last
        if channels_last:  # load_state_dict copies into these params, keeping their layout
            self.to(memory_format=torch.channels_last)

    # --------------------------------------------------------------------------------------------------
    def map_input(self, priors, p):
        """A map prior as the encoder reads it: label maps one-hot to `num_classes` channels."""
        x = priors[p]
        if PRIORS[p].values == 'labels':
            x = F.one_hot(x[:, 0].long().clamp(0, self.num_classes - 1), self.num_classes).permute(0, 3, 1, 2)
        return x

    def encode_priors(self, priors, size, dtype, level=0):
        """{symbol: encoded prior} for the stages of one level: E_* = (projected tokens, token mask) for text,
        F_* = the encoded map at that level's feature grid `size` for maps."""
        enc = {}
        for p in self.body_priors:
            s = PRIORS[p]
            name = f'{p}_proj' if s.kind == 'text' else f'{p}_encoder'
            module = getattr(self, name + 's')[level] if self.levels else getattr(self, name)
            if s.kind == 'text':
                enc[s.symbol] = (module(priors[f'{p}_tokens'].to(dtype)), priors[f'{p}_token_mask'].bool())
            else:
                enc[s.symbol] = module(self.map_input(priors, p).to(dtype), size)
        return enc

    def forward(self, lq, priors=None):
        priors = priors or {}
        if lq.dim() != 4:
            raise ValueError(f'LLVFSRArch: lq must be [B, C, H, W], got shape {tuple(lq.shape)}')
        check_inputs(self.priors, priors, lq.shape[0], self.text_dim)
        h, w = lq.shape[-2:]
        if self.levels and (h * self.scale % 2 ** self.levels or w * self.scale % 2 ** self.levels):
            raise ValueError(f'LLVFSRArch: body hourglass halves the HR grid {self.levels} times; '
                             f'{h * self.scale}x{w * self.scale} is not divisible by {2 ** self.levels}')
        if self.channels_last:
            lq = lq.contiguous(memory_format=torch.channels_last)
        base = F.interpolate(lq, size=(h * self.scale, w * self.scale), mode='bicubic', align_corners=False)
        body = self.forward_hourglass if self.levels else self.forward_lr
        return body(base if self.upsample == 'pre' or self.levels else lq, priors) + base

    def stage(self, i, feat, enc):
        """F_i = Block_i(LVPFB_i(F_{i-1}, E_C, E_D, F_S, F_D))"""
        if self.fusions is not None:
            feat = self.fusions[i](feat, enc)
        return self.blocks[i](feat)

    def forward_lr(self, x, priors):
        feat0 = self.conv_first(x)
        enc = self.encode_priors(priors, feat0.shape[-2:], feat0.dtype)
        feat = feat0
        for i in range(len(self.blocks)):
            feat = self.stage(i, feat, enc)
        feat = self.conv_after_body(feat) + feat0
        maps = {p: self.map_input(priors, p).to(feat.dtype) for p in self.priors
                if PRIORS[p].kind == 'map'} if self.tail_mods is not None else None
        for i in range(self.tail_steps):
            feat = self.upsampler[3 * i:3 * i + 3](feat)  # conv, PixelShuffle(2), LeakyReLU: one x2
            if self.tail_mods is not None and i < len(self.tail_mods):
                feat = self.tail_mods[i](feat, maps)
        return self.conv_last(feat)

    def forward_hourglass(self, x, priors):
        feat, enc, skips, k = self.conv_first(x), {}, [], self.levels
        for i, level in enumerate(self.stage_level):
            if i > k:  # up path: x2, then merge the output of the mirrored down stage
                feat = self.skip_fuse[i - k - 1](torch.cat([self.ups[i - k - 1](feat), skips.pop()], dim=1))
            if level not in enc:
                enc[level] = self.encode_priors(priors, feat.shape[-2:], feat.dtype, level)
            feat = self.stage(i, feat, enc[level])
            if i < k:
                skips.append(feat)
                feat = self.downs[i](feat)
        return self.conv_last(feat)


def arch_defaults():
    """LLVFSRArch's option defaults (for checks of an option file that leaves an option out)."""
    return {k: v.default for k, v in inspect.signature(LLVFSRArch.__init__).parameters.items()
            if v.default is not inspect.Parameter.empty}
