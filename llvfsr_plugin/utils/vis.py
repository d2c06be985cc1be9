"""Pictures people would rather look at than read: LR | methods | HR grids with titles."""
import cv2
import numpy as np


def _label(img, text, height=18):
    bar = np.full((height, img.shape[1], 3), 255, np.uint8)
    scale = 0.4 if img.shape[1] < 200 else 0.5
    cv2.putText(bar, text[:int(img.shape[1] / 7)], (3, height - 5), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1,
                cv2.LINE_AA)
    return np.concatenate([bar, img], 0)


def to_size(img, size):
    """Nearest-neighbour upscaling of LR images so pixels stay visible; area resize otherwise."""
    if img.shape[0] == size:
        return img
    interp = cv2.INTER_NEAREST if img.shape[0] < size else cv2.INTER_AREA
    return cv2.resize(img, (size, size), interpolation=interp)


def make_grid(rows, titles, size=128, row_labels=None, gap=2):
    """rows: list of lists of uint8 RGB images (one list per face); titles: column titles (per cell, or a
    list of lists for per-cell titles, e.g. with metric values). Returns one uint8 RGB image."""
    out_rows = []
    for r, imgs in enumerate(rows):
        cells = []
        for c, img in enumerate(imgs):
            t = titles[r][c] if titles and isinstance(titles[0], (list, tuple)) else titles[c]
            cell = _label(to_size(img, size), t)
            cells.append(cell)
            cells.append(np.full((cell.shape[0], gap, 3), 255, np.uint8))
        row = np.concatenate(cells[:-1], 1)
        if row_labels:
            row = _label(row, row_labels[r])
        out_rows.append(row)
        out_rows.append(np.full((gap, row.shape[1], 3), 255, np.uint8))
    return np.concatenate(out_rows[:-1], 0)


def imwrite_rgb(path, rgb):
    import os
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if not cv2.imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise IOError(f'cannot write {path}')
