"""The record byte format and the stores: round trip, corruption, atomic and resumable writers."""
import numpy as np
import pytest

from llvfsr_plugin.errors import RecordError
from llvfsr_plugin.priors.contract import text_arrays
from llvfsr_plugin.priors.record import LMDB_META_KEY, decode_record, encode_record
from llvfsr_plugin.priors.store import PriorStore, PriorWriter


def test_record_roundtrip_and_corruption():
    arrays = text_arrays(np.random.rand(5, 8), np.array([1, 1, 1, 0, 0]), np.random.rand(8))
    blob = encode_record(arrays, {'text': 'a face', 'fallback': False})
    back, meta = decode_record(blob)
    assert meta['text'] == 'a face'
    for k in arrays:
        assert back[k].dtype == arrays[k].dtype and np.array_equal(back[k], arrays[k])
    assert encode_record(arrays, {'text': 'a face', 'fallback': False}) == blob  # deterministic bytes
    with pytest.raises(RecordError, match='checksum'):
        decode_record(blob[:-3] + b'xyz', where='k1')
    with pytest.raises(RecordError, match='bad magic'):
        decode_record(b'PNG....', where='k1')
    with pytest.raises(RecordError, match='NaN'):
        encode_record({'depth': np.array([[np.nan]], np.float16)})


def test_writer_is_atomic_and_resumable(tmp_path):
    path = str(tmp_path / 'depth.lmdb')
    meta = {'prior': 'depth', 'extractor': 'x', 'scale': 8}
    rec = {'depth': np.zeros((4, 4), np.float16)}
    w = PriorWriter(path, meta)
    w.put_records([('a', rec, {}), ('b', rec, {})])
    w.kv.close()  # "killed" before finalize
    with pytest.raises(FileNotFoundError, match='interrupted'):
        PriorStore(path)
    w = PriorWriter(path, meta)  # resumes
    assert w.has('a') and w.has('b') and not w.has('c')
    with pytest.raises(RecordError, match='still missing'):
        w.finalize(['a', 'b', 'c'])
    w.put_records([('c', rec, {})])
    w.finalize(['a', 'b', 'c'])
    s = PriorStore(path)
    assert s.keys() == ['a', 'b', 'c'] and s.meta['num_records'] == 3
    with pytest.raises(RecordError, match='other settings'):
        w = PriorWriter(str(tmp_path / 'x.lmdb'), meta)
        w.kv.close()
        PriorWriter(str(tmp_path / 'x.lmdb'), dict(meta, scale=16))
    assert LMDB_META_KEY not in [k.encode() for k in s.keys()]


def test_store_rebuilt_in_place_is_read_fresh(tmp_path):
    """A store rebuilt (--overwrite) at the same path while this process still reads the old one: readers
    see the new records, not the deleted file, and nothing is refused as 'already open'."""
    path = str(tmp_path / 'depth.lmdb')
    meta = {'prior': 'depth', 'extractor': 'x', 'scale': 8}
    old, new = ({'depth': np.full((4, 4), v, np.float16)} for v in (1, 2))
    w = PriorWriter(path, meta)
    w.put_records([('a', old, {})])
    w.finalize(['a'])
    reader = PriorStore(path)
    assert reader.get('a')[0]['depth'][0, 0] == 1
    w = PriorWriter(path, meta, overwrite=True)
    w.put_records([('a', new, {}), ('b', new, {})])
    w.finalize(['a', 'b'])
    for s in (reader, PriorStore(path)):
        assert s.keys() == ['a', 'b'] and s.get('a')[0]['depth'][0, 0] == 2
    abandoned = PriorWriter(str(tmp_path / 'y.lmdb'), meta)  # error path: released without finalizing
    abandoned.close()
    w = PriorWriter(str(tmp_path / 'y.lmdb'), meta)
    w.finalize([])
    assert PriorStore(str(tmp_path / 'y.lmdb')).keys() == []

