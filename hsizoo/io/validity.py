"""Pixel validity: which pixels of a cube hold a usable spectrum (no NaN, inf or nodata band)."""
from __future__ import annotations

import numpy as np


def valid_mask(cube: np.ndarray, nodata: float | None) -> np.ndarray:
    """Pixel validity (H, W): False where any band is NaN, +-inf or equal to ``nodata``.

    Any band rather than all bands: a spectrum with one nodata band would feed garbage into a model.
    """
    ok = np.empty(cube.shape[:-1], dtype=bool)
    check_nodata = nodata is not None and bool(np.isfinite(nodata))
    value = np.asarray(nodata if check_nodata else 0, dtype=cube.dtype)
    # in slabs of rows, so the (rows, W, B) boolean temporaries stay small for big windows
    step = max(1, (1 << 22) // max(1, int(np.prod(cube.shape[1:]))))
    for r in range(0, cube.shape[0], step):
        part = cube[r:r + step]
        slab = np.isfinite(part).all(axis=-1)
        if check_nodata:
            slab &= ~(part == value).any(axis=-1)
        ok[r:r + step] = slab
    return ok
