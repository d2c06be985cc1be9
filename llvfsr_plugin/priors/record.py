"""The record format of a prior, defined once and used by prep (writers) and PriorPairedDataset (readers).

One LMDB per prior per scale. Each image key maps to one *record*:

    b'LLVP1' | uint32 header_len | header JSON | raw array bytes
    header = {"meta": {...}, "arrays": {name: {"dtype", "shape", "offset", "nbytes"}}, "crc32": int}

Arrays per prior (what the extractor writes):
    caption / description : tokens [T, D] float16, token_mask [T] uint8 (1 = real token), pooled [D] float16
    mask                  : labels [h, w] uint8 (label map, see MASK_LABELS)
    depth                 : depth  [h, w] float16 in [0, 1], 1 = nearest to the camera
Record meta (per image): 'source' (the LR image key/path), 'fallback' (bool: the extractor did not find a
face and wrote the mean prior), 'text' for text priors.

The LMDB's own meta (key `__meta__`, JSON) describes how every record was made: prior, extractor, model id,
checkpoint hash, text encoder and its dims, prior resolution, scale, oracle flag, num_classes.

Tensors given to the network (`tensor_keys`): `<text>_tokens` [T, D], `<text>_token_mask` [T] bool,
`<text>_pooled` [D]; `mask` [1, h, w] int64; `depth` [1, h, w] float32.
"""
import json
import struct
import zlib

import numpy as np

PRIOR_NAMES = ('caption', 'description', 'mask', 'depth')
TEXT_PRIORS = ('caption', 'description')
MAP_PRIORS = ('mask', 'depth')

MAGIC = b'LLVP1'
LMDB_META_KEY = b'__meta__'

# Label map used by every mask extractor. FaceMesh fills these semantic labels; SAM's automatic masks are
# not semantic, so the SAM extractor orders its segments by (area desc) and writes rank+1, capped at
# num_classes-1 (documented in llvfsr_plugin/priors/extractors.py).
MASK_LABELS = ('background', 'face', 'left_brow', 'right_brow', 'left_eye', 'right_eye', 'iris', 'nose',
               'lips', 'mouth')
NUM_MASK_CLASSES = len(MASK_LABELS)

# which arrays each prior must contain, with dtype and rank
ARRAY_SPECS = {
    'caption': {'tokens': ('float16', 2), 'token_mask': ('uint8', 1), 'pooled': ('float16', 1)},
    'description': {'tokens': ('float16', 2), 'token_mask': ('uint8', 1), 'pooled': ('float16', 1)},
    'mask': {'labels': ('uint8', 2)},
    'depth': {'depth': ('float16', 2)},
}


class RecordError(ValueError):
    pass


def encode_record(arrays, meta=None):
    """dict of numpy arrays (+ JSON-able meta) -> bytes. Deterministic for equal inputs."""
    specs, chunks, offset = {}, [], 0
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        if a.dtype.kind == 'f' and not np.isfinite(a).all():
            raise RecordError(f'array {name!r} contains NaN/inf; refusing to write it')
        b = a.tobytes()
        specs[name] = {'dtype': a.dtype.str, 'shape': list(a.shape), 'offset': offset, 'nbytes': len(b)}
        chunks.append(b)
        offset += len(b)
    payload = b''.join(chunks)
    header = json.dumps({'meta': meta or {}, 'arrays': specs, 'crc32': zlib.crc32(payload)},
                        sort_keys=True).encode()
    return MAGIC + struct.pack('<I', len(header)) + header + payload


def decode_record(blob, where='record'):
    """bytes -> (arrays, meta). Raises RecordError naming `where` on any corruption."""
    blob = bytes(blob)
    if not blob.startswith(MAGIC):
        raise RecordError(f'{where}: not an llvfsr prior record (bad magic); was this LMDB written by '
                          f'datasets_prep? Rebuild it with datasets_prep/extract_priors.py')
    (hlen,) = struct.unpack_from('<I', blob, len(MAGIC))
    start = len(MAGIC) + 4
    try:
        header = json.loads(blob[start:start + hlen])
    except ValueError as e:
        raise RecordError(f'{where}: corrupt record header ({e})') from None
    payload = blob[start + hlen:]
    if zlib.crc32(payload) != header['crc32']:
        raise RecordError(f'{where}: checksum mismatch (truncated or corrupt record)')
    arrays = {}
    for name, s in header['arrays'].items():
        raw = payload[s['offset']:s['offset'] + s['nbytes']]
        arrays[name] = np.frombuffer(raw, dtype=np.dtype(s['dtype'])).reshape(s['shape'])
    return arrays, header['meta']


def check_arrays(prior, arrays, where='record'):
    """Validate names, dtypes and ranks of a prior's arrays against ARRAY_SPECS."""
    if prior not in ARRAY_SPECS:
        raise RecordError(f'{where}: unknown prior {prior!r}; known: {list(ARRAY_SPECS)}')
    for name, (dtype, rank) in ARRAY_SPECS[prior].items():
        if name not in arrays:
            raise RecordError(f'{where}: prior {prior!r} record lacks array {name!r}')
        a = arrays[name]
        if a.dtype != np.dtype(dtype) or a.ndim != rank:
            raise RecordError(f'{where}: array {name!r} must be {dtype} with {rank} dims, '
                              f'got {a.dtype} {tuple(a.shape)}')
        if a.dtype.kind == 'f' and not np.isfinite(a).all():
            raise RecordError(f'{where}: array {name!r} contains NaN/inf')
    if prior in TEXT_PRIORS:
        t, m, p = arrays['tokens'], arrays['token_mask'], arrays['pooled']
        if m.shape[0] != t.shape[0] or p.shape[0] != t.shape[1]:
            raise RecordError(f'{where}: inconsistent text shapes tokens {t.shape}, token_mask {m.shape}, '
                              f'pooled {p.shape}')
        if not m.any():
            raise RecordError(f'{where}: text prior has no real token (empty text?)')


def tensor_keys(prior):
    """Names of the tensors a prior contributes to a batch (and to `LLVFSRArch.forward`)."""
    if prior in TEXT_PRIORS:
        return [f'{prior}_tokens', f'{prior}_token_mask', f'{prior}_pooled']
    if prior in MAP_PRIORS:
        return [prior]
    raise KeyError(prior)


def arrays_to_tensors(prior, arrays):
    """Record arrays -> the per-sample tensors named by `tensor_keys` (no batch dim)."""
    import torch
    if prior in TEXT_PRIORS:
        return {
            f'{prior}_tokens': torch.from_numpy(arrays['tokens'].astype(np.float32)),
            f'{prior}_token_mask': torch.from_numpy(arrays['token_mask'].astype(bool)),
            f'{prior}_pooled': torch.from_numpy(arrays['pooled'].astype(np.float32)),
        }
    if prior == 'mask':
        return {'mask': torch.from_numpy(arrays['labels'].astype(np.int64))[None]}
    if prior == 'depth':
        return {'depth': torch.from_numpy(arrays['depth'].astype(np.float32))[None]}
    raise KeyError(prior)


def text_arrays(tokens, token_mask, pooled):
    """Build a text prior's arrays in the stored dtypes."""
    return {'tokens': np.asarray(tokens, np.float16), 'token_mask': np.asarray(token_mask, np.uint8),
            'pooled': np.asarray(pooled, np.float16)}
