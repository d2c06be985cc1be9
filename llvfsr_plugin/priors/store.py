"""Key-value stores for prep outputs: LMDB directories (BasicSR's format for images, one per prior per
scale for priors) or, for small sets, folders of files. Writers are resumable and atomic; readers open
lazily (fork/spawn safe in DataLoader workers).

Atomicity: a writer works in `<path>.partial`; only `finalize()` (after every expected key is present)
renames it to `<path>`. A killed run leaves `<path>.partial`, which no reader opens; a rerun resumes from
it (keys already written are skipped). Each write is one LMDB transaction (or an fsync'ed file rename):
a record is present whole or absent.
"""
import hashlib
import json
import os
import shutil
import struct

import lmdb

from llvfsr_plugin.errors import RecordError, StoreCorrupt, StoreNotFound, WriteFailed
from llvfsr_plugin.prep.layout import parse
from llvfsr_plugin.priors.contract import check_arrays, rename_legacy
from llvfsr_plugin.priors.record import LMDB_META_KEY, decode_record, encode_record

RECORD_EXT = '.llvp'
FOLDER_META = 'meta.json'
# LMDB reserves address space, not disk: 1 TiB never needs to grow on 64-bit (no MapFullError).
LMDB_MAP_SIZE = 1 << 40


def _atomic_write(path, data):
    tmp = path + '.tmp'
    with open(tmp, 'wb') as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def is_lmdb(path):
    return os.path.isfile(os.path.join(path, 'data.mdb'))


LMDB_MAGIC = 0xBEEFC0DE


def rebuild_hint(path):
    """The command that rebuilds the store at `path` (by its place in llvfsr_plugin.prep.layout)."""
    where = parse(path)
    if where is None:
        return 'rebuild it with the command that wrote it'
    root, scale, prior = where
    if prior:
        return f'rebuild it: python datasets_prep/extract_priors.py --root {root} --scales {scale} --priors {prior} ' \
               f'--overwrite'
    return f'rebuild it: python datasets_prep/make_dataset.py ... --out {root} --overwrite'


def check_lmdb_file(path):
    """Refuse an LMDB whose data.mdb is empty, not an LMDB, or shorter than its own meta pages say (an
    interrupted copy): LMDB would misread it, or kill the process with SIGBUS when it touches a page
    beyond the end of the file."""
    f = os.path.join(path, 'data.mdb')
    size = os.path.getsize(f)
    with open(f, 'rb') as fh:
        head = fh.read(16 + 152)
        metas = []
        if len(head) == 168 and struct.unpack_from('<I', head, 16)[0] == LMDB_MAGIC:
            psize = struct.unpack_from('<I', head, 40)[0]
            fh.seek(psize)
            metas = [head, fh.read(168)] if 512 <= psize <= 1 << 16 else []
    what = ('is empty' if size == 0 else 'is not an LMDB file (no LMDB meta page)')
    valid = [m for m in metas if len(m) == 168 and struct.unpack_from('<I', m, 16)[0] == LMDB_MAGIC]
    if valid:
        last_pg, _ = max((struct.unpack_from('<QQ', m, 136) for m in valid), key=lambda t: t[1])
        need = (last_pg + 1) * struct.unpack_from('<I', valid[0], 40)[0]
        if size >= need:
            return
        what = f'is truncated ({size} of {need} bytes: an interrupted copy?)'
    raise StoreCorrupt(f'{path}: data.mdb {what}; {rebuild_hint(path)}')


# (pid, realpath) -> (env, identity of data.mdb). LMDB must not open one environment twice in a process
# (lmdb.h), so every reader of a path shares one env; the file identity catches a store rebuilt at the
# same path (rmtree + rename) since the env was opened, which would otherwise keep serving the old file.
_READ_ENVS = {}


def _file_id(path):
    st = os.stat(os.path.join(path, 'data.mdb'))
    return st.st_dev, st.st_ino


def _read_env(path):
    key = (os.getpid(), os.path.realpath(path))
    env, fid = _READ_ENVS.get(key, (None, None))
    now = _file_id(path)
    if env is not None and fid != now:
        _forget_read_env(path)
        env = None
    if env is None:
        check_lmdb_file(path)
        env = lmdb.open(path, readonly=True, lock=False, readahead=False, meminit=False)
        _READ_ENVS[key] = (env, now)
    return env


def _forget_read_env(path):
    env, _ = _READ_ENVS.pop((os.getpid(), os.path.realpath(path)), (None, None))
    if env is not None:
        env.close()


class _LmdbKV:

    def __init__(self, path, write):
        self.path, self.write = path, write
        self.env = None

    def _env(self):
        if not self.write:  # shared per path and process; looked up each time (a stat) so never stale
            return _read_env(self.path)
        if self.env is None:
            _forget_read_env(self.path)
            if is_lmdb(self.path):
                check_lmdb_file(self.path)
            self.env = lmdb.open(self.path, map_size=LMDB_MAP_SIZE)
        return self.env

    def get(self, key):
        with self._env().begin() as txn:
            return txn.get(key)

    def keys(self):
        with self._env().begin() as txn:
            return [k for k in txn.cursor().iternext(values=False) if k != LMDB_META_KEY]

    def put_many(self, items):
        try:
            with self._env().begin(write=True) as txn:
                for k, v in items:
                    txn.put(k, v)
        except lmdb.Error as e:
            raise WriteFailed(f'{self.path}: write failed ({e}); disk full? Nothing half-written stays: free '
                              f'space and rerun to resume') from e

    def close(self):
        if not self.write:
            _forget_read_env(self.path)
        elif self.env is not None:
            self.env.sync(True)
            self.env.close()
            self.env = None


class _FolderKV:

    def __init__(self, path, write):
        self.path = path

    def _file(self, key):
        return os.path.join(self.path, FOLDER_META if key == LMDB_META_KEY else key.decode() + RECORD_EXT)

    def get(self, key):
        p = self._file(key)
        return open(p, 'rb').read() if os.path.isfile(p) else None

    def keys(self):
        return sorted(f[:-len(RECORD_EXT)].encode() for f in os.listdir(self.path) if f.endswith(RECORD_EXT))

    def put_many(self, items):
        for k, v in items:
            _atomic_write(self._file(k), v)

    def close(self):
        pass


def content_digest(items):
    """sha256 over the (key, sha256(value)) pairs of a store, in key order (independent of write order)."""
    h = hashlib.sha256()
    for k, v in sorted(items):
        h.update(k.encode() + b'\0' + hashlib.sha256(v).digest())
    return h.hexdigest()[:32]


class Store:
    """Read-only access to a finished store (`<path>` with meta under `__meta__`)."""

    def __init__(self, path):
        self.path = path
        if not os.path.isdir(path):
            hint = (' (a previous prep was interrupted; rerun it to resume and finish)'
                    if os.path.isdir(path + '.partial') else '')
            raise StoreNotFound(f'store not found: {path}{hint}')
        if is_lmdb(path):
            check_lmdb_file(path)
        self.kv = (_LmdbKV if is_lmdb(path) else _FolderKV)(path, write=False)
        self._meta = None

    def __getstate__(self):  # LMDB handles must not cross process boundaries
        d = dict(self.__dict__)
        d['kv'] = type(self.kv)(self.path, write=False)
        return d

    @property
    def meta(self):
        if self._meta is None:
            raw = self.kv.get(LMDB_META_KEY)
            if raw is None:
                raise RecordError(f'{self.path}: no `__meta__`; not written by datasets_prep? Rebuild it.')
            self._meta = json.loads(raw)
        return self._meta

    def keys(self):
        return [k.decode() for k in self.kv.keys()]

    @staticmethod
    def partial_keys(tmp_path):
        """Keys already in an unfinished `<path>.partial` (for resuming and sharding)."""
        kv = _LmdbKV(tmp_path, write=False)
        try:
            return [k.decode() for k in kv.keys()]
        finally:
            kv.close()

    @staticmethod
    def partial_items(tmp_path):
        kv = _LmdbKV(tmp_path, write=False)
        try:
            return [(k.decode(), kv.get(k)) for k in kv.keys()]
        finally:
            kv.close()

    def digest(self):
        """The store's content digest: from its meta (written by finalize) or computed (stores of earlier
        versions)."""
        return self.meta.get('content_sha256') or content_digest((k, self.get_bytes(k)) for k in self.keys())

    def get_bytes(self, key):
        raw = self.kv.get(key.encode())
        if raw is None:
            raise KeyError(f'key {key!r} missing in {self.path}')
        return raw


def provenance_problem(derived, source, field):
    """A message if `derived` (its meta `field`: the digest of the store it was made from) was not made from
    `source`; None if it was, or if either store predates digests (BasicSR's own LMDBs have no meta)."""
    def meta(st):
        try:
            return st.meta
        except RecordError:
            return {}
    want, have = meta(derived).get(field), meta(source).get('content_sha256')
    if want and have and want != have:
        return (f'{derived.path} was not made from {source.path} (it records data digest {want[:12]}, that store '
                f'holds {have[:12]}): a store of another dataset, or one rebuilt since')
    return None


class PriorStore(Store):
    """A finished prior store: `get(key)` -> (arrays, record meta), checksum and specs verified."""

    def get(self, key):
        where = f'{self.path}[{key}]'
        arrays, meta = decode_record(self.get_bytes(key), where=where)
        arrays = rename_legacy(self.meta['prior'], arrays)
        check_arrays(self.meta['prior'], arrays, where=where)
        return arrays, meta


class Writer:
    """Resumable, atomic writer.

        w = Writer(path, meta)                 # resumes <path>.partial if its meta matches, else refuses
        todo = [k for k in keys if not w.has(k)]
        w.put_many([(key, value_bytes), ...])  # one transaction
        w.finalize(expected_keys)              # check completeness, then rename .partial -> path

    With `overwrite`, a finished store at `path` stays readable until the new one is complete: finalize
    moves it aside and renames the new one in its place, so a failed rebuild loses nothing.
    The final meta holds `content_sha256`, a digest of every (key, value): what a store made from this one
    records, so a store can be checked against the data it came from.
    """

    def __init__(self, path, meta, fmt='lmdb', overwrite=False):
        self.path, self.meta = path, json.loads(json.dumps(meta))
        self.tmp = path + '.partial'
        if os.path.isdir(path) and not overwrite:
            raise FileExistsError(f'{path} exists; pass --overwrite to rebuild it')
        os.makedirs(self.tmp, exist_ok=True)
        self.kv = (_LmdbKV if fmt == 'lmdb' else _FolderKV)(self.tmp, write=True)
        old = self.kv.get(LMDB_META_KEY)
        if old is not None and json.loads(old) != self.meta:
            raise RecordError(f'{self.tmp}: an interrupted run with other settings is there\n  there: '
                              f'{json.loads(old)}\n  now:   {self.meta}\ndelete it or rerun with the same settings')
        if old is None:
            self.kv.put_many([(LMDB_META_KEY, json.dumps(self.meta, sort_keys=True).encode())])
        self.done = {k.decode() for k in self.kv.keys()}

    def has(self, key):
        return key in self.done

    def put_many(self, items):
        self.kv.put_many([(k.encode(), v) for k, v in items])
        self.done.update(k for k, _ in items)

    FINAL_FIELDS = ('num_records', 'content_sha256')  # what finalize adds to the meta the writer was given

    @classmethod
    def given_meta(cls, meta):
        """A finished store's meta without the fields finalize added: the meta to write a store like it with."""
        return {k: v for k, v in meta.items() if k not in cls.FINAL_FIELDS}

    def finalize(self, expected_keys, extra_files=None, extra_meta=None):
        missing = sorted(set(expected_keys) - self.done)
        if missing:
            raise RecordError(f'{self.tmp}: {len(missing)} key(s) still missing (e.g. {missing[:5]}); not '
                              f'finalizing')
        digest = content_digest((k, self.kv.get(k.encode())) for k in self.done)
        added = dict(zip(self.FINAL_FIELDS, (len(self.done), digest)))  # num_records, content_sha256
        final_meta = dict(self.meta, **(extra_meta or {}), **added)
        self.kv.put_many([(LMDB_META_KEY, json.dumps(final_meta, sort_keys=True).encode())])
        for name, data in (extra_files or {}).items():
            _atomic_write(os.path.join(self.tmp, name), data)
        self.kv.close()
        _forget_read_env(self.path)
        old = self.path + '.old'
        if os.path.isdir(self.path):  # --overwrite: the old store goes only now that the new one is complete
            shutil.rmtree(old, ignore_errors=True)
            os.replace(self.path, old)
        os.replace(self.tmp, self.path)
        shutil.rmtree(old, ignore_errors=True)
        return self.path

    def close(self):
        """Release the store without finalizing (error paths); the `.partial` stays for a rerun."""
        self.kv.close()


class PriorWriter(Writer):
    """Writer of prior records (`record.encode_record`), checked against the prior's array specs."""

    def put_records(self, items):
        """[(key, arrays, record_meta)] in one transaction."""
        blobs = []
        for key, arrays, rmeta in items:
            check_arrays(self.meta['prior'], arrays, where=f'{self.tmp}[{key}]')
            blobs.append((key, encode_record(arrays, rmeta)))
        self.put_many(blobs)
