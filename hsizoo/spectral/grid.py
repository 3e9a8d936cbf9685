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


def as_wavelength_array(values: Sequence[float], what: str = "wavelengths=") -> np.ndarray:
    """A flat float64 array of band centres; a ValueError naming the item that is not a number.

    A row or column vector (as MATLAB stores lists) is flattened; a 2-D table is refused.
    """
    try:
        wl = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        items = np.asarray(values, dtype=object).reshape(-1) if not isinstance(values, str) \
            else np.asarray([values], dtype=object)
        bad = next((i for i, v in enumerate(items) if not _is_number(v)), 0)
        raise ValueError(
            f"{what} must be numbers, the band centres in nm, one per band; item {bad} is "
            f"{str(items[bad])[:40]!r} ({type(items[bad]).__name__}). Pass plain numbers, e.g. "
            "[450.5, 460.2, ...].") from None
    if sum(n > 1 for n in wl.shape) > 1:
        raise ValueError(f"{what} must be a flat list of band centres in nm, one per band; got an "
                         f"array of shape {wl.shape}.")
    return wl.reshape(-1)


def _is_number(value: object) -> bool:
    try:
        float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True


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
    wl = as_wavelength_array(wavelengths, "Wavelengths")
    if num_bands is not None and wl.size != num_bands:
        raise ValueError(
            f"Got {wl.size} wavelengths for data with {num_bands} bands; pass one band centre "
            "wavelength (nm) per band, in band order."
        )
    if wl.size == 0:
        raise ValueError("No wavelengths given; pass one band centre (nm) per band.")
    if not np.all(np.isfinite(wl)):
        bad = int(np.argmin(np.isfinite(wl)))
        raise ValueError(f"Wavelengths must be finite numbers in nanometres; item {bad} is "
                         f"{wl[bad]:g}. Fix or remove that band's wavelength.")
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


def canonical_weights(wavelengths: torch.Tensor, grid: Sequence[float] = CANONICAL_GRID,
                      max_gap: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The resampling onto the canonical grid as torch ops: traceable, no Python branch on values.

    What :func:`canonical_resampler` returns, from a wavelength tensor (the models run this in
    ``forward``, so that ``torch.compile`` / ``torch.export`` see it). Each grid point takes, in
    this order: the mean of the bands within half a grid step when there are two or more (sensors
    finer than the grid); a band exactly on it; linear interpolation between its two neighbouring
    bands when their gap is at most ``max_gap``; the nearer neighbour when that lies within half
    a step (inside a wider gap, or beyond the sensor's range at its edge bands); else nothing (the
    point is missing). Band centres are rounded to 1e-4 nm first. The values are not checked
    here: :func:`check_wavelengths` does that before.

    Args:
        wavelengths: (B,) band centres in nm, strictly increasing (any float dtype; used in
            float64).
        grid: ``(start, stop, step)`` of the canonical grid in nm.
        max_gap: Widest gap between adjacent bands (nm) that is interpolated across; default
            3 x the median band spacing, at least 2.5 grid steps.

    Returns:
        ``(weights, present)``: (G, B) float32 with canonical = weights @ bands (rows of missing
        points are zero), and (G,) bool; on the wavelengths' device.
    """
    import torch  # here, not at the top: `import hsizoo` (and `hsizoo --help`) stay light

    start, stop, step = (float(v) for v in grid)
    f64 = torch.float64
    dev = wavelengths.device
    wl = torch.round(wavelengths.reshape(-1).to(f64), decimals=4)
    n = wl.shape[0]
    lam = start + step * torch.arange(int(round((stop - start) / step)) + 1, dtype=f64, device=dev)
    half = step / 2
    if max_gap is not None:
        gap: torch.Tensor | float = float(max_gap)
    elif n > 1:
        # A gap much wider than the sensor's usual sampling is a removed band range (water
        # absorption), not something to interpolate across. The median as numpy's (even counts:
        # the mean of the middle two).
        d = torch.sort(wl[1:] - wl[:-1]).values
        m = n - 1
        spacing = d[m // 2] if m % 2 else (d[m // 2 - 1] + d[m // 2]) / 2
        gap = torch.clamp(3.0 * spacing, min=2.5 * step)
    else:
        gap = 3.0 * step
    inside = (wl[None, :] - lam[:, None]).abs() <= half  # (G, B)
    count = inside.sum(1)
    box = count >= 2
    hi = (wl[None, :] < lam[:, None]).sum(1)  # first band >= the point (ONNX: no searchsorted)
    hi_c, lo_c = hi.clamp(max=n - 1), (hi - 1).clamp(min=0)
    wl_hi, wl_lo = wl[hi_c], wl[lo_c]
    exact = ~box & (hi < n) & (wl_hi == lam)
    interior = ~box & ~exact & (hi > 0) & (hi < n)
    span = torch.where(interior, wl_hi - wl_lo, torch.ones_like(lam))
    interp = interior & (span <= gap)
    near = interior & ~interp & (torch.minimum(lam - wl_lo, wl_hi - lam) <= half)
    near_idx = torch.where(lam - wl_lo <= wl_hi - lam, lo_c, hi_c)
    edge_idx = torch.where(hi == 0, torch.zeros_like(hi), torch.full_like(hi, n - 1))
    edge = ~box & ~exact & ~interior & ((wl[edge_idx] - lam).abs() <= half)
    # At most two bands per point outside the box case: (index, weight) pairs, scattered once.
    t = (lam - wl_lo) / span
    one, nil = torch.ones_like(lam), torch.zeros_like(lam)
    first = torch.where(interp, lo_c,
                        torch.where(near, near_idx, torch.where(edge, edge_idx, hi_c)))
    w_first = torch.where(interp, 1.0 - t, torch.where(exact | near | edge, one, nil))
    w_second = torch.where(interp, t, nil)  # at hi_c
    W = torch.zeros(lam.shape[0], n, dtype=f64, device=dev).scatter_add(
        1, torch.stack([first, hi_c], 1), torch.stack([w_first, w_second], 1))
    W = torch.where(box[:, None], inside.to(f64) / count.clamp(min=1).to(f64)[:, None], W)
    return W.to(torch.float32), box | exact | interp | near | edge


@lru_cache(maxsize=64)
def _resampler_cached(wl_key: tuple[float, ...], grid_key: tuple[float, float, float],
                      max_gap: float | None) -> Resampler:
    import torch

    W, present = canonical_weights(torch.tensor(wl_key, dtype=torch.float64), grid_key, max_gap)
    return Resampler(weights=W.numpy(), present=present.numpy(), grid=make_grid(grid_key))


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
