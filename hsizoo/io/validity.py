"""Pixel validity: which pixels of a cube hold a usable spectrum (no NaN, inf or nodata band)."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def _row_slabs(cube: np.ndarray) -> Iterator[slice]:
    """Slices of rows whose (rows, W, B) boolean temporaries stay small (~4 M elements)."""
    step = max(1, (1 << 22) // max(1, int(np.prod(cube.shape[1:]))))
    for r in range(0, cube.shape[0], step):
        yield slice(r, r + step)


def valid_mask(cube: np.ndarray, nodata: float | None) -> np.ndarray:
    """Pixel validity (H, W): False where any band is NaN, +-inf or equal to ``nodata``.

    Any band rather than all bands: a spectrum with one nodata band would feed garbage into a model.
    """
    ok = np.empty(cube.shape[:-1], dtype=bool)
    check_nodata = nodata is not None and bool(np.isfinite(nodata))
    value = np.asarray(nodata if check_nodata else 0, dtype=cube.dtype)
    for rows in _row_slabs(cube):  # small temporaries for big windows
        part = cube[rows]
        slab = np.isfinite(part).all(axis=-1)
        if check_nodata:
            slab &= ~(part == value).any(axis=-1)
        ok[rows] = slab
    return ok


#: Fewest bands for which a spectrum that holds one value in every band is read as a fill value.
FLAT_MIN_BANDS = 5


def flat_spectra(cube: np.ndarray, valid: np.ndarray) -> dict[float, int]:
    """Valid pixels whose every band holds the same value, counted by that value.

    No measured spectrum of :data:`FLAT_MIN_BANDS` or more bands is exactly flat: such pixels
    are fill values (-9999, 0, 65535, ...) that nobody declared as nodata. Empty for fewer bands.
    """
    if cube.ndim != 3 or cube.shape[2] < FLAT_MIN_BANDS:
        return {}
    found: dict[float, int] = {}
    for rows in _row_slabs(cube):
        part = cube[rows]
        flat = (part == part[..., :1]).all(axis=-1) & np.asarray(valid[rows], bool)
        if flat.any():
            vals, counts = np.unique(part[..., 0][flat], return_counts=True)
            for v, n in zip(vals.tolist(), counts.tolist()):
                found[float(v)] = found.get(float(v), 0) + int(n)
    return found


def flat_spectra_message(found: dict[float, int], where: object) -> str:
    """What :func:`flat_spectra` found, and how to declare the fill value."""
    n = sum(found.values())
    top = sorted(found.items(), key=lambda kv: -kv[1])
    vals = ", ".join(f"{v:g} ({c} pixel{'s' if c > 1 else ''})" for v, c in top[:3])
    more = f" and {len(top) - 3} more value(s)" if len(top) > 3 else ""
    v = top[0][0]
    return (f"{n} valid pixel(s) of the scene {where} hold one value in every band: {vals}{more}. "
            "Those are fill values, not spectra: they would skew every band's statistics and be "
            f"classified. Declare the fill value: finetune(..., nodata={v:g}) or "
            f"read_scene(path, nodata={v:g}) (command line: --nodata {v:g}), or mark those "
            "pixels invalid with Scene(..., valid=mask).")


def no_valid_pixel_message(cube: np.ndarray, nodata: float | None, where: object) -> str:
    """Why a scene has no valid pixel, and what to check: for messages about such a scene.

    Names the nodata value, and the bands that equal it (or are NaN/inf) at every pixel, since a
    single such band invalidates every pixel.
    """
    h, w, b = cube.shape
    nd = "no nodata value" if nodata is None else f"nodata value {nodata:g}"
    parts = [f"The scene {where} has no valid pixel: every one of its {h} x {w} pixels has a "
             f"band that is NaN, inf or equal to its nodata value ({nd})."]
    if cube.size:
        flat = cube.reshape(-1, b)
        dead = ~np.isfinite(flat).any(axis=0)
        if nodata is not None and np.isfinite(nodata):
            dead |= (flat == np.asarray(nodata, dtype=cube.dtype)).all(axis=0)
        if dead.all():
            parts.append("Every band is nodata everywhere: the file holds no data (an empty "
                         "tile, or the wrong file or variable?).")
        elif dead.any():
            idx = np.nonzero(dead)[0] + 1
            parts.append(f"Band(s) {', '.join(map(str, idx[:10]))}{' ...' if idx.size > 10 else ''}"
                         " are nodata at every pixel and invalidate all of them: drop those "
                         "bands (and their wavelengths) first.")
    if nodata is not None and np.isfinite(nodata):
        parts.append(f"If {nodata:g} is a real value of the data, pass another nodata= (or fix "
                     "the file's nodata tag).")
    return " ".join(parts)
