"""Band metadata: finding band centre wavelengths, FWHM and their units, normalised to nm.

Band centre wavelengths are part of the data (DESIGN.md, "Spectral identity is data"), so the
readers look for them in every place a file is known to keep them, in this order:

1. ``wavelengths=`` given by the caller;
2. per-band tags (``wavelength``, ``center_wavelength``, GDAL's IMAGERY domain
   ``CENTRAL_WAVELENGTH_UM``), with ``wavelength_units`` where present;
3. band descriptions (``"Band 1 (450.5 nm)"``, ``"450.5"``, ``"0.4505 um"``);
4. the dataset-level ENVI metadata domain (``wavelength = {...}``, ``wavelength units``);
5. for .mat files, a 1-D variable named ``wavelength(s)``/``wl`` of one value per band
   (found by :mod:`hsizoo.io.matlab`);
6. the ``sensor=`` preset of :mod:`hsizoo.spectral.sensors`.

Values are normalised to nanometres: an explicit unit wins (lengths are scaled, wavenumbers in
cm-1 become 1e7 / value nm, a unit that is neither is refused with the list of known ones);
without one (or "Unknown"), values below 30 are taken as micrometres. A scene whose wavelengths
cannot be found is refused with a message saying where the reader looked and how to supply them;
a metadata list of the wrong length is refused as such.
"""
from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hsizoo.io.scene import axis_order_hint

_UNIT_NM = {"nm", "nanometer", "nanometers", "nanometre", "nanometres", "nanometers(nm)"}
_UNIT_UM = {"um", "µm", "μm", "micrometer", "micrometers", "micrometre", "micrometres", "micron",
            "microns", "micro-meters"}
# Lengths, as multipliers to nm. ENVI's "wavelength units" names most of them.
_UNIT_LENGTH = {"mm": 1e6, "millimeter": 1e6, "millimeters": 1e6, "millimetre": 1e6,
                "millimetres": 1e6, "cm": 1e7, "centimeter": 1e7, "centimeters": 1e7,
                "centimetre": 1e7, "centimetres": 1e7, "m": 1e9, "meter": 1e9, "meters": 1e9,
                "metre": 1e9, "metres": 1e9, "angstrom": 0.1, "angstroms": 0.1, "å": 0.1}
# Wavenumbers in cm-1: wavelength (nm) = 1e7 / wavenumber.
_UNIT_WAVENUMBER = {"wavenumber", "wavenumbers", "cm-1", "cm^-1", "cm⁻¹", "1/cm", "/cm",
                    "inversecentimeters", "wavenumber(cm-1)", "wavenumbers(cm-1)"}
# An explicit "no unit": the magnitude rule applies, as without one.
_UNIT_ABSENT = {"", "unknown", "none", "n/a", "na"}
#: Wavelength units the readers understand, for messages.
KNOWN_UNITS = ("Nanometers (nm), Micrometers (um, microns), Millimeters (mm), Centimeters (cm), "
               "Meters (m), Angstroms, Wavenumber (cm-1, converted as 1e7 / value nm)")
_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_NUM_UNIT = re.compile(rf"({_NUM})\s*(nm|um|µm|μm|nanomet(?:er|re)s?|micromet(?:er|re)s?|microns?)\b",
                       re.IGNORECASE)
_WL_TAG_KEYS = ("wavelength", "center_wavelength", "centre_wavelength", "central_wavelength",
                "wavelength_nm", "wavelength_um", "wavelengths")
_FWHM_TAG_KEYS = ("fwhm", "fwhm_nm", "fwhm_um", "bandwidth")
_UNIT_TAG_KEYS = ("wavelength_units", "wavelength_unit", "wavelength units", "wavelengthunits")


# ----------------------------------------------------------------------------------------------
# Wavelength parsing


def _unit_factor(unit: str | None) -> float | str | None:
    """Multiplier from ``unit`` to nanometres, "wavenumber", or None when no unit is given.

    Raises:
        ValueError: a unit that is neither a length nor wavenumbers ("Index", "GHz", ...).
    """
    if unit is None:
        return None
    u = str(unit).strip().lower().replace(" ", "")
    if u in _UNIT_ABSENT:
        return None
    if u in _UNIT_NM:
        return 1.0
    if u in _UNIT_UM:
        return 1000.0
    if u in _UNIT_LENGTH:
        return _UNIT_LENGTH[u]
    if u in _UNIT_WAVENUMBER:
        return "wavenumber"
    raise ValueError(
        f"The wavelength unit {unit!r} is not one hsizoo knows ({KNOWN_UNITS}), so the band "
        "centres cannot be read as wavelengths. Fix the unit in the file's metadata, or pass "
        "wavelengths=[... nm, one per band] (CLI: --wavelengths) or sensor=<preset>."
    )


def _to_nm(values: Sequence[float], unit: str | None) -> np.ndarray:
    """Normalise wavelengths to nm: an explicit unit wins, else values < 30 are micrometres."""
    wl = np.asarray(values, dtype=np.float64)
    factor = _unit_factor(unit)
    if factor == "wavenumber":
        if wl.size and not np.all(wl > 0):
            raise ValueError(
                f"The band centres are given in wavenumbers ({unit!r}) but include "
                f"{wl[~(wl > 0)][0]:g}, which is not a positive wavenumber; fix the file's "
                "metadata or pass wavelengths=[... nm, one per band].")
        return 1e7 / wl
    if factor is None:
        factor = 1000.0 if wl.size and np.nanmax(wl) < 30 else 1.0
    return wl * float(factor)


def _parse_value(text: Any) -> tuple[float, str | None] | None:
    """Parse "450.5", "450.5 nm", "Band 1 (450.5 nm)" or "0.4505 um" into (value, unit)."""
    if text is None:
        return None
    s = str(text).strip()
    if not s:
        return None
    m = _NUM_UNIT.search(s)
    if m:
        return float(m.group(1)), m.group(2)
    try:
        return float(s), None
    except ValueError:
        pass
    # "Band 7: 512.3" or "b7 (512.3)": the last number, provided it is not the band index alone
    nums = re.findall(_NUM, s)
    if len(nums) >= 2:
        return float(nums[-1]), None
    return None


def _parse_envi_list(text: str | None) -> list[str] | None:
    """Split an ENVI header list "{ a, b, c }" into its items."""
    if text is None:
        return None
    s = str(text).strip()
    if s.startswith("{") and s.endswith("}"):
        s = s[1:-1]
    items = [t.strip() for t in s.split(",")]
    items = [t for t in items if t]
    return items or None


def _ci_get(tags: dict, keys: Sequence[str]) -> str | None:
    """Case-insensitive lookup of the first present key."""
    lower = {str(k).lower(): v for k, v in tags.items()}
    for k in keys:
        if k in lower and str(lower[k]).strip():
            return lower[k]
    return None


def _values_from_strings(items: Sequence[Any], unit: str | None) -> np.ndarray | None:
    """Parse one value per item; None unless every item parses."""
    parsed = [_parse_value(t) for t in items]
    if not parsed or any(p is None for p in parsed):
        return None
    units = {p[1].lower() for p in parsed if p[1]}  # type: ignore[index]
    inline = units.pop() if len(units) == 1 else None
    return _to_nm([p[0] for p in parsed], unit or inline)  # type: ignore[index]


def _raster_wavelengths(ds: Any) -> tuple[np.ndarray, np.ndarray | None, str] | None:
    """Find band centres (nm), FWHM (nm) and the place they came from in an open rasterio dataset."""
    n = ds.count
    # 2. per-band tags, default domain then GDAL's IMAGERY domain (GDAL >= 3.10, in micrometres)
    band_tags = [ds.tags(i) for i in range(1, n + 1)]
    wl_items = [_ci_get(t, _WL_TAG_KEYS) for t in band_tags]
    if all(v is not None for v in wl_items):
        unit = _ci_get(band_tags[0], _UNIT_TAG_KEYS)
        key = next(k for k in band_tags[0] if k.lower() in _WL_TAG_KEYS).lower()
        if unit is None and key.endswith("_um"):
            unit = "um"
        wl = _values_from_strings(wl_items, unit)
        if wl is not None:
            fw_items = [_ci_get(t, _FWHM_TAG_KEYS) for t in band_tags]
            fwhm = _values_from_strings(fw_items, unit) if all(v is not None for v in fw_items) else None
            return wl, fwhm, "band tags"
    try:
        img = [ds.tags(i, ns="IMAGERY") for i in range(1, n + 1)]
    except Exception:  # older GDAL: no such domain
        img = []
    if img and all("CENTRAL_WAVELENGTH_UM" in t for t in img):
        wl = np.array([float(t["CENTRAL_WAVELENGTH_UM"]) for t in img]) * 1000.0
        fwhm = (np.array([float(t["FWHM_UM"]) for t in img]) * 1000.0
                if all("FWHM_UM" in t for t in img) else None)
        return wl, fwhm, "band tags (IMAGERY domain)"
    # 3. band descriptions
    desc = list(ds.descriptions)
    if all(d for d in desc):
        wl = _values_from_strings(desc, None)
        if wl is not None:
            return wl, None, "band descriptions"
    # 4. dataset-level ENVI domain (or the same keys in the default domain)
    wrong = None
    for ns, label in (("ENVI", "ENVI metadata domain"), (None, "dataset tags")):
        try:
            tags = ds.tags(ns=ns) if ns else ds.tags()
        except Exception:
            continue
        items = _parse_envi_list(_ci_get(tags, ("wavelength", "wavelengths")))
        if items and len(items) != n:
            # Reported by _resolve as a list of the wrong length, not as "no wavelengths".
            wrong = wrong or (np.full(len(items), np.nan), None, label)
        elif items:
            unit = _ci_get(tags, _UNIT_TAG_KEYS)
            wl = _values_from_strings(items, unit)
            if wl is not None:
                fw = _parse_envi_list(_ci_get(tags, ("fwhm",)))
                fwhm = _values_from_strings(fw, unit) if fw and len(fw) == n else None
                return wl, fwhm, label
    return wrong


def _sensor_wavelengths(sensor: str, num_bands: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Band centres and FWHM of a named preset, checked against the band count."""
    from hsizoo.spectral.sensors import get_sensor, list_sensors

    try:
        preset = get_sensor(sensor)
    except (KeyError, ValueError) as err:
        raise ValueError(
            f"Unknown sensor preset {sensor!r}; known presets: {', '.join(list_sensors())}."
        ) from err
    wl = np.asarray(preset.wavelengths, dtype=np.float64)
    if wl.size != num_bands:
        raise ValueError(
            f"Sensor preset {sensor!r} has {wl.size} bands but the scene has {num_bands}; pass the "
            "scene's own wavelengths= (nm, one per band) or the preset that matches its bands."
        )
    fwhm = getattr(preset, "fwhm", None)
    return wl, (None if fwhm is None else np.asarray(fwhm, dtype=np.float64))


def _resolve(path: Path, num_bands: int, wavelengths: Sequence[float] | None, sensor: str | None,
             found: tuple[np.ndarray, np.ndarray | None, str] | None, looked: str,
             shape: tuple[int, ...] | None = None) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Apply the documented order: explicit, file metadata, sensor preset; else a clear error."""
    from hsizoo.spectral.grid import check_wavelengths

    if wavelengths is not None:
        wl = np.asarray(wavelengths, dtype=np.float64).reshape(-1)
        if wl.size and np.nanmax(wl) < 30:
            warnings.warn(
                f"The wavelengths given for {path.name} are all below 30; reading them as "
                "micrometres and converting to nm. Pass nanometres to silence this warning.",
                UserWarning, stacklevel=3,
            )
            wl = wl * 1000.0
        return check_wavelengths(wl, num_bands), None, "argument wavelengths="
    if found is not None:
        wl, fwhm, source = found
        if wl.size != num_bands:
            what = (f"The wavelength list in {path} ({source}) has {wl.size} values but the "
                    f"file has {num_bands} bands")
            if sensor is None:
                raise ValueError(
                    f"{what}; one wavelength per band is needed.{axis_order_hint(shape, wl.size)} "
                    "Fix the metadata, or pass wavelengths=[... nm, one per band] (CLI: "
                    "--wavelengths) or sensor=<preset>.")
            warnings.warn(f"{what}; using the sensor preset {sensor!r} instead.", UserWarning,
                          stacklevel=3)
        else:
            try:
                return check_wavelengths(wl, num_bands), fwhm, source
            except ValueError as err:
                raise ValueError(
                    f"The wavelengths stored in {path} ({source}) are not usable: {err} Pass "
                    "wavelengths= explicitly to override them."
                ) from err
    if sensor is not None:
        wl, fwhm = _sensor_wavelengths(sensor, num_bands)
        return check_wavelengths(wl, num_bands), fwhm, f"sensor preset {sensor!r}"
    try:
        from hsizoo.spectral.sensors import list_sensors

        known = ", ".join(list_sensors())
    except ImportError:  # pragma: no cover - sensors module is part of the package
        known = "see hsizoo.spectral.sensors.list_sensors()"
    raise ValueError(
        f"No band wavelengths found for {path} ({num_bands} bands). Looked in: {looked}. Pass "
        f"wavelengths=[... nm, one per band] or sensor=<preset> (known presets: {known})."
    )
