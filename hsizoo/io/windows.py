"""Tiling a scene into windows (with overlap and a halo) for bounded-memory processing.

A patch model classifies pixel (r, c) from the P x P patch around it, so a window processed on its
own needs a margin of P // 2 pixels on every side (the *halo*). The halo is read with the window
and clipped at the scene edges; :class:`WindowBlock` says where the core window sits inside the
block so the caller can crop predictions back to the core before writing them.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np


class WindowBlock(NamedTuple):
    """One window of a scene.

    Unpacks as ``window, cube, valid, read_window, core``; ``for window, cube, valid, *_ in ...``
    works when the halo is not used.

    Attributes:
        window: The core window (rasterio ``Window``) in scene pixel coordinates: the pixels this
            block is responsible for (write predictions here).
        cube: Values of ``read_window``, shape (h, w, B), float32.
        valid: Validity of ``read_window``, shape (h, w), bool.
        read_window: The window actually read: the core window plus the halo, clipped to the scene.
        core: (row slice, col slice) locating the core window inside ``cube`` / ``valid``.
    """

    window: Any
    cube: np.ndarray
    valid: np.ndarray
    read_window: Any
    core: tuple[slice, slice]

    def crop(self, array: np.ndarray) -> np.ndarray:
        """Crop a block-shaped array (h, w, ...) to the core window."""
        return array[self.core[0], self.core[1]]


def _starts(length: int, size: int, step: int) -> list[int]:
    """Window start offsets along one axis; the last window is clipped, never shifted."""
    if length <= 0:
        return []
    return list(range(0, max(length - (size - step), 1), step)) or [0]


def plan_windows(height: int, width: int, window_size: int | tuple[int, int] = 512,
                 overlap: int = 0, halo: int = 0, rows: tuple[int, int] | None = None
                 ) -> list[tuple[Any, Any, tuple[slice, slice]]]:
    """Plan the windows covering an (height, width) grid.

    Args:
        height: Rows of the scene.
        width: Columns of the scene.
        window_size: Core window size in pixels, an int or (rows, cols).
        overlap: Pixels shared by neighbouring core windows (the step is ``size - overlap``).
        halo: Extra margin read around each core window, clipped at the scene edges.
        rows: Cover only rows ``rows[0]:rows[1]`` with core windows; their halo still reaches
            the rows around them (the rest of the grid is context). None: every row.

    Returns:
        A list of (core window, read window, core slices inside the read block), row-major.
    """
    from rasterio.windows import Window

    win_rows, cols = (window_size, window_size) if isinstance(window_size, int) else window_size
    win_rows, cols = int(win_rows), int(cols)
    if win_rows < 1 or cols < 1:
        raise ValueError(f"window_size must be >= 1 pixel, got {window_size!r}.")
    if overlap < 0 or overlap >= min(win_rows, cols):
        raise ValueError(
            f"overlap must be in [0, window_size); got overlap={overlap} for window size "
            f"{(win_rows, cols)}. Use halo= for a read margin larger than the window."
        )
    if halo < 0:
        raise ValueError(f"halo must be >= 0 pixels, got {halo}.")
    top, bottom = (0, height) if rows is None else (int(rows[0]), int(rows[1]))
    if not 0 <= top <= bottom <= height:
        raise ValueError(f"rows={rows!r} must lie within the grid's {height} rows.")
    plan = []
    for r0 in (top + s for s in _starts(bottom - top, win_rows, win_rows - overlap)):
        h = min(win_rows, bottom - r0)
        for c0 in _starts(width, cols, cols - overlap):
            w = min(cols, width - c0)
            rr0, cc0 = max(r0 - halo, 0), max(c0 - halo, 0)
            rr1, cc1 = min(r0 + h + halo, height), min(c0 + w + halo, width)
            core = (slice(r0 - rr0, r0 - rr0 + h), slice(c0 - cc0, c0 - cc0 + w))
            plan.append((Window(c0, r0, w, h), Window(cc0, rr0, cc1 - cc0, rr1 - rr0), core))
    return plan


def check_empty(block: WindowBlock, on_empty: str, where: str) -> bool:
    """Apply the ``on_empty`` policy to a block; returns False when the block is to be skipped."""
    if on_empty not in ("yield", "skip", "raise"):
        raise ValueError(f"on_empty must be 'yield', 'skip' or 'raise', got {on_empty!r}.")
    if on_empty == "yield" or block.crop(block.valid).any():
        return True
    if on_empty == "skip":
        return False
    w = block.window
    raise ValueError(
        f"Window rows {w.row_off}:{w.row_off + w.height}, cols {w.col_off}:{w.col_off + w.width} "
        f"of {where} has no valid pixel (all nodata, NaN or inf). Check the nodata value, or pass "
        "on_empty='skip' to skip such windows."
    )
