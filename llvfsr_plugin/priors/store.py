"""Key-value stores for prep outputs: LMDB directories (BasicSR's format for images, one per prior per
scale for priors) or, for small sets, folders of files. Writers are resumable and atomic; readers open
lazily (fork/spawn safe in DataLoader workers).

Atomicity: a writer works in `<path>.partial`; only `finalize()` (after every expected key is present)
renames it to `<path>`. A killed run leaves `<path>.partial`, which no reader opens; a rerun resumes from
it (keys already written are skipped). Each write is one LMDB transaction (or an fsync'ed file rename):
a record is present whole or absent.
"""
import json
import os
import shutil

import lmdb

from llvfsr_plugin.errors import RecordError, StoreNotFound
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
            raise OSError(f'{self.path}: write failed ({e}); disk full? Nothing half-written stays: free '
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


class Store:
    """Read-only access to a finished store (`<path>` with meta under `__meta__`)."""

    def __init__(self, path):
        self.path = path
        if not os.path.isdir(path):
            hint = (' (a previous prep was interrupted; rerun it to resume and finish)'
                    if os.path.isdir(path + '.partial') else '')
            raise StoreNotFound(f'store not found: {path}{hint}')
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

    def get_bytes(self, key):
        raw = self.kv.get(key.encode())
        if raw is None:
            raise KeyError(f'key {key!r} missing in {self.path}')
        return raw


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
    """

    def __init__(self, path, meta, fmt='lmdb', overwrite=False):
        self.path, self.meta = path, json.loads(json.dumps(meta))
        self.tmp = path + '.partial'
        if os.path.isdir(path):
            if not overwrite:
                raise FileExistsError(f'{path} exists; pass --overwrite to rebuild it')
            _forget_read_env(path)
            shutil.rmtree(path)
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

    def finalize(self, expected_keys, extra_files=None):
        missing = sorted(set(expected_keys) - self.done)
        if missing:
            raise RecordError(f'{self.tmp}: {len(missing)} key(s) still missing (e.g. {missing[:5]}); not '
                              f'finalizing')
        final_meta = dict(self.meta, num_records=len(self.done))
        self.kv.put_many([(LMDB_META_KEY, json.dumps(final_meta, sort_keys=True).encode())])
        for name, data in (extra_files or {}).items():
            _atomic_write(os.path.join(self.tmp, name), data)
        self.kv.close()
        _forget_read_env(self.path)
        os.replace(self.tmp, self.path)
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
