"""The part of a scene a read asks for: a pixel window or map bounds, checked against the scene.

``read_scene(path, window=...)`` takes ``((row0, row1), (col0, col1))`` (half-open, as numpy
slices) or a rasterio ``Window``; ``bounds=(left, bottom, right, top)`` are map coordinates in
the scene's CRS and become the window of every pixel they touch. A region that reaches outside
the scene is refused with the scene's extent rather than clipped or padded silently.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["resolve_region", "crop_to_window", "window_transform"]


def _as_window(window: Any, where: str) -> Any:
    from rasterio.windows import Window

    if isinstance(window, Window):
        return window
    try:
        (r0, r1), (c0, c1) = window
        vals = [float(v) for v in (r0, r1, c0, c1)]
    except (TypeError, ValueError):
        raise ValueError(
            f"window={window!r} for {where} is not ((row_start, row_stop), (col_start, col_stop)) "
            "nor a rasterio Window; e.g. window=((0, 512), (1024, 1536)).") from None
    if not all(v.is_integer() for v in vals):
        raise ValueError(f"window={window!r} for {where} must hold whole pixel numbers.")
    r0, r1, c0, c1 = (int(v) for v in vals)
    return Window(c0, r0, c1 - c0, r1 - r0)


def _bounds_window(bounds: Any, transform: Any, crs: Any, where: str) -> Any:
    from rasterio.windows import Window, from_bounds

    if transform is None:
        raise ValueError(
            f"bounds= needs a georeferenced scene, but {where} has no CRS/transform; pass a pixel "
            "window=((row_start, row_stop), (col_start, col_stop)) instead.")
    try:
        left, bottom, right, top = (float(v) for v in bounds)
    except (TypeError, ValueError):
        raise ValueError(f"bounds={bounds!r} for {where} is not (left, bottom, right, top) in "
                         "the scene's CRS.") from None
    if not all(map(math.isfinite, (left, bottom, right, top))) or left >= right or bottom >= top:
        raise ValueError(
            f"bounds={bounds!r} for {where} is not (left, bottom, right, top) with left < right "
            f"and bottom < top, in the scene's CRS ({crs}).")
    if transform.b != 0 or transform.d != 0:
        raise ValueError(f"{where} lies on a rotated grid; bounds= works on north-up grids only. "
                         "Pass a pixel window= instead.")
    win = from_bounds(left, bottom, right, top, transform=transform)
    # every pixel the bounds touch: floor the start, ceil the end (a tolerance keeps bounds on
    # pixel edges from picking up a neighbouring row through float rounding)
    r0 = math.floor(win.row_off + 1e-6)
    c0 = math.floor(win.col_off + 1e-6)
    r1 = math.ceil(win.row_off + win.height - 1e-6)
    c1 = math.ceil(win.col_off + win.width - 1e-6)
    return Window(c0, r0, c1 - c0, r1 - r0)


def _scene_bounds(height: int, width: int, transform: Any) -> tuple[float, ...]:
    from rasterio.transform import array_bounds

    b = array_bounds(height, width, transform)  # (west, south, east, north)
    return tuple(float(v) for v in b)


def resolve_region(window: Any, bounds: Any, height: int, width: int, transform: Any, crs: Any,
                   where: str) -> Any:
    """The pixel window a read asks for, checked to lie inside the scene.

    Args:
        window: ``((row0, row1), (col0, col1))``, a rasterio ``Window``, or None.
        bounds: ``(left, bottom, right, top)`` in the scene's CRS, or None.
        height: Rows of the scene.
        width: Columns of the scene.
        transform: The scene's affine transform, or None.
        crs: The scene's CRS (for messages).
        where: The scene, for messages.

    Returns:
        A rasterio ``Window`` with whole offsets and sizes, or None for the whole scene.

    Raises:
        ValueError: both given, a malformed region, an empty one, or one reaching outside the
            scene (the message gives the scene's extent).
    """
    if window is None and bounds is None:
        return None
    if window is not None and bounds is not None:
        raise ValueError("Pass window= or bounds=, not both.")
    if window is not None:
        win = _as_window(window, where)
        asked = f"window rows {win.row_off}:{win.row_off + win.height}, cols " \
                f"{win.col_off}:{win.col_off + win.width}"
    else:
        win = _bounds_window(bounds, transform, crs, where)
        asked = f"bounds {tuple(bounds)} (rows {win.row_off}:{win.row_off + win.height}, cols " \
                f"{win.col_off}:{win.col_off + win.width})"
    r0, c0 = int(win.row_off), int(win.col_off)
    r1, c1 = r0 + int(win.height), c0 + int(win.width)
    if r1 <= r0 or c1 <= c0:
        raise ValueError(f"The {asked} of {where} is empty; give start < stop.")
    if r0 < 0 or c0 < 0 or r1 > height or c1 > width:
        extent = f"{height} rows x {width} columns"
        if transform is not None and bounds is not None:
            extent += (f", bounds (left, bottom, right, top) = "
                       f"{tuple(round(v, 6) for v in _scene_bounds(height, width, transform))}"
                       f" in {crs}")
        raise ValueError(
            f"The {asked} reaches outside {where} ({extent}). Ask for a region inside the scene "
            "(rows 0..height, columns 0..width, stops excluded).")
    from rasterio.windows import Window

    return Window(c0, r0, c1 - c0, r1 - r0)


def window_transform(win: Any, transform: Any) -> Any:
    """The affine transform of a window's grid (None stays None)."""
    if transform is None or win is None:
        return transform
    from rasterio.windows import transform as _wt

    return _wt(win, transform)


def crop_to_window(array: np.ndarray | None, win: Any) -> np.ndarray | None:
    """``array[rows, cols]`` of a window (None stays None)."""
    if array is None or win is None:
        return array
    r0, c0 = int(win.row_off), int(win.col_off)
    return array[r0:r0 + int(win.height), c0:c0 + int(win.width)]
