"""Reading hyperspectral scenes: GeoTIFF and ENVI (through rasterio/GDAL) and MATLAB .mat files.

The public entry points (:func:`read_scene`, :func:`read_scene_info`, :func:`iter_windows`,
:func:`read_labels`) live here. Rasters are opened by :mod:`hsizoo.io.raster`, after an ENVI
header has been checked by :mod:`hsizoo.io.envi`; MATLAB files are read by :mod:`hsizoo.io.matlab`;
band wavelengths are found and normalised to nm by :mod:`hsizoo.io.band_metadata` (which documents
the order in which places are searched); label maps are read and checked by
:mod:`hsizoo.io.labels`; whole-scene reads are checked against the memory available by
:mod:`hsizoo.io.limits`; pixel validity is :func:`hsizoo.io.validity.valid_mask`.
"""
from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hsizoo.io.band_metadata import _raster_wavelengths, _resolve, descriptions
from hsizoo.io.envi import envi_band_names, envi_wavelengths
from hsizoo.io.labels import attach_labels, read_labels
from hsizoo.io.limits import check_read_size
from hsizoo.io.matlab import _mat_load, _mat_pick, _mat_variables, _read_mat, check_mat_size
from hsizoo.io.raster import (
    _check_path,
    open_raster,
    read_block,
    check_real,
    envi_header_of,
)
from hsizoo.io.region import crop_to_window, resolve_region, window_transform
from hsizoo.io.scene import Scene
from hsizoo.io.validity import no_valid_pixel_message, valid_mask
from hsizoo.io.windows import WindowBlock, check_empty, plan_windows

__all__ = ["SceneInfo", "iter_windows", "read_labels", "read_scene", "read_scene_info"]


@dataclass
class SceneInfo:
    """What a raster scene is, without its pixels: enough to plan windowed processing.

    Attributes:
        path: The file read.
        height: Rows.
        width: Columns.
        num_bands: Bands.
        wavelengths: Band centres in nm.
        fwhm: Band FWHM in nm, or None.
        crs: rasterio CRS, or None.
        transform: affine.Affine, or None.
        nodata: The nodata value used for the validity mask, or None.
        band_names: One name per band, or None.
        dtype: Data type stored in the file.
        meta: Where the wavelengths came from and other notes.
    """

    path: str
    height: int
    width: int
    num_bands: int
    wavelengths: np.ndarray
    fwhm: np.ndarray | None = None
    crs: Any = None
    transform: Any = None
    nodata: float | None = None
    band_names: list[str] | None = None
    dtype: str = "float32"
    meta: dict = field(default_factory=dict)

# ----------------------------------------------------------------------------------------------
# Rasters (GeoTIFF, ENVI, anything GDAL reads)


def _raster_info(path: Path, ds: Any, wavelengths: Sequence[float] | None, sensor: str | None,
                 nodata: float | None) -> SceneInfo:
    check_real(ds, path)
    envi = envi_header_of(path) if ds.driver == "ENVI" else None
    # Wavelengths given by the caller win: the file's metadata (even an unknown unit) is not read.
    if envi is not None:
        # GDAL turns unparsable header values into 0 nm and keeps the first values of a list
        # that is too long: the header is read here instead
        found = envi_wavelengths(envi[1], ds.count, envi[0]) if wavelengths is None else None
        looked = "the ENVI header's wavelength list (wavelength = {...}) and band names"
    else:
        found = _raster_wavelengths(ds) if wavelengths is None else None
        looked = ("band tags (wavelength / wavelength_units / IMAGERY domain), band "
                  "descriptions, the ENVI metadata domain (wavelength = {...})")
    wl, fwhm, source = _resolve(path, ds.count, wavelengths, sensor, found, looked)
    if nodata is None:
        nodata = ds.nodata
    names = descriptions(ds)
    if envi is not None:
        # GDAL appends the wavelength to ENVI band names ("b1 (450.5 Nanometers)"); keep the
        # names as the header gives them
        listed = envi_band_names(envi[1])
        if listed and len(listed) == ds.count:
            names = listed
    crs = ds.crs if ds.crs else None
    transform = ds.transform
    # GDAL reports the identity transform for rasters without georeferencing
    if crs is None and transform is not None and transform.is_identity:
        transform = None
    return SceneInfo(
        path=str(path), height=ds.height, width=ds.width, num_bands=ds.count, wavelengths=wl,
        fwhm=fwhm, crs=crs, transform=transform, nodata=None if nodata is None else float(nodata),
        band_names=names if all(names) else None, dtype=ds.dtypes[0],
        meta={"wavelength_source": source, "driver": ds.driver},
    )


def _is_dataarray(obj: Any) -> bool:
    """An xarray DataArray, recognised without importing xarray (an optional extra)."""
    return type(obj).__name__ == "DataArray" and type(obj).__module__.startswith("xarray")


# ----------------------------------------------------------------------------------------------
# Public API


def read_scene_info(path: str | Path, wavelengths: Sequence[float] | None = None,
                    sensor: str | None = None, nodata: float | None = None) -> SceneInfo:
    """Describe a raster scene (size, wavelengths, georeferencing) without reading its pixels.

    Args:
        path: GeoTIFF, ENVI data file or .hdr header, or any raster GDAL reads.
        wavelengths: Band centres (nm), overriding the file's.
        sensor: Sensor preset name used when the file has no wavelengths.
        nodata: Nodata value, overriding the file's.

    Returns:
        A :class:`SceneInfo`.
    """
    p = _check_path(path)
    if p.suffix.lower() == ".mat":
        scene = _read_mat(p, None, wavelengths, sensor, nodata)
        h, w, b = scene.shape
        return SceneInfo(str(p), h, w, b, scene.wavelengths, scene.fwhm, nodata=nodata,
                         meta=scene.meta)
    with open_raster(p) as ds:
        return _raster_info(p, ds, wavelengths, sensor, nodata)


def read_scene(path: str | Path, wavelengths: Sequence[float] | None = None,
               sensor: str | None = None, nodata: float | None = None, *,
               variable: str | None = None, labels: Any = None,
               class_names: Sequence[str] | None = None, window: Any = None,
               bounds: Sequence[float] | None = None) -> Scene:
    """Read a hyperspectral scene, or a window of it, into memory.

    Args:
        path: A GeoTIFF, an ENVI data file or its .hdr header, any raster GDAL reads, or a MATLAB
            .mat file (v5 through scipy, v7.3 through h5py). A URL (``https://``, ``http://``,
            ``s3://``) or a GDAL network path (``/vsicurl/...``, ``/vsis3/...``) is read over the
            network (:mod:`hsizoo.io.remote`): with ``window=``/``bounds=`` only the bytes of
            that region are fetched from a tiled (Cloud-Optimized) GeoTIFF. An xarray /
            rioxarray DataArray is converted by :func:`hsizoo.io.xarray.from_xarray`.
        wavelengths: Band centre wavelengths in nm, one per band; win over the file's metadata.
        sensor: Name of a :mod:`hsizoo.spectral.sensors` preset, used when the file has no wavelengths.
        nodata: Value marking missing pixels; overrides the file's nodata. NaN and inf are always
            invalid.
        variable: For .mat files, the variable holding the (H, W, B) cube; needed when the file
            holds several 3-D arrays.
        labels: Optional label map: an (H, W) array or the path of a file holding one.
        class_names: Names of classes 1..K for ``labels``.
        window: Read only these pixels: ``((row_start, row_stop), (col_start, col_stop))``
            (stops excluded, as numpy slices) or a rasterio ``Window``.
        bounds: Read only the pixels touching ``(left, bottom, right, top)``, map coordinates in
            the scene's CRS (georeferenced scenes).

    Returns:
        A :class:`Scene` with a float32 cube (H, W, B), wavelengths in nm, validity mask, CRS and
        transform (None for .mat files). ``scene.meta["wavelength_source"]`` says where the
        wavelengths came from. For a window, the transform is the window's (its top-left pixel
        where it lies on the map), ``labels`` given for the whole scene are cropped with it, and
        ``scene.meta["window"]`` is ``((row_start, row_stop), (col_start, col_stop))``.

    Raises:
        FileNotFoundError: the file (or an ENVI header's data file) does not exist.
        ValueError: unreadable or truncated file, an unreachable URL, a faulty ENVI header,
            wavelengths not found or inconsistent, labels of the wrong shape or values,
            ambiguous .mat variables, a window or bounds reaching outside the scene.
        SceneTooLargeError: the cube would not fit in the memory available (a MemoryError and a
            ValueError; :mod:`hsizoo.io.limits`): read it window by window with
            :func:`iter_windows`.
    """
    if _is_dataarray(path):
        from hsizoo.io.xarray import from_xarray

        return from_xarray(path, wavelengths=wavelengths, sensor=sensor, nodata=nodata,
                           labels=labels, class_names=class_names, window=window, bounds=bounds)
    p = _check_path(path)
    win = None
    full_shape: tuple[int, int] | None = None
    if p.suffix.lower() == ".mat":
        scene = _read_mat(p, variable, wavelengths, sensor, nodata)
        full_shape = scene.cube.shape[:2]
        win = resolve_region(window, bounds, *full_shape, None, None, str(p))
        if win is not None:
            scene = Scene(cube=crop_to_window(scene.cube, win), wavelengths=scene.wavelengths,
                          valid=crop_to_window(scene.valid, win), fwhm=scene.fwhm,
                          path=scene.path, sensor=scene.sensor, meta=scene.meta)
    else:
        with open_raster(p) as ds:
            info = _raster_info(p, ds, wavelengths, sensor, nodata)
            full_shape = (ds.height, ds.width)
            win = resolve_region(window, bounds, ds.height, ds.width, info.transform, info.crs,
                                 str(p))
            h, w = full_shape if win is None else (int(win.height), int(win.width))
            # the float32 cube and the validity mask, checked before allocating them
            check_read_size(h * w * (4 * ds.count + 1), p, (h, w, ds.count),
                            f"{info.dtype} read as float32")
            cube = read_block(ds, p, win)
        scene = Scene(
            cube=cube, wavelengths=info.wavelengths, valid=valid_mask(cube, info.nodata),
            fwhm=info.fwhm, crs=info.crs, transform=window_transform(win, info.transform),
            band_names=info.band_names, path=str(p), sensor=sensor,
            meta={**info.meta, "nodata": info.nodata},
        )
    if win is not None:
        r0, c0 = int(win.row_off), int(win.col_off)
        scene.meta["window"] = ((r0, r0 + int(win.height)), (c0, c0 + int(win.width)))
        scene.meta["scene_shape"] = tuple(int(n) for n in full_shape)
    if not scene.valid.any():
        warnings.warn(no_valid_pixel_message(scene.cube, scene.meta.get("nodata"), p),
                      UserWarning, stacklevel=2)
    return attach_labels(scene, labels, class_names, win, full_shape, p.name)


def iter_windows(source: str | Path | Scene, window_size: int | tuple[int, int] = 512,
                 overlap: int = 0, halo: int = 0, *, nodata: float | None = None,
                 on_empty: str = "yield", gdal_cache_mb: int | None = 64,
                 ) -> Iterator[WindowBlock]:
    """Iterate over a scene window by window, reading only each window (plus halo) from disk.

    Args:
        source: A raster path (read with rasterio windows, bounded memory) or an in-memory
            :class:`Scene`. A .mat path is read whole first (the format has no windowed reads).
        window_size: Core window size in pixels, an int or (rows, cols).
        overlap: Pixels shared by neighbouring core windows.
        halo: Margin read around each core window, clipped at the scene edges. A patch model with
            patch size P needs ``halo = P // 2``; crop its output with ``block.crop(...)``.
        nodata: Nodata value overriding the file's.
        on_empty: For a window whose core has no valid pixel: "yield" it, "skip" it or "raise".
        gdal_cache_mb: Cap on GDAL's block cache (``GDAL_CACHEMAX``, MiB) while iterating; None
            leaves GDAL's default (5 % of RAM). A stream reads each block once, so a small cache
            costs nothing and keeps resident memory near one window (benchmarks/io_memory.py:
            +160 MiB instead of +950 MiB for an 800 MiB file on a 24 GiB machine).

    Returns:
        An iterator of :class:`~hsizoo.io.windows.WindowBlock` ``(window, cube, valid,
        read_window, core)``; ``cube`` is (h, w, B) float32 of the read window, freshly
        allocated per window. A plain ``for block in ...`` loop keeps the previous window alive
        while the next is read (two windows resident); ``del block`` at the end of the loop body
        brings that down to one.
    """
    if on_empty not in ("yield", "skip", "raise"):
        raise ValueError(f"on_empty must be 'yield', 'skip' or 'raise', got {on_empty!r}.")
    if isinstance(source, Scene):
        yield from source.windows(window_size, overlap, halo, on_empty)
        return
    p = _check_path(source)
    if p.suffix.lower() == ".mat":
        kind, variables = _mat_variables(p)
        name = _mat_pick(p, variables, 3, None, "hyperspectral cube (H, W, B)")
        check_mat_size(p, variables[name])
        cube = np.asarray(_mat_load(p, kind, [name])[name], dtype=np.float32)
        scene = Scene(cube=cube, wavelengths=np.arange(cube.shape[2], dtype=float) + 1,
                      valid=valid_mask(cube, nodata), path=str(p))
        yield from scene.windows(window_size, overlap, halo, on_empty)
        return
    import rasterio

    env = {} if gdal_cache_mb is None else {"GDAL_CACHEMAX": int(gdal_cache_mb)}
    with rasterio.Env(**env), open_raster(p) as ds:
        nd = ds.nodata if nodata is None else nodata
        for win, read, core in plan_windows(ds.height, ds.width, window_size, overlap, halo):
            cube = read_block(ds, p, read)
            block = WindowBlock(win, cube, valid_mask(cube, nd), read, core)
            if check_empty(block, on_empty, str(p)):
                yield block
            # release this window before reading the next, so one window is resident, not two
            del cube, block
