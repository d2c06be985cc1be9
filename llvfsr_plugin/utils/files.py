"""Small file helpers shared by the release tool, the offline weight setup, prep and training."""
import contextlib
import fcntl
import hashlib
import os


def sha256_file(path):
    """Full SHA-256 (hex) of a file, read in 1 MB chunks."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


@contextlib.contextmanager
def pid_lock(path, on_busy):
    """Hold an exclusive lock on the file `path`, with this process's pid written in it, for the `with` block.
    The lock is an flock: it dies with its process, so a killed holder never blocks anyone.

    Args:
        path (str): the lock file (created if missing; its folder must exist).
        on_busy (callable): called with the holder's pid (str; '?' if unknown) when another process holds the
            lock; it raises to give up, or returns to wait until the holder ends.
    """
    f = open(path, 'a+')
    try:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            on_busy(f.read().strip() or '?')
            fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        yield
    finally:
        f.close()  # closing the file releases the flock
