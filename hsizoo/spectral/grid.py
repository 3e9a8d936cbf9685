"""Spectral identity as data: the canonical wavelength grid, resampling onto it, and normalisation.

Every hsizoo model sees spectra on one canonical grid (400-2500 nm every 10 nm by default), so that
one checkpoint serves any sensor (DESIGN.md, "Spectral canonicalisation"). A sensor's bands are
resampled onto the grid by wavelength; grid points the sensor does not cover, or that fall in a
gap between its bands wider than ``max_gap`` (removed water-absorption bands), are marked missing.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np

#: Default canonical grid: 400-2500 nm every 10 nm (211 points).
CANONICAL_GRID: tuple[float, float, float] = (400.0, 2500.0, 10.0)


def make_grid(grid: Sequence[float] = CANONICAL_GRID) -> np.ndarray:
    """Grid points in nm from a ``(start, stop, step)`` triple (stop included)."""
    start, stop, step = (float(v) for v in grid)
    n = int(round((stop - start) / step)) + 1
    return start + step * np.arange(n, dtype=np.float64)


def check_wavelengths(wavelengths: Sequence[float], num_bands: int | None = None) -> np.ndarray:
    """Validate band centre wavelengths and return them as a float64 array in nm.

    Args:
        wavelengths: Band centres in nanometres, one per band, strictly increasing.
        num_bands: Number of bands of the data they describe, when known.

    Returns:
        The wavelengths as a 1-D float64 array.

    Raises:
        ValueError: wrong length, not finite, not strictly increasing, not physical (<= 0 or
            above 100,000 nm), or in micrometres.
    """
    wl = np.asarray(wavelengths, dtype=np.float64).reshape(-1)
    if num_bands is not None and wl.size != num_bands:
        raise ValueError(
            f"Got {wl.size} wavelengths for data with {num_bands} bands; pass one band centre "
            "wavelength (nm) per band, in band order."
        )
    if wl.size == 0 or not np.all(np.isfinite(wl)):
        raise ValueError("Wavelengths must be finite numbers in nanometres.")
    if wl.size > 1 and not np.all(np.diff(wl) > 0):
        bad = int(np.argmin(np.diff(wl) > 0))
        raise ValueError(
            f"Wavelengths must be strictly increasing; band {bad} ({wl[bad]:g} nm) is followed by "
            f"{wl[bad + 1]:g} nm. Sort the bands by wavelength (and the cube with them)."
        )
    if wl.min() <= 0 or wl.max() > 100_000:
        raise ValueError(
            f"Wavelengths {wl.min():g}-{wl.max():g} nm are not physical band centres (expected "
            "positive values in nanometres, e.g. 400-2500 for VNIR-SWIR). Check the unit (nm, "
            "not micrometres, wavenumbers or an index) and the file's metadata."
        )
    if wl.max() < 30:
        raise ValueError(
            f"Wavelengths look like micrometres (max {wl.max():g}); hsizoo expects nanometres. "
            "Multiply them by 1000."
        )
    return wl


@dataclass(frozen=True)
class Resampler:
    """Linear map from a sensor's bands onto the canonical grid.

    Attributes:
        weights: (G, B) float32; canonical = weights @ bands. Rows of missing points are zero.
        present: (G,) bool; grid points the sensor covers.
        grid: (G,) grid wavelengths in nm.
    """

    weights: np.ndarray
    present: np.ndarray
    grid: np.ndarray

    @property
    def coverage(self) -> float:
        """Fraction of the canonical grid the sensor covers."""
        return float(self.present.mean())


def _default_max_gap(wl: np.ndarray, step: float) -> float:
    # A gap much wider than the sensor's usual sampling is a removed band range (water absorption),
    # not something to interpolate across.
    spacing = np.median(np.diff(wl)) if wl.size > 1 else step
    return float(max(3.0 * spacing, 2.5 * step))


@lru_cache(maxsize=64)
def _resampler_cached(wl_key: tuple[float, ...], grid_key: tuple[float, float, float],
                      max_gap: float | None) -> Resampler:
    wl = np.asarray(wl_key, dtype=np.float64)
    grid = make_grid(grid_key)
    step = float(grid_key[2])
    gap = _default_max_gap(wl, step) if max_gap is None else float(max_gap)
    W = np.zeros((grid.size, wl.size), dtype=np.float64)
    present = np.zeros(grid.size, dtype=bool)
    for g, lam in enumerate(grid):
        # Sensors finer than the grid: average the bands inside the grid cell (box response).
        inside = np.nonzero(np.abs(wl - lam) <= step / 2)[0]
        if inside.size >= 2:
            W[g, inside] = 1.0 / inside.size
            present[g] = True
            continue
        hi = int(np.searchsorted(wl, lam))
        if hi < wl.size and wl[hi] == lam:
            W[g, hi] = 1.0
            present[g] = True
        elif 0 < hi < wl.size:
            lo = hi - 1
            if wl[hi] - wl[lo] <= gap:
                t = (lam - wl[lo]) / (wl[hi] - wl[lo])
                W[g, lo], W[g, hi] = 1.0 - t, t
                present[g] = True
            elif min(lam - wl[lo], wl[hi] - lam) <= step / 2:
                # Inside a gap but within half a grid step of a real band: take that band.
                W[g, lo if lam - wl[lo] <= wl[hi] - lam else hi] = 1.0
                present[g] = True
        else:
            # Beyond the sensor's range: only within half a grid step of the edge band.
            edge = 0 if hi == 0 else wl.size - 1
            if abs(wl[edge] - lam) <= step / 2:
                W[g, edge] = 1.0
                present[g] = True
    return Resampler(weights=W.astype(np.float32), present=present, grid=grid)


def canonical_resampler(wavelengths: Sequence[float], grid: Sequence[float] = CANONICAL_GRID,
                        max_gap: float | None = None) -> Resampler:
    """Build (and cache) the linear map from a sensor's bands onto the canonical grid.

    Args:
        wavelengths: Band centres in nm, strictly increasing.
        grid: ``(start, stop, step)`` of the canonical grid in nm.
        max_gap: Widest gap between adjacent bands (nm) that is interpolated across; wider gaps
            are missing. Default: 3 x the sensor's median band spacing, at least 2.5 grid steps.

    Returns:
        The Resampler.

    Raises:
        ValueError: bad wavelengths, or a sensor that covers no point of the grid.
    """
    wl = check_wavelengths(wavelengths)
    key = tuple(float(round(v, 4)) for v in wl)
    res = _resampler_cached(key, tuple(float(v) for v in grid), max_gap)  # type: ignore[arg-type]
    if not res.present.any():
        raise ValueError(
            f"The bands ({wl.min():g}-{wl.max():g} nm) cover no point of the canonical grid "
            f"{grid[0]:g}-{grid[1]:g} nm; this model cannot use this sensor."
        )
    return res


def resolve_wavelengths(wavelengths: Sequence[float] | None = None, sensor: str | None = None,
                        num_bands: int | None = None) -> np.ndarray:
    """Band centres from explicit wavelengths or a named sensor preset.

    Args:
        wavelengths: Explicit band centres in nm; wins over ``sensor``.
        sensor: Name of a preset in :mod:`hsizoo.spectral.sensors`.
        num_bands: Band count of the data, checked against the result.

    Returns:
        Wavelengths in nm.

    Raises:
        ValueError: neither given, or the count does not match.
    """
    if wavelengths is not None:
        return check_wavelengths(wavelengths, num_bands)
    if sensor is not None:
        from hsizoo.spectral.sensors import get_sensor

        return check_wavelengths(get_sensor(sensor).wavelengths, num_bands)
    from hsizoo.spectral.sensors import list_sensors

    raise ValueError(
        "The band centre wavelengths are unknown. hsizoo models need them to place each band on "
        "the canonical grid: pass wavelengths=[... nm, one per band] or name a sensor preset with "
        f"sensor=... (known: {', '.join(list_sensors())})."
    )


@dataclass
class BandStats:
    """Per-band mean and standard deviation used to standardise a scene."""

    mean: np.ndarray
    std: np.ndarray

    def apply(self, cube: np.ndarray) -> np.ndarray:
        """Standardise a (..., B) array with these statistics (float32)."""
        return ((np.asarray(cube, dtype=np.float32) - self.mean) / self.std).astype(np.float32)


def band_stats(cube: np.ndarray, valid: np.ndarray | None = None, max_pixels: int = 200_000,
               seed: int = 0) -> BandStats:
    """Per-band statistics over valid pixels (subsampled for large scenes).

    Args:
        cube: (H, W, B) scene.
        valid: (H, W) validity mask; all pixels if None.
        max_pixels: Subsample at most this many valid pixels.
        seed: Seed of the subsample.

    Returns:
        BandStats whose std is floored to avoid division by zero on constant bands.
    """
    pix = cube.reshape(-1, cube.shape[-1])
    idx = np.arange(pix.shape[0]) if valid is None else np.flatnonzero(np.asarray(valid).reshape(-1))
    if idx.size == 0:
        raise ValueError("The scene has no valid pixel to compute band statistics from.")
    if idx.size > max_pixels:
        idx = np.sort(np.random.default_rng(seed).choice(idx, max_pixels, replace=False))
    sample = pix[idx].astype(np.float64)
    if not np.isfinite(sample).all():
        raise ValueError("Valid pixels contain NaN or inf; mark them invalid (nodata) first.")
    mean = sample.mean(axis=0)
    std = sample.std(axis=0)
    floor = max(float(np.median(std)) * 1e-3, 1e-6)
    if np.any(std < floor):
        warnings.warn(f"{int((std < floor).sum())} band(s) are constant over the valid pixels.",
                      stacklevel=2)
    return BandStats(mean=mean.astype(np.float32), std=np.maximum(std, floor).astype(np.float32))
