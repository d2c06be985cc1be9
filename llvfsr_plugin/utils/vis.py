"""Pictures people would rather look at than read: LR | methods | HR grids with titles."""
import os

import cv2
import numpy as np

CHAR_PX = 7  # pixels per character of the title font (cv2 Hershey simplex at scale 0.4-0.5)


def _wrap(text, width):
    """Word-wrap `text` into lines of at most `width` characters (a longer word is cut)."""
    lines = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += ' ' + word
        else:
            lines.append(word[:width])
    return lines or ['']


def _label(img, text, n_lines=None, line_height=15):
    """A white title bar above `img`, the text word-wrapped to the image width; `n_lines` pads the bar so
    cells of one grid line up."""
    lines = _wrap(text, img.shape[1] // CHAR_PX)
    n = max(n_lines or 0, len(lines))
    bar = np.full((n * line_height + 3, img.shape[1], 3), 255, np.uint8)
    scale = 0.4 if img.shape[1] < 200 else 0.5
    for i, line in enumerate(lines):
        cv2.putText(bar, line, (3, (i + 1) * line_height - 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1,
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
    def title(r, c):
        return titles[r][c] if titles and isinstance(titles[0], (list, tuple)) else titles[c]

    n_lines = max(len(_wrap(title(r, c), size // CHAR_PX)) for r, imgs in enumerate(rows) for c in range(len(imgs)))
    out_rows = []
    for r, imgs in enumerate(rows):
        cells = []
        for c, img in enumerate(imgs):
            cell = _label(to_size(img, size), title(r, c), n_lines)
            cells.append(cell)
            cells.append(np.full((cell.shape[0], gap, 3), 255, np.uint8))
        row = np.concatenate(cells[:-1], 1)
        if row_labels:
            row = _label(row, row_labels[r])
        out_rows.append(row)
        out_rows.append(np.full((gap, row.shape[1], 3), 255, np.uint8))
    return np.concatenate(out_rows[:-1], 0)


def imwrite_rgb(path, rgb):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if not cv2.imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise IOError(f'cannot write {path}')
