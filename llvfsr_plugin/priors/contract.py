"""The prior contract: what a prior is, defined once, in one table.

Everything else is derived from `PRIORS`: the arrays prep writes and validates, the dataset's batch keys,
augmentation and collate, the network's inputs, shape checks, encoders and fusion branches, and the
start-up checks of a store's meta against the network options.

One name per prior, from disk to network (`mask` as the example):

    store     <root>/<split>/priors_x<s>/mask.lmdb  (llvfsr_plugin.prep.layout), one record per image
    record    arrays {'mask': uint8 [h, w]}          (text: 'tokens' [T, D], 'token_mask' [T], 'pooled' [D])
    batch     'mask' [B, 1, h, w]                    (text: '<name>_tokens' [B, T, D], '<name>_token_mask' [B, T])
    network   LLVFSRArch(priors=['mask', ...]) reads batch['mask']; inside the network the *encoded* prior
              carries the paper's symbol (`PriorSpec.symbol`: E_C, E_D, F_S, F_D) and its fusion branch the
              paper's name (`PriorSpec.branch_name`: CapA, DesA, SegA, DepA).

A text record also stores `pooled` (the encoder's sentence vector) for analysis; it is not a network input.
Maps of any resolution are resized to the feature grid by the network.

Adding a prior is one `register_prior(PriorSpec(...))` and one extractor (`priors.extractors.register`);
a plugin module registered under the `basicsr.plugins` entry point does both (see README "Add a prior").
"""
import difflib
from dataclasses import dataclass

import numpy as np
import torch

from llvfsr_plugin.errors import OptionError, RecordError

# Label map written by the FaceMesh mask extractor (SAM's segments are not semantic: it writes area ranks).
MASK_LABELS = ('background', 'face', 'left_brow', 'right_brow', 'left_eye', 'right_eye', 'iris', 'nose',
               'lips', 'mouth')
NUM_MASK_CLASSES = len(MASK_LABELS)

TEXT_ARRAYS = {'tokens': ('float16', 2), 'token_mask': ('uint8', 1), 'pooled': ('float16', 1)}
BRANCHES = {'text': ('channel', 'cross'), 'map': ('spatial',)}


@dataclass(frozen=True)
class PriorSpec:
    """One prior.

    Args:
        name (str): the one name of the prior: store file, record array (maps), batch key, network option.
        kind (str): 'text' (token embeddings) or 'map' (an image-aligned map).
        symbol (str): the encoded prior inside the network, as the paper names it (E_C, F_S, ...).
        branch (str): the LVPFB attention that fuses it: 'channel' (CapA: pooled text -> channel attention),
            'cross' (DesA: cross-attention with the text tokens) or 'spatial' (SegA / DepA: spatial attention
            from the encoded map).
        branch_name (str): the paper's name of that branch (module `branch_name.lower()` of each LVPFB).
        values (str): maps only: 'labels' (uint8 label map, one-hot with `num_classes` channels in the
            network) or 'continuous' (float16 in [0, 1], one channel).
    """
    name: str
    kind: str
    symbol: str
    branch: str
    branch_name: str
    values: str = 'continuous'

    def __post_init__(self):
        if self.kind not in BRANCHES or self.branch not in BRANCHES[self.kind]:
            raise ValueError(f'prior {self.name!r}: kind {self.kind!r} with branch {self.branch!r}; a text prior '
                             f'uses {BRANCHES["text"]}, a map prior uses {BRANCHES["map"]}')
        if self.values not in ('labels', 'continuous'):
            raise ValueError(f"prior {self.name!r}: values must be 'labels' or 'continuous'")

    @property
    def arrays(self):
        """{array name: (dtype, rank)} of a record."""
        if self.kind == 'text':
            return dict(TEXT_ARRAYS)
        return {self.name: ('uint8' if self.values == 'labels' else 'float16', 2)}

    @property
    def batch_keys(self):
        """The tensors this prior puts into a batch (and `LLVFSRArch.forward` reads)."""
        return [f'{self.name}_tokens', f'{self.name}_token_mask'] if self.kind == 'text' else [self.name]

    @property
    def meta_checks(self):
        """(store meta field, network option) pairs that must agree; `scale` for every prior."""
        labels = [('num_classes', 'num_classes')] if self.values == 'labels' else []
        extra = {'text': [('text_dim', 'text_dim')], 'map': labels}
        return [('scale', 'scale')] + extra[self.kind]

    def in_channels(self, num_classes):
        """Channels of the encoded map's input (maps only)."""
        return num_classes if self.values == 'labels' else 1


PRIORS = {}  # name -> PriorSpec, in registration order (the canonical order of priors everywhere)


def register_prior(spec):
    """Add a prior to the contract (idempotent for an identical spec)."""
    if spec.name in PRIORS and PRIORS[spec.name] != spec:
        raise ValueError(f'prior {spec.name!r} is registered already with another spec: {PRIORS[spec.name]}')
    PRIORS[spec.name] = spec
    return spec


for _spec in (PriorSpec('caption', 'text', 'E_C', 'channel', 'CapA'),
              PriorSpec('description', 'text', 'E_D', 'cross', 'DesA'),
              PriorSpec('mask', 'map', 'F_S', 'spatial', 'SegA', values='labels'),
              PriorSpec('depth', 'map', 'F_D', 'spatial', 'DepA')):
    register_prior(_spec)
PAPER_PRIORS = tuple(PRIORS)  # the paper's four, LLVFSRArch's default
# arrays written under another name by earlier versions: {prior: {old name: name}}
LEGACY_ARRAYS = {'mask': {'labels': 'mask'}}


def canonical(names):
    """Known names in the contract's order (option files may list priors in any order)."""
    return tuple(p for p in PRIORS if p in set(names))


def check_prior_names(names, where):
    """Raise OptionError naming unknown priors (with a did-you-mean) at `where`."""
    bad = [n for n in names if n not in PRIORS]
    if bad:
        hints = {n: difflib.get_close_matches(str(n), list(PRIORS), n=1) for n in bad}
        hint = '; '.join(f'{n!r} -> did you mean {h[0]!r}?' for n, h in hints.items() if h)
        raise OptionError(f'{where}: unknown prior name(s) {bad}. Known: {list(PRIORS)}. {hint}')


# ============================================================================================ records
def check_arrays(name, arrays, where='record'):
    """Validate a record's arrays (names, dtypes, ranks, finite values, text consistency)."""
    if name not in PRIORS:
        raise RecordError(f'{where}: unknown prior {name!r}; known: {list(PRIORS)}')
    for a_name, (dtype, rank) in PRIORS[name].arrays.items():
        if a_name not in arrays:
            raise RecordError(f'{where}: prior {name!r} record lacks array {a_name!r}')
        a = arrays[a_name]
        if a.dtype != np.dtype(dtype) or a.ndim != rank:
            raise RecordError(f'{where}: array {a_name!r} must be {dtype} with {rank} dims, '
                              f'got {a.dtype} {tuple(a.shape)}')
        if a.dtype.kind == 'f' and not np.isfinite(a).all():
            raise RecordError(f'{where}: array {a_name!r} contains NaN/inf')
    if PRIORS[name].kind == 'text':
        t, m, p = arrays['tokens'], arrays['token_mask'], arrays['pooled']
        if m.shape[0] != t.shape[0] or p.shape[0] != t.shape[1]:
            raise RecordError(f'{where}: inconsistent text shapes tokens {t.shape}, token_mask {m.shape}, '
                              f'pooled {p.shape}')
        if not m.any():
            raise RecordError(f'{where}: text prior has no real token (empty text?)')


def rename_legacy(name, arrays):
    """Arrays of a record written by an earlier version, under today's names."""
    old = LEGACY_ARRAYS.get(name, {})
    return {old.get(k, k): v for k, v in arrays.items()}


def text_arrays(tokens, token_mask, pooled):
    """A text prior's record arrays in the stored dtypes."""
    return {'tokens': np.asarray(tokens, np.float16), 'token_mask': np.asarray(token_mask, np.uint8),
            'pooled': np.asarray(pooled, np.float16)}


def map_array(name, a):
    """A map prior's record array in its stored dtype."""
    return {name: np.asarray(a, PRIORS[name].arrays[name][0])}


# ============================================================================================== batches
def to_tensors(name, arrays):
    """Record arrays -> the per-sample tensors named by `batch_keys` (no batch dim; maps [1, h, w])."""
    s = PRIORS[name]
    if s.kind == 'text':
        return {f'{name}_tokens': torch.from_numpy(arrays['tokens'].astype(np.float32)),
                f'{name}_token_mask': torch.from_numpy(arrays['token_mask'].astype(bool))}
    dtype = np.int64 if s.values == 'labels' else np.float32
    return {name: torch.from_numpy(np.ascontiguousarray(arrays[name]).astype(dtype))[None]}


def collate(batch):
    """Default collate, except text tokens and masks are right-padded to the longest in the batch (the
    network ignores padded tokens). The `collate_fn` of PriorPairedDataset and of inference."""
    batch = [dict(b) for b in batch]
    for s in PRIORS.values():
        tk, mk = s.batch_keys[0], s.batch_keys[-1]
        if s.kind != 'text' or tk not in batch[0]:
            continue
        t_max = max(b[tk].shape[0] for b in batch)
        for b in batch:
            pad = t_max - b[tk].shape[0]
            if pad:
                b[tk] = torch.nn.functional.pad(b[tk], (0, 0, 0, pad))
                b[mk] = torch.nn.functional.pad(b[mk], (0, pad), value=False)
    return torch.utils.data.default_collate(batch)


def blank_like(name, tensors):
    """A sample's tensors of prior `name` with the prior's information removed, shaped as `tensors`: text one
    real all-zero token, maps all zeros (mask: background). What prior dropout trains on and what inference
    feeds for an absent prior, so the network has seen it."""
    s = PRIORS[name]
    if s.kind == 'text':
        t = tensors[f'{name}_tokens']
        return {f'{name}_tokens': t.new_zeros(1, t.shape[-1]), f'{name}_token_mask': torch.ones(1, dtype=torch.bool)}
    return {name: torch.zeros_like(tensors[name])}


def batch_keys(names):
    return [k for n in names for k in PRIORS[n].batch_keys]


def check_inputs(names, priors, batch, text_dim, where='LLVFSRArch'):
    """The network's input check: every key of `names` present with its batch shape."""
    missing = [k for k in batch_keys(names) if k not in priors]
    if missing:
        raise KeyError(f'{where}: prior input(s) {missing} missing; the network was built with option '
                       f'`priors: {list(names)}`. Provide them (dataset option `priors`) or remove the prior '
                       f'from network_g.priors.')
    for n in names:
        s = PRIORS[n]
        if s.kind == 'text':
            t, m = priors[f'{n}_tokens'], priors[f'{n}_token_mask']
            if t.dim() != 3 or t.shape[0] != batch or t.shape[2] != text_dim:
                raise ValueError(f'{where}: {n}_tokens must be [B={batch}, T, D_text={text_dim}] (option '
                                 f'network_g.text_dim), got {tuple(t.shape)}')
            if tuple(m.shape) != tuple(t.shape[:2]):
                raise ValueError(f'{where}: {n}_token_mask must be [B, T]={tuple(t.shape[:2])}, got {tuple(m.shape)}')
        elif priors[n].dim() != 4 or priors[n].shape[0] != batch or priors[n].shape[1] != 1:
            raise ValueError(f'{where}: prior {n!r} must be [B={batch}, 1, h, w], got {tuple(priors[n].shape)}')


def check_store_meta(name, meta, net_opts, where):
    """A store's meta against the (resolved) network options, per `PriorSpec.meta_checks`."""
    for field, option in PRIORS[name].meta_checks:
        have, want = meta.get(field), net_opts.get(option)
        if have is not None and want is not None and have != want:
            made = (f"embedded by {meta.get('text_encoder')} with dim" if field == 'text_dim' else f'made with {field}')
            raise OptionError(f'prior {name!r} of {where} was {made} {have}, but network_g.{option} is {want}; set '
                              f'network_g.{option}: {have} or remake the prior store')


# ======================================================================================== augmentation
def mirror_permutation(meta):
    """Label permutation for a mirrored label map: swaps `left_*` and `right_*` labels named in the store
    meta's `labels` (a mirrored face's left eye is the right eye). None where labels are not semantic."""
    labels = meta.get('labels')
    if not isinstance(labels, (list, tuple)):
        return None
    perm = np.arange(max(len(labels), 256), dtype=np.uint8)
    for i, lab in enumerate(labels):
        for a, b in (('left_', 'right_'), ('right_', 'left_')):
            if lab.startswith(a) and lab.replace(a, b, 1) in labels:
                perm[i] = labels.index(lab.replace(a, b, 1))
    return perm


# ================================================================================================ tests
def fake_priors(b=2, names=None, text_len=7, text_dim=384, size=24, num_classes=NUM_MASK_CLASSES, seed=0):
    """Random batch tensors for `names` (default: every registered prior), shaped as a real batch: text
    `text_len` tokens (an int or {prior: int}) with the last two of the first sample padded, maps
    [b, 1, size, size]. For tests and benchmarks."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for n in (names if names is not None else PRIORS):
        s = PRIORS[n]
        if s.kind == 'text':
            t = text_len[n] if isinstance(text_len, dict) else text_len
            mask = torch.ones(b, t, dtype=torch.bool)
            if t > 3:
                mask[0, -2:] = False
            out.update({f'{n}_tokens': torch.randn(b, t, text_dim, generator=g), f'{n}_token_mask': mask})
        elif s.values == 'labels':
            out[n] = torch.randint(0, num_classes, (b, 1, size, size), generator=g)
        else:
            out[n] = torch.rand(b, 1, size, size, generator=g)
    return out
