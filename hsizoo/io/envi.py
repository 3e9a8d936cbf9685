"""ENVI headers: read the ``.hdr`` text beside a data file and check it before GDAL reads the data.

GDAL reads an ENVI header leniently: an unknown interleave is taken as BSQ, a non-numeric
``data ignore value`` as 0, ``bands = 1.5`` as 1 band, a data file shorter than the header
declares is read with zeros past its end, complex values are cast to their real part, a wavelength
``abc`` becomes 0 nm, and a header that is not UTF-8 text stops rasterio with a UnicodeDecodeError.
Each of these would hand the user a cube that disagrees with the file, so :func:`check_envi`
refuses them with the field, its value and what to fix, and the wavelengths, FWHM and band names
of an ENVI file are taken from this module's own reading of the header
(:func:`envi_wavelengths`), not from GDAL's conversions of it.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from hsizoo.io.band_metadata import _fwhm_from_strings, _parse_value, _values_from_strings

# ENVI "data type" codes: (numpy dtype, bytes per value); 6 and 9 are complex.
ENVI_DTYPES = {1: ("uint8", 1), 2: ("int16", 2), 3: ("int32", 4), 4: ("float32", 4),
               5: ("float64", 8), 6: ("complex64", 8), 9: ("complex128", 16), 12: ("uint16", 2),
               13: ("uint32", 4), 14: ("int64", 8), 15: ("uint64", 8)}
_INTERLEAVES = ("bsq", "bil", "bip")
_WHOLE = re.compile(r"\+?\d+")


def find_envi_header(data_path: Path) -> Path | None:
    """The ENVI header GDAL would use for ``data_path`` (``x.hdr``, then ``x.img.hdr``), or None."""
    for cand in (data_path.with_suffix(".hdr"), data_path.with_suffix(".HDR"),
                 data_path.with_name(data_path.name + ".hdr"),
                 data_path.with_name(data_path.name + ".HDR")):
        if cand != data_path and cand.is_file():
            return cand
    return None


def read_envi_header(hdr: Path) -> dict[str, str] | None:
    """The fields of an ENVI header (keys lower-case; a repeated key keeps its last value, as in
    GDAL), or None when the file does not start with ``ENVI`` (then it is not an ENVI header).

    Each line is read as UTF-8, falling back to Latin-1, so that no byte stops the reading and
    a stray byte in one line does not garble the others ("µm" stays "µm").
    """
    text = "\n".join(_decode(line) for line in hdr.read_bytes().splitlines()).lstrip("\ufeff")
    if not text.lstrip().startswith("ENVI"):
        return None
    fields: dict[str, str] = {}
    lines = text.splitlines()[1:]
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if "=" not in line:
            continue
        key, value = line.split("=", 1)
        value = value.strip()
        if value.startswith("{"):
            # a list may run over several lines, up to its closing brace
            while "}" not in value and i < len(lines):
                value += " " + lines[i].strip()
                i += 1
        fields[" ".join(key.strip().lower().split())] = value
    return fields


def _decode(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return line.decode("latin-1")


def _whole(fields: dict[str, str], key: str, hdr: Path, *, minimum: int, default: int | None,
           meaning: str) -> int:
    value = fields.get(key)
    if value is None or not value.strip():
        if default is not None:
            return default
        raise ValueError(
            f"The ENVI header {hdr} has no '{key}' ({meaning}); the data cannot be laid out "
            f"without it. Add '{key} = <whole number>' to the header.")
    v = value.strip()
    if not _WHOLE.fullmatch(v) or int(v) < minimum:
        raise ValueError(
            f"The ENVI header {hdr} says '{key} = {v[:40]}', which is not a whole number "
            f"{'>= 0' if minimum == 0 else '>= 1'} ({meaning}). Fix that line of the header.")
    return int(v)


def check_envi(data_path: Path, hdr: Path, fields: dict[str, str]) -> None:
    """Refuse an ENVI header that does not describe its data file.

    Checks: samples, lines and bands are whole numbers >= 1; the data type is a real-valued ENVI
    code; interleave is bsq/bil/bip; byte order is 0 or 1; the header offset is a whole number
    >= 0; the data ignore value is a number; the file is not compressed; and the data file holds
    at least the bytes the header declares.

    Raises:
        ValueError: the first fault found, with the field, its value and what to fix.
    """
    samples = _whole(fields, "samples", hdr, minimum=1, default=None, meaning="pixels per line")
    lines = _whole(fields, "lines", hdr, minimum=1, default=None, meaning="lines of the image")
    bands = _whole(fields, "bands", hdr, minimum=1, default=None, meaning="number of bands")
    code = _whole(fields, "data type", hdr, minimum=1, default=None, meaning="the value type")
    if code not in ENVI_DTYPES:
        raise ValueError(
            f"The ENVI header {hdr} says 'data type = {code}', which is not an ENVI data type "
            f"code (known: {', '.join(f'{k} = {v[0]}' for k, v in ENVI_DTYPES.items())}). Fix the "
            "header's data type.")
    dtype, size = ENVI_DTYPES[code]
    if dtype.startswith("complex"):
        raise ValueError(
            f"{data_path} holds complex values (ENVI data type {code} = {dtype}); hsizoo reads "
            "real-valued reflectance or radiance. Convert the data to its magnitude or real part "
            "first (e.g. numpy.abs) and save it as a real-valued file.")
    interleave = fields.get("interleave", "bsq").strip().lower()
    if interleave not in _INTERLEAVES:
        raise ValueError(
            f"The ENVI header {hdr} says 'interleave = {interleave[:40]}'; it must be bsq, bil or "
            "bip (how the bands are laid out in the data file). Fix the header's interleave.")
    order = fields.get("byte order", "0").strip() or "0"
    if order not in ("0", "1"):
        raise ValueError(
            f"The ENVI header {hdr} says 'byte order = {order[:40]}'; it must be 0 (little-endian, "
            "Intel) or 1 (big-endian). Fix the header's byte order.")
    offset = _whole(fields, "header offset", hdr, minimum=0, default=0,
                    meaning="bytes before the data")
    if fields.get("file compression", "0").strip() not in ("0", ""):
        raise ValueError(
            f"The ENVI header {hdr} says the data file is compressed ('file compression = "
            f"{fields['file compression'][:20]}'), which GDAL does not read. Save the data "
            "uncompressed.")
    ignore = fields.get("data ignore value")
    if ignore is not None and ignore.strip():
        try:
            float(ignore)
        except ValueError:
            raise ValueError(
                f"The ENVI header {hdr} says 'data ignore value = {ignore.strip()[:40]}', which is "
                "not a number (the value marking missing pixels). Fix it, remove the line, or pass "
                "nodata=<value>.") from None
    need = offset + samples * lines * bands * size
    have = data_path.stat().st_size
    if have < need:
        raise ValueError(
            f"The data file {data_path} holds {have:,} bytes but its ENVI header {hdr.name} "
            f"declares {lines} lines x {samples} samples x {bands} bands of {dtype} after a "
            f"{offset}-byte offset = {need:,} bytes: the file is truncated or the header's size "
            "fields are wrong. Re-export or re-download the data, or fix the header.")


def split_list(value: str | None) -> list[str] | None:
    """The items of an ENVI list ``{a, b, c}`` (None when the field is absent or empty)."""
    if value is None:
        return None
    s = value.strip()
    if s.startswith("{"):
        s = s[1:]
    if s.endswith("}"):
        s = s[:-1]
    items = [t.strip() for t in s.split(",")]
    return [t for t in items if t] or None


def envi_wavelengths(fields: dict[str, str], num_bands: int, hdr: Path,
                     ) -> tuple[np.ndarray, np.ndarray | None, str] | None:
    """Band centres and FWHM (nm) from the header's ``wavelength`` list, else its band names.

    Returns:
        (wavelengths, fwhm or None, source), a NaN list of the header's length when it has the
        wrong number of values (reported by the caller as such), or None when there is none.

    Raises:
        ValueError: an item of the wavelength list that is not a number, or an unknown unit.
    """
    unit = fields.get("wavelength units")
    items = split_list(fields.get("wavelength"))
    if items:
        source = "ENVI header wavelength list"
        if len(items) != num_bands:
            return np.full(len(items), np.nan), None, source
        bad = [t for t in items if _parse_value(t) is None]
        if bad:
            raise ValueError(
                f"The wavelength list of the ENVI header {hdr} has {len(bad)} item(s) that are not "
                f"numbers (first: {bad[0][:40]!r}). Fix the header's 'wavelength = {{...}}' (one "
                "number per band), or pass wavelengths=[... nm, one per band] (CLI: --wavelengths) "
                "or sensor=<preset>.")
        wl = _values_from_strings(items, unit)
        fwhm = _fwhm_from_strings(split_list(fields.get("fwhm")), unit, items)
        return wl, fwhm, source  # type: ignore[return-value]
    names = envi_band_names(fields)
    if names and len(names) == num_bands:
        wl = _values_from_strings(names, unit, free_text=True)
        if wl is not None:
            return wl, None, "ENVI header band names"
    return None


def envi_band_names(fields: dict[str, Any]) -> list[str] | None:
    """The header's band names, or None."""
    return split_list(fields.get("band names"))
