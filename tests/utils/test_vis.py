"""Pictures: grids with titles."""
import numpy as np

from llvfsr_plugin.utils.vis import _wrap, make_grid


def test_grid_titles_wrap_instead_of_being_cut():
    """Long method names wrap onto more lines (every cell of the grid gets the same title height)."""
    long = 'LLV-FSR, oracle mask+depth from the HR face 28.63dB'
    assert ' '.join(_wrap(long, 18)) == long and all(len(x) <= 18 for x in _wrap(long, 18))
    img = np.zeros((32, 32, 3), np.uint8)
    one = make_grid([[img, img]], ['a', 'b'], size=128)
    wrapped = make_grid([[img, img]], ['a', long], size=128)
    assert wrapped.shape[1] == one.shape[1] and wrapped.shape[0] > one.shape[0]
    bar = wrapped.shape[0] - 128
    assert bar > 2 * 15 and (wrapped[15:bar, :128] == 255).all()  # 'a' uses line 1; its cell is padded white

