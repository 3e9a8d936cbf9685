"""The reflectance spectral library of simulated scenes: reading ENVI libraries and earthlib.

One job: turn a spectral library on disk into a :class:`SpectralLibrary` (wavelengths, read-only
spectra, names and per-spectrum metadata). :func:`read_envi_library` reads any ENVI spectral
library (``.sli`` + ``.sli.hdr``, plus an optional CSV of metadata) with numpy alone;
:func:`load_spectral_library` reads the ``earthlib`` library (7,261 measured and modelled spectra,
400-2450 nm at 10 nm, water-vapour bands removed) once and caches it. Which spectra a simulated
class uses is decided in :mod:`hsizoo.data.materials`.
"""
from __future__ import annotations

import csv
import importlib.util
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["SpectralLibrary", "load_spectral_library", "read_envi_library"]


@dataclass(frozen=True)
class SpectralLibrary:
    """A reflectance spectral library.

    Attributes:
        wavelengths: (L,) sample wavelengths in nm, strictly increasing (with gaps where the
            water-vapour bands were removed).
        spectra: (N, L) float32 reflectance (0-1), read-only.
        names: N spectrum names, in row order.
        metadata: Column name -> (N,) array of strings, from the library's CSV (for earthlib:
            LEVEL_1 pervious/impervious, LEVEL_2 bare/vegetation/npv/built/burned, LEVEL_3 cover
            type such as soil, canopy, road, asphalt, LEVEL_4 measured/simulated, SOURCE, ...).
        path: The binary file the spectra were read from.
    """

    wavelengths: np.ndarray
    spectra: np.ndarray
    names: tuple[str, ...]
    metadata: dict[str, np.ndarray] = field(repr=False)
    path: str = ""

    def __len__(self) -> int:
        return int(self.spectra.shape[0])

    def where(self, **columns: str | Sequence[str]) -> np.ndarray:
        """Row indices whose metadata match, e.g. ``lib.where(LEVEL_3=["soil", "dirt"])``.

        Args:
            **columns: Column name -> accepted value or values (case-insensitive).

        Returns:
            Sorted int64 row indices.
        """
        keep = np.ones(len(self), dtype=bool)
        for col, values in columns.items():
            if col not in self.metadata:
                raise KeyError(f"No metadata column {col!r}; columns: {sorted(self.metadata)}.")
            vals = [values] if isinstance(values, str) else list(values)
            keep &= np.isin(np.char.lower(self.metadata[col].astype(str)),
                            [v.lower() for v in vals])
        return np.flatnonzero(keep)


_ENVI_DTYPES = {1: "u1", 2: "i2", 3: "i4", 4: "f4", 5: "f8", 12: "u2", 13: "u4", 14: "i8",
                15: "u8"}


def _read_envi_header(path: Path) -> dict[str, str]:
    text = path.read_text(encoding="utf-8", errors="replace")
    if not text.lstrip().startswith("ENVI"):
        raise ValueError(f"{path} is not an ENVI header (it must start with 'ENVI').")
    fields: dict[str, str] = {}
    # Values are either one line, or a {...} list that may span lines.
    for m in re.finditer(r"^\s*([^=\n{}]+?)\s*=\s*(\{.*?\}|[^\n]*)", text, re.M | re.S):
        fields[m.group(1).strip().lower()] = m.group(2).strip()
    return fields


def _envi_list(value: str) -> list[str]:
    return [v.strip() for v in value.strip().strip("{}").split(",") if v.strip()]


def _earthlib_data_dir() -> Path:
    # find_spec locates the package without importing it (earthlib's __init__ pulls in more).
    spec = importlib.util.find_spec("earthlib")
    if spec is None or not spec.submodule_search_locations:
        from hsizoo._optional import MissingExtraError

        raise MissingExtraError(
            "Simulated scenes need the optional package 'earthlib' (their spectral library), "
            'which is not installed: pip install "hsizoo[simulate]" (or pip install earthlib).')
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def read_envi_library(sli: Path, csv_path: Path | None = None) -> SpectralLibrary:
    """Read an ENVI spectral library (``.sli`` + ``.sli.hdr``) with numpy, and its CSV metadata.

    Args:
        sli: Path of the binary ``.sli`` file; the header is ``<sli>.hdr``.
        csv_path: Optional CSV with a NAME column and one row per spectrum.

    Returns:
        The library, rows in the order of the binary file.
    """
    hdr = _read_envi_header(Path(str(sli) + ".hdr"))
    samples, lines = int(hdr["samples"]), int(hdr["lines"])
    if int(hdr.get("bands", "1")) != 1:
        raise ValueError(f"{sli}: an ENVI spectral library has bands = 1; got {hdr['bands']}.")
    code = int(hdr["data type"])
    if code not in _ENVI_DTYPES:
        raise ValueError(f"{sli}: unsupported ENVI data type {code}.")
    dtype = np.dtype(_ENVI_DTYPES[code]).newbyteorder(">" if hdr.get("byte order") == "1" else "<")
    data = np.fromfile(sli, dtype=dtype, count=samples * lines,
                       offset=int(hdr.get("header offset", "0")))
    if data.size != samples * lines:
        raise ValueError(f"{sli} holds {data.size} values; its header promises {samples * lines}.")
    spectra = data.reshape(lines, samples).astype(np.float32)
    wl = np.asarray([float(v) for v in _envi_list(hdr["wavelength"])], dtype=np.float64)
    units = hdr.get("wavelength units", "").lower()
    if units.startswith("micro") or units in ("um", "µm") or (not units and wl.max() < 30):
        wl = wl * 1000.0
    names = tuple(_envi_list(hdr.get("spectra names", ""))) or tuple(str(i) for i in range(lines))
    metadata: dict[str, np.ndarray] = {}
    if csv_path is not None:
        with open(csv_path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        # Rows are matched by position: names are not unique in earthlib (ash, charbark, ...)
        # and one differs in spelling between its header and CSV (burncham / burnedcham).
        agree = sum(r.get("NAME") == n for r, n in zip(rows, names))
        if len(rows) != lines or agree < 0.99 * lines:
            raise ValueError(
                f"{csv_path} does not describe {sli} row by row ({len(rows)} rows for {lines} "
                f"spectra, {agree} names in agreement).")
        for col in rows[0]:
            metadata[col] = np.asarray([r[col] for r in rows])
    spectra.setflags(write=False)
    wl.setflags(write=False)
    return SpectralLibrary(wavelengths=wl, spectra=spectra, names=names, metadata=metadata,
                           path=str(sli))


@lru_cache(maxsize=1)
def load_spectral_library() -> SpectralLibrary:
    """The earthlib spectral library (7,261 spectra, 400-2450 nm at 10 nm), read once and cached.

    Returns:
        The library; its arrays are read-only and shared between calls.

    Raises:
        ModuleNotFoundError: earthlib is not installed.
    """
    data = _earthlib_data_dir()
    return read_envi_library(data / "spectra.sli", data / "spectra.csv")
