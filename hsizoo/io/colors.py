"""The one default class palette used by the class-map writer, the quicklook and the catalogue."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# 30 hand-picked, mutually distinct colours (Kelly's 22 colours of maximum contrast, without
# white and black, then the Tableau 10 set). Fixed values rather than a generated ramp so a given
# class id keeps its colour across maps, versions and matplotlib releases.
_BASE: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
    (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0),
    (170, 255, 195), (128, 128, 0), (255, 215, 180), (0, 0, 128), (128, 128, 128),
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (188, 189, 34), (23, 190, 207), (96, 96, 96),
)

#: Colour drawn for class 0 (unlabelled / unclassified) in maps and quicklooks.
UNCLASSIFIED_COLOR: tuple[int, int, int] = (0, 0, 0)


def default_palette(num_classes: int) -> list[tuple[int, int, int]]:
    """Distinct RGB colours for classes 1..num_classes.

    The first 30 classes get fixed, hand-picked colours; beyond that colours are drawn from a
    seeded random generator so that they stay the same from run to run.

    Args:
        num_classes: Number of classes K (class 0, unclassified, is not included).

    Returns:
        K (r, g, b) tuples of ints in 0..255; entry i is the colour of class i + 1.
    """
    if num_classes < 0:
        raise ValueError(f"num_classes must be >= 0, got {num_classes}.")
    colors = list(_BASE[:num_classes])
    if num_classes > len(_BASE):
        rng = np.random.default_rng(0)
        extra = rng.integers(40, 256, size=(num_classes - len(_BASE), 3))
        colors.extend(tuple(int(v) for v in row) for row in extra)
    return colors


def check_colors(colors: Sequence[Sequence[int]], num_classes: int) -> list[tuple[int, int, int]]:
    """Validate a user colour list: one (r, g, b) per class, ints 0..255 (or floats 0..1).

    Args:
        colors: One colour per class 1..K.
        num_classes: K.

    Returns:
        The colours as (r, g, b) int tuples.
    """
    if len(colors) < num_classes:
        raise ValueError(
            f"{len(colors)} colours were given for {num_classes} classes; give one (r, g, b) per "
            "class or leave colors=None for the default palette."
        )
    out = []
    for i, c in enumerate(colors[:num_classes]):
        arr = np.asarray(c, dtype=np.float64)[:3]
        if arr.shape != (3,):
            raise ValueError(f"Colour {i + 1} is {c!r}; expected (r, g, b).")
        if arr.max() <= 1.0 and np.issubdtype(np.asarray(c).dtype, np.floating):
            arr = arr * 255.0  # matplotlib-style floats in 0..1
        if arr.min() < 0 or arr.max() > 255:
            raise ValueError(f"Colour {i + 1} is {c!r}; components must be in 0..255.")
        out.append(tuple(int(round(v)) for v in arr))
    return out
