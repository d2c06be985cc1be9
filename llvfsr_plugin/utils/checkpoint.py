"""Checkpoint helpers."""


def checkpoint_mismatch(expected, loaded, show=4):
    """Human-readable differences between a network's state dict and a checkpoint's."""
    missing = [k for k in expected if k not in loaded]
    extra = [k for k in loaded if k not in expected]
    shapes = [f'{k}: checkpoint {tuple(loaded[k].shape)} vs network {tuple(v.shape)}'
              for k, v in expected.items() if k in loaded and loaded[k].shape != v.shape]
    out = []
    for what, keys in (('missing in checkpoint', missing), ('not in network', extra), ('shape differs', shapes)):
        if keys:
            out.append(f'{len(keys)} {what}: ' + ', '.join(keys[:show]) + (' ...' if len(keys) > show else ''))
    return out
