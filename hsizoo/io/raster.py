"""Opening rasters (GeoTIFF, ENVI, anything GDAL reads) and reading blocks of them as float32.

An ENVI data file is opened only after its header has been checked (:mod:`hsizoo.io.envi`):
GDAL reads faulty headers leniently, and the cube would then disagree with the file.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from hsizoo.io.envi import check_envi, find_envi_header, read_envi_header
from hsizoo.io.remote import RemotePath, is_remote, remote_env, remote_open_error

_RASTER_SUFFIXES = {".tif", ".tiff", ".gtiff", ".img", ".dat", ".bsq", ".bil", ".bip", ".raw",
                    ".envi", ".vrt", ".hdr", ""}
_ENVI_DATA_SUFFIXES = ("", ".img", ".dat", ".bsq", ".bil", ".bip", ".raw", ".envi")


def _envi_data_path(path: Path) -> Path:
    """The ENVI data file that goes with a .hdr header."""
    stem = path.with_suffix("")
    for suffix in _ENVI_DATA_SUFFIXES:
        cand = stem.with_name(stem.name + suffix) if suffix else stem
        if cand.is_file() and cand != path:
            return cand
    raise FileNotFoundError(
        f"ENVI header {path} found but no data file beside it (looked for "
        f"{', '.join(stem.name + s for s in _ENVI_DATA_SUFFIXES)}). Put the data file next to the "
        "header with the same base name, or pass the data file's path."
    )


def _check_path(path: str | Path) -> Path | RemotePath:
    """A local path checked to exist (an ENVI header resolved to its data file), or a
    :class:`~hsizoo.io.remote.RemotePath` for a URL / GDAL network path, left to GDAL."""
    if is_remote(path):
        remote = path if isinstance(path, RemotePath) else RemotePath(path)
        if remote.suffix.lower() in (".mat", ".npy", ".npz"):
            raise ValueError(
                f"{remote} is a {remote.suffix} file on the network; hsizoo reads those from a "
                "local file only. Download it first, or store the cube as a (Cloud-Optimized) "
                "GeoTIFF, which is read over the network window by window.")
        return remote
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(
            f"Scene file {p} does not exist. Check the path (relative paths are resolved from "
            f"{Path.cwd()})."
        )
    if p.is_dir():
        raise ValueError(f"{p} is a folder; pass the path of a GeoTIFF, ENVI or .mat file.")
    if p.suffix.lower() == ".hdr":
        p = _envi_data_path(p)
    return p


def envi_header_of(path: Path | RemotePath) -> tuple[Path, dict[str, str]] | None:
    """(header path, fields) of an ENVI data file, or None when ``path`` has no ENVI header.

    A remote ENVI file is left to GDAL (its header is not fetched and checked here).
    """
    if isinstance(path, RemotePath) or path.suffix.lower() not in _ENVI_DATA_SUFFIXES:
        return None
    hdr = find_envi_header(path)
    if hdr is None:
        return None
    fields = read_envi_header(hdr)
    return None if fields is None else (hdr, fields)


def open_raster(path: Path | RemotePath) -> Any:
    """Open a raster with rasterio; an ENVI file's header is checked first (:func:`check_envi`).

    A :class:`~hsizoo.io.remote.RemotePath` is opened through GDAL's network file systems
    (``/vsicurl/``, ``/vsis3/``) with :func:`~hsizoo.io.remote.remote_env`'s options.

    Raises:
        ValueError: a faulty ENVI header, a file GDAL cannot open (an unreachable URL), or a
            raster without bands.
    """
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

    envi = envi_header_of(path)
    if envi is not None:
        check_envi(path, *envi)
    remote = isinstance(path, RemotePath)
    try:
        with warnings.catch_warnings(), rasterio.Env(**(remote_env() if remote else {})):
            # not being georeferenced is fine (crs/transform become None)
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            ds = rasterio.open(path.gdal if remote else path)
    except RasterioIOError as err:
        if remote:
            raise remote_open_error(path, err) from err
        raise ValueError(
            f"Could not read {path} as a raster ({err}). The file may be truncated, corrupt or in "
            "a format GDAL does not read; for ENVI data keep the .hdr header beside it. Re-export "
            "or re-download the file."
        ) from err
    if ds.count < 1:
        ds.close()
        raise ValueError(f"{path} opens as a raster without any band; it holds no image data. "
                         "Re-export the file.")
    return ds


def check_real(ds: Any, path: Path) -> None:
    """Refuse a raster of complex values (GDAL would cast them to their real part silently)."""
    if any(str(d).startswith("complex") for d in ds.dtypes):
        raise ValueError(
            f"{path} holds complex values ({ds.dtypes[0]}); hsizoo reads real-valued reflectance, "
            "radiance or class ids. Convert the data to its magnitude or real part first (e.g. "
            "numpy.abs) and save it as a real-valued file.")


def read_block(ds: Any, path: Path, window: Any = None) -> np.ndarray:
    """Read (h, w, B) float32 from an open dataset, turning GDAL read errors into ValueError.

    GDAL converts to float32 and interleaves bands straight into the (h, w, B) buffer (rasterio
    passes the strided view on), so a window costs one float32 block and no temporary copies.
    """
    from einops import rearrange
    from rasterio.errors import RasterioIOError
    from rasterio.windows import Window

    check_real(ds, path)
    if window is None:
        window = Window(0, 0, ds.width, ds.height)
    out = np.empty((int(window.height), int(window.width), ds.count), dtype=np.float32)
    try:
        ds.read(window=window, out=rearrange(out, "h w b -> b h w"))
    except RasterioIOError as err:
        raise ValueError(
            f"Reading pixels of {path} failed ({err}); the file is probably truncated or corrupt. "
            "Re-export or re-download it."
        ) from err
    return out
