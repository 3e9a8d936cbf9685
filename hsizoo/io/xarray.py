"""Scenes to and from xarray / rioxarray DataArrays, keeping wavelengths, CRS and transform.

``rioxarray.open_rasterio("scene.tif")`` gives a (band, y, x) DataArray with its CRS and transform
on the ``rio`` accessor. :func:`from_xarray` makes a :class:`~hsizoo.io.scene.Scene` of it: the
band centres come from a ``wavelength`` coordinate along the band dimension (or a band coordinate
holding them, as after ``da.assign_coords(band=wavelengths)``), in nm unless its ``units``
attribute says otherwise; ``wavelengths=`` or ``sensor=`` give them when the DataArray has none
(rioxarray numbers the bands 1..B, which are not wavelengths). :func:`to_xarray` goes back, with a
``wavelength`` coordinate in nm, the CRS and transform written with rioxarray and invalid pixels
as NaN (the DataArray's nodata). Both need the ``xarray`` extra (``pip install "hsizoo[xarray]"``).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hsizoo.io.region import crop_to_window, resolve_region, window_transform
from hsizoo.io.scene import Scene
from hsizoo.io.validity import valid_mask

__all__ = ["from_xarray", "to_xarray"]

_Y, _X = ("y", "latitude", "lat", "northing"), ("x", "longitude", "lon", "easting")


def _rio() -> Any:
    from hsizoo._optional import require

    require("xarray", "Converting between xarray and hsizoo scenes")
    return require("rioxarray", "Keeping the CRS and transform of an xarray DataArray")


def _dims(da: Any) -> tuple[str, str, str]:
    """(band, y, x) dimension names of a 3-D DataArray."""
    if da.ndim != 3:
        raise ValueError(f"A scene DataArray has 3 dimensions (band, y, x); this one has "
                         f"{da.ndim}: {da.dims}. Select one time step or variable first.")
    dims = [str(d) for d in da.dims]
    try:
        y, x = da.rio.y_dim, da.rio.x_dim
    except Exception:  # rioxarray could not tell: fall back to the usual names
        y = next((d for d in dims if d.lower() in _Y), None)
        x = next((d for d in dims if d.lower() in _X), None)
    if y not in dims or x not in dims:
        raise ValueError(f"Cannot tell the spatial dimensions of the DataArray {da.dims}; name "
                         "them y and x (da.rename(...)) or set them with da.rio.set_spatial_dims.")
    (band,) = [d for d in dims if d not in (y, x)]
    return band, y, x


def _wavelengths(da: Any, band: str) -> tuple[np.ndarray, str] | None:
    """Band centres in nm from the DataArray's coordinates, or None."""
    from hsizoo.io.band_metadata import _to_nm

    for name in ("wavelength", "wavelengths", band):
        if name not in da.coords or da.coords[name].dims != (band,):
            continue
        coord = da.coords[name]
        values = np.asarray(coord.values)
        if not np.issubdtype(values.dtype, np.number):
            continue
        if name == band and "units" not in coord.attrs and (
                np.array_equal(values, np.arange(1, values.size + 1))
                or np.array_equal(values, np.arange(values.size))):
            return None  # rioxarray's band numbers, not wavelengths
        unit = coord.attrs.get("units") or coord.attrs.get("unit")
        return np.asarray(_to_nm(values.astype(np.float64), unit), dtype=np.float64), \
            f"DataArray coordinate {name!r}"
    return None


def from_xarray(da: Any, wavelengths: Sequence[float] | None = None, sensor: str | None = None,
                nodata: float | None = None, *, labels: Any = None,
                class_names: Sequence[str] | None = None, window: Any = None,
                bounds: Sequence[float] | None = None) -> Scene:
    """A Scene from a (band, y, x) xarray DataArray, with its wavelengths, CRS and transform.

    Args:
        da: The DataArray, e.g. from ``rioxarray.open_rasterio`` (dask-backed arrays are read
            only for the window asked for).
        wavelengths: Band centres in nm, winning over the DataArray's coordinates.
        sensor: Sensor preset used when the DataArray has no wavelengths.
        nodata: Value marking missing pixels; default the DataArray's ``rio.nodata``.
        labels: Optional (H, W) label map (or a file), for the whole array or the window.
        class_names: Names of classes 1..K.
        window: Only these pixels: ``((row0, row1), (col0, col1))`` or a rasterio Window.
        bounds: Only the pixels touching ``(left, bottom, right, top)`` in the array's CRS.

    Returns:
        The Scene (float32 cube (H, W, B); ``meta["wavelength_source"]`` says where the
        wavelengths came from).

    Raises:
        MissingExtraError: xarray or rioxarray is not installed.
        ValueError: not 3-D, no wavelengths found, a region outside the array.
    """
    from hsizoo.io.band_metadata import _resolve
    from hsizoo.io.labels import attach_labels

    _rio()
    band, y, x = _dims(da)
    name = str(da.name) if da.name is not None else "the DataArray"
    crs = da.rio.crs
    transform = da.rio.transform() if crs is not None or "spatial_ref" in da.coords else None
    if transform is not None and transform.is_identity and crs is None:
        transform = None
    height, width = int(da.sizes[y]), int(da.sizes[x])
    win = resolve_region(window, bounds, height, width, transform, crs, name)
    if win is not None:
        r0, c0 = int(win.row_off), int(win.col_off)
        da = da.isel({y: slice(r0, r0 + int(win.height)), x: slice(c0, c0 + int(win.width))})
    found = None if wavelengths is not None else _wavelengths(da, band)
    wl, fwhm, source = _resolve(
        _Named(name), int(da.sizes[band]), wavelengths, sensor,
        None if found is None else (found[0], None, found[1]),
        "a 'wavelength' coordinate along the band dimension, or band coordinates in nm")
    if nodata is None:
        nodata = da.rio.nodata if da.rio.nodata is not None else da.rio.encoded_nodata
    cube = np.asarray(da.transpose(y, x, band).values, dtype=np.float32)
    nd = None if nodata is None or (isinstance(nodata, float) and np.isnan(nodata)) \
        else float(nodata)
    scene = Scene(cube=cube, wavelengths=wl, valid=valid_mask(cube, nd), fwhm=fwhm,
                  crs=crs, transform=window_transform(win, transform), sensor=sensor,
                  path=None, meta={"wavelength_source": source, "nodata": nd,
                                   "source": f"xarray DataArray {name}"})
    if win is not None:
        r0, c0 = int(win.row_off), int(win.col_off)
        scene.meta["window"] = ((r0, r0 + int(win.height)), (c0, c0 + int(win.width)))
    return attach_labels(scene, labels, class_names, win, (height, width), name)


class _Named:
    """A name where the wavelength resolver expects a path (for its messages)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __str__(self) -> str:
        return self.name


def to_xarray(scene: Scene) -> Any:
    """A (band, y, x) rioxarray DataArray of a Scene: wavelengths, CRS and transform kept.

    Args:
        scene: The scene.

    Returns:
        A float32 DataArray with coordinates ``band`` (1..B), ``wavelength`` (nm, along band),
        ``fwhm`` when known, ``y`` / ``x`` (pixel centres) when georeferenced; CRS and transform
        written with rioxarray; invalid pixels NaN, which is its nodata.
    """
    _rio()
    import xarray as xr

    cube = np.where(scene.valid[..., None], scene.cube, np.nan).astype(np.float32)
    data = np.moveaxis(cube, 2, 0)
    b, h, w = data.shape
    coords: dict[str, Any] = {"band": np.arange(1, b + 1),
                              "wavelength": ("band", np.asarray(scene.wavelengths, float),
                                             {"units": "nm"})}
    if scene.fwhm is not None:
        coords["fwhm"] = ("band", np.asarray(scene.fwhm, float), {"units": "nm"})
    t = scene.transform
    if t is not None and t.b == 0 and t.d == 0:
        coords["x"] = t.c + t.a * (np.arange(w) + 0.5)
        coords["y"] = t.f + t.e * (np.arange(h) + 0.5)
    da = xr.DataArray(data, dims=("band", "y", "x"), coords=coords,
                      name=scene.path or "scene")
    if scene.crs is not None:
        da = da.rio.write_crs(scene.crs)
    if t is not None:
        da = da.rio.write_transform(t)
    return da.rio.write_nodata(np.nan, encoded=False)
