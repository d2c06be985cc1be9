"""Small file helpers shared by the release tool and the offline weight setup."""
import hashlib


def sha256_file(path):
    """Full SHA-256 (hex) of a file, read in 1 MB chunks."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()
