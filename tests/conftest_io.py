"""Helpers that write tiny, seeded hyperspectral files (GeoTIFF, ENVI, MATLAB v5 / v7.3) for tests.

Imported by tests/io/test_io_*.py and tests/data/test_datasets.py (a plain module, not a pytest conftest).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

CRS = "EPSG:32616"
ORIGIN = (500_000.0, 4_200_000.0)
PIXEL = 20.0


def make_cube(h: int = 9, w: int = 11, b: int = 6, seed: int = 0, dtype: str = "int16") -> np.ndarray:
    """A seeded (H, W, B) cube with values 100..4000."""
    rng = np.random.default_rng(seed)
    return rng.integers(100, 4000, size=(h, w, b)).astype(dtype)


def make_wavelengths(b: int = 6) -> np.ndarray:
    """B increasing band centres in nm across the visible and NIR."""
    return np.round(np.linspace(450.5, 950.0, b), 2)


def transform():  # noqa: ANN201 - affine.Affine
    from rasterio.transform import from_origin

    return from_origin(ORIGIN[0], ORIGIN[1], PIXEL, PIXEL)


def write_geotiff(path: Path, cube: np.ndarray, *, descriptions: list[str] | None = None,
                  band_tags: list[dict] | None = None, envi: dict | None = None,
                  dataset_tags: dict | None = None, nodata: float | None = None,
                  crs: str | None = CRS) -> Path:
    """Write (H, W, B) as a B-band GeoTIFF with the given wavelength metadata."""
    import rasterio

    h, w, b = cube.shape
    profile = dict(driver="GTiff", height=h, width=w, count=b, dtype=str(cube.dtype), nodata=nodata)
    if crs is not None:
        profile.update(crs=crs, transform=transform())
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(np.moveaxis(cube, 2, 0))
        for i in range(b):
            if descriptions is not None:
                ds.set_band_description(i + 1, descriptions[i])
            if band_tags is not None:
                ds.update_tags(i + 1, **band_tags[i])
        if envi is not None:
            ds.update_tags(ns="ENVI", **envi)
        if dataset_tags is not None:
            ds.update_tags(**dataset_tags)
    return path


def envi_list(values) -> str:  # noqa: ANN001
    return "{" + ", ".join(f"{v:g}" for v in values) + "}"


def write_envi(stem: Path, cube: np.ndarray, wavelengths: np.ndarray, *, units: str = "Nanometers",
               data_suffix: str = ".img", band_names: list[str] | None = None,
               nodata: float | None = None) -> tuple[Path, Path]:
    """Write an ENVI BSQ data file plus .hdr by hand, as ENVI itself lays them out."""
    h, w, b = cube.shape
    codes = {"int16": 2, "float32": 4, "uint16": 12}
    data = stem.with_name(stem.name + data_suffix)
    np.ascontiguousarray(np.moveaxis(cube, 2, 0)).astype(cube.dtype.newbyteorder("<")).tofile(data)
    lines = [
        "ENVI", "description = {test scene}", f"samples = {w}", f"lines = {h}", f"bands = {b}",
        "header offset = 0", "file type = ENVI Standard", f"data type = {codes[str(cube.dtype)]}",
        "interleave = bsq", "byte order = 0",
        f"map info = {{UTM, 1, 1, {ORIGIN[0]:.1f}, {ORIGIN[1]:.1f}, {PIXEL}, {PIXEL}, 16, North, "
        "WGS-84, units=Meters}",
        f"wavelength units = {units}", f"wavelength = {envi_list(wavelengths)}",
    ]
    if band_names is not None:
        lines.append("band names = {" + ", ".join(band_names) + "}")
    if nodata is not None:
        lines.append(f"data ignore value = {nodata:g}")
    hdr = stem.with_name(stem.name + ".hdr")
    hdr.write_text("\n".join(lines) + "\n")
    return hdr, data


def write_mat_v5(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    import scipy.io as sio

    sio.savemat(path, arrays)
    return path


def write_mat_v73(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write a MATLAB v7.3 file the way MATLAB does: 512-byte text header, then HDF5 whose
    datasets hold the column-major arrays (axes reversed as seen from C order), with
    MATLAB_class attributes."""
    import h5py

    classes = {"float64": "double", "float32": "single", "uint8": "uint8", "uint16": "uint16",
               "int16": "int16", "int32": "int32"}
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, arr in arrays.items():
            ds = f.create_dataset(name, data=np.transpose(arr))
            ds.attrs["MATLAB_class"] = np.bytes_(classes[str(arr.dtype)])
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    with open(path, "r+b") as fh:
        fh.write(header.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM")
    return path
