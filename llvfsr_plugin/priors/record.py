"""The byte format of one prior record, used by prep (writers) and the stores (readers). What a record
must hold is the prior contract's business (`llvfsr_plugin.priors.contract`).

One store per prior per scale (`llvfsr_plugin.prep.layout`); each image key maps to one *record*:

    b'LLVP1' | uint32 header_len | header JSON | raw array bytes
    header = {"meta": {...}, "arrays": {name: {"dtype", "shape", "offset", "nbytes"}}, "crc32": int}

Record meta (per image): 'source' (the LR image key/path), 'fallback' (bool: the extractor did not find a
face and wrote the mean prior), 'text' for text priors.

The store's own meta (key `__meta__`, JSON) describes how every record was made: prior, extractor, model id,
checkpoint hash, text encoder and its dims, prior resolution, scale, oracle flag, num_classes.
"""
import json
import struct
import zlib

import numpy as np

from llvfsr_plugin.errors import RecordError

MAGIC = b'LLVP1'
LMDB_META_KEY = b'__meta__'


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
