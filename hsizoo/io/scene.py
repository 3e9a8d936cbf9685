"""The Scene: a hyperspectral cube with its wavelengths, validity mask and georeferencing."""
from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Iterator
from typing import Any

import numpy as np

from hsizoo.io.windows import WindowBlock, check_empty, plan_windows
from hsizoo.spectral.grid import as_wavelength_array


def axis_order_hint(shape: tuple[int, ...] | None, num_bands: int | None = None) -> str:
    """A sentence for errors about a cube that looks stored as (bands, H, W) instead of (H, W, B).

    Args:
        shape: The array's shape.
        num_bands: Band count known from elsewhere (a wavelength list, a sensor preset).

    Returns:
        The hint with a leading space, or "" when the first axis does not look like the bands:
        it matches ``num_bands`` while the last does not, or, with no band count known, it is
        much smaller than the other two.
    """
    if shape is None or len(shape) != 3:
        return ""
    first, last = int(shape[0]), int(shape[2])
    if num_bands is not None:
        looks = first == num_bands and last != num_bands
    else:
        looks = 4 * first <= min(int(shape[1]), last)
    if not looks:
        return ""
    return (f" The array has shape {tuple(int(n) for n in shape)}: its first axis looks like "
            "the bands, but hsizoo expects (H, W, bands); move the band axis last, e.g. "
            "np.moveaxis(cube, 0, -1).")


@dataclass
class Scene:
    """A hyperspectral scene held in memory.

    Attributes:
        cube: Reflectance or radiance values, shape (H, W, B), float32.
        wavelengths: Band centre wavelengths in nanometres, shape (B,), strictly increasing.
        valid: Pixel validity mask, shape (H, W); False where nodata, NaN or inf.
        fwhm: Band full widths at half maximum in nanometres, shape (B,), or None.
        crs: rasterio CRS of the grid, or None when the scene is not georeferenced.
        transform: affine.Affine pixel-to-CRS transform, or None.
        band_names: One name per band, or None.
        path: Where the scene was read from, or None.
        labels: Optional (H, W) integer label map, 0 = unlabelled, 1..K classes.
        class_names: Optional names of classes 1..K (index 0 is class 1).
        sensor: Name of the sensor preset, when known.
        meta: Free-form extra metadata.
    """

    cube: np.ndarray
    wavelengths: np.ndarray
    valid: np.ndarray | None = None
    fwhm: np.ndarray | None = None
    crs: Any = None
    transform: Any = None
    band_names: list[str] | None = None
    path: str | None = None
    labels: np.ndarray | None = None
    class_names: list[str] | None = None
    sensor: str | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.cube = np.asarray(self.cube)
        if self.cube.ndim != 3:
            raise ValueError(f"Scene cube must be (H, W, B); got shape {self.cube.shape}.")
        self.wavelengths = as_wavelength_array(self.wavelengths, "Scene wavelengths")
        if self.wavelengths.shape != (self.cube.shape[2],):
            raise ValueError(
                f"The scene has {self.cube.shape[2]} bands but {self.wavelengths.size} wavelengths "
                "were given; pass one centre wavelength (nm) per band."
                + axis_order_hint(self.cube.shape, self.wavelengths.size)
            )
        wl = self.wavelengths
        if not np.all(np.isfinite(wl)) or (wl.size > 1 and not np.all(np.diff(wl) > 0)):
            raise ValueError(
                "Scene wavelengths must be finite and strictly increasing (band order = wavelength "
                f"order); got {wl[:5].tolist()}{' ...' if wl.size > 5 else ''}. Sort the bands."
            )
        if self.fwhm is not None:
            self.fwhm = np.asarray(self.fwhm, dtype=np.float64)
            if self.fwhm.shape != self.wavelengths.shape:
                raise ValueError(
                    f"fwhm has {self.fwhm.size} values for {self.wavelengths.size} bands; pass one "
                    "full width at half maximum (nm) per band, or None."
                )
        if self.valid is None:
            self.valid = np.isfinite(self.cube).all(axis=2)
        else:
            self.valid = np.asarray(self.valid, dtype=bool)
            if self.valid.shape != self.cube.shape[:2]:
                raise ValueError(
                    f"Validity mask shape {self.valid.shape} differs from the scene's "
                    f"{self.cube.shape[:2]}; pass one bool per pixel (H, W)."
                )
        if self.labels is not None:
            self.labels = np.asarray(self.labels)
            if self.labels.shape != self.cube.shape[:2]:
                raise ValueError(
                    f"Label map shape {self.labels.shape} differs from the scene's "
                    f"{self.cube.shape[:2]}; labels must be one integer per pixel (H, W)."
                )

    @property
    def shape(self) -> tuple[int, int, int]:
        """(H, W, B)."""
        return tuple(self.cube.shape)  # type: ignore[return-value]

    @property
    def num_bands(self) -> int:
        return int(self.cube.shape[2])


    def __repr__(self) -> str:
        # A summary, never the cube itself (print(scene) of a 2 GB cube must stay one line).
        wl = np.asarray(self.wavelengths)
        parts = [f"{self.height} x {self.width} pixels x {self.num_bands} bands",
                 f"{wl.min():.0f}-{wl.max():.0f} nm" if wl.size else "no wavelengths",
                 f"{int(self.valid.sum())} valid pixels"]
        if self.sensor:
            parts.append(f"sensor {self.sensor}")
        if self.crs is not None:
            parts.append(f"crs {self.crs}")
        if self.labels is not None:
            parts.append(f"labels with {int((self.labels > 0).sum())} labelled pixels, "
                         f"{len(np.unique(self.labels[self.labels > 0]))} classes")
        if self.path:
            parts.append(f"from {self.path}")
        return f"Scene({', '.join(parts)})"

    @property
    def height(self) -> int:
        return int(self.cube.shape[0])

    @property
    def width(self) -> int:
        return int(self.cube.shape[1])

    def windows(self, size: int | tuple[int, int] = 512, overlap: int = 0, halo: int = 0,
                on_empty: str = "yield", rows: tuple[int, int] | None = None
                ) -> Iterator[WindowBlock]:
        """Iterate over the in-memory scene window by window (same tiling as ``iter_windows``).

        Args:
            size: Core window size in pixels, an int or (rows, cols).
            overlap: Pixels shared by neighbouring core windows.
            halo: Margin added around each core window (clipped at the edges); patch models of
                patch size P need ``halo = P // 2``.
            on_empty: What to do with a window whose core has no valid pixel: "yield" it,
                "skip" it, or "raise" a ValueError.
            rows: Only windows of rows ``rows[0]:rows[1]`` (their halo reaches beyond).

        Returns:
            An iterator of :class:`~hsizoo.io.windows.WindowBlock` (views, not copies).
        """
        for win, read, core in plan_windows(self.height, self.width, size, overlap, halo, rows):
            rows = slice(read.row_off, read.row_off + read.height)
            cols = slice(read.col_off, read.col_off + read.width)
            block = WindowBlock(win, self.cube[rows, cols], self.valid[rows, cols], read, core)
            if check_empty(block, on_empty, f"scene {self.path or '(in memory)'}"):
                yield block
