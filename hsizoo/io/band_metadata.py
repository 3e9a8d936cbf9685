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

An ENVI file's wavelengths, FWHM and band names come from its own header
(:mod:`hsizoo.io.envi`) instead of 2-4, since GDAL's conversions of them are lenient.

Values are normalised to nanometres: an explicit unit wins (lengths are scaled, wavenumbers in
cm-1 become 1e7 / value nm, a unit that is neither is refused with the list of known ones);
without one (or "Unknown"), values below 30 are taken as micrometres. Bands tagged in different
units are converted each with its own. FWHM follow their centres' unit (a wavenumber width dv is
1e7 dv / v^2 nm); FWHM that are not positive numbers are dropped with a warning. A field that
holds a wavelength must be a number (with an optional unit): junk in one is refused, naming it,
rather than skipped for the next place; only band descriptions and names are searched for a
number inside free text. A scene whose wavelengths cannot be found is refused with a message
saying where the reader looked and how to supply them; a metadata list of the wrong length is
refused as such.
"""
from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hsizoo.io.scene import axis_order_hint
from hsizoo.spectral.grid import as_wavelength_array

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
        finite = wl[np.isfinite(wl)]
        factor = 1000.0 if finite.size and finite.max() < 30 else 1.0
    return wl * float(factor)


def _band_numbers(texts: Sequence[Any]) -> bool:
    """Whether band descriptions are band numbers ("1", "2", ... or "Band 1", ...): consecutive
    integers without a unit, which the micrometre rule would otherwise read as 1000, 2000, ...
    nm."""
    parsed = [_parse_value(t, free_text=True) for t in texts]
    if len(parsed) < 2 or any(p is None or p[1] is not None for p in parsed):
        return False
    v = np.asarray([p[0] for p in parsed])  # type: ignore[index]
    return bool(np.all(v == np.round(v)) and np.all(np.diff(v) == 1) and v[0] in (0, 1))


def _parse_value(text: Any, free_text: bool = False) -> tuple[float, str | None] | None:
    """Parse "450.5", "450.5 nm" or "0.4505 um" into (value, unit); None if it is not that.

    With ``free_text`` (band descriptions, band names) the number may sit in other text:
    "Band 1 (450.5 nm)", "Band 7: 512.3". Metadata fields that hold a wavelength are parsed
    strictly, so that junk such as "4x50.5" is refused rather than read as 50.5.
    """
    if text is None:
        return None
    s = str(text).strip()
    if not s:
        return None
    try:
        return float(s), None
    except ValueError:
        pass
    if not free_text:
        m = _NUM_UNIT.fullmatch(s)
        return (float(m.group(1)), m.group(2)) if m else None
    m = _NUM_UNIT.search(s)
    if m:
        return float(m.group(1)), m.group(2)
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


def _fwhm_from_strings(items: Sequence[Any] | None, unit: str | None | list[str | None],
                       wl_items: Sequence[Any]) -> np.ndarray | None:
    """FWHM (nm) stored in the unit of their band centres ``wl_items``; None unless every item
    parses. A length scales as the centres do (the magnitude rule follows the centres' values,
    so "10" beside "450" stays 10 nm); a width in wavenumbers dv becomes 1e7 dv / v^2 nm."""
    if not items or len(items) != len(wl_items) or any(t is None for t in items):
        return None
    fw = [_parse_value(t) for t in items]
    wl = [_parse_value(t, True) for t in wl_items]
    if any(p is None for p in fw) or any(p is None for p in wl):
        return None
    units = unit if isinstance(unit, list) else [unit] * len(fw)
    raw = np.array([q[0] for q in wl])  # type: ignore[index]
    finite = raw[np.isfinite(raw)]
    guess = 1000.0 if finite.size and finite.max() < 30 else 1.0
    out = []
    for (v, inline), (c, c_unit), u in zip(fw, wl, units):  # type: ignore[misc]
        factor = _unit_factor(inline or u or c_unit)
        if factor == "wavenumber":
            with np.errstate(all="ignore"):
                out.append(1e7 * v / c**2 if c else np.nan)
        else:
            out.append(v * (guess if factor is None else factor))
    return np.asarray(out, dtype=np.float64)


def _ci_key(tags: dict, keys: Sequence[str]) -> str | None:
    """Case-insensitive lookup: the first of ``keys`` present with a non-empty value."""
    lower = {str(k).lower(): v for k, v in tags.items()}
    for k in keys:
        if k in lower and str(lower[k]).strip():
            return k
    return None


def _ci_get(tags: dict, keys: Sequence[str]) -> str | None:
    """Case-insensitive lookup of the first present key's value."""
    key = _ci_key(tags, keys)
    return None if key is None else {str(k).lower(): v for k, v in tags.items()}[key]


def _tags(ds: Any, *args: Any, **kwargs: Any) -> dict:
    """``ds.tags(...)``, with metadata that is not UTF-8 text refused as such."""
    try:
        return ds.tags(*args, **kwargs)
    except UnicodeDecodeError as err:
        raise ValueError(
            f"The metadata of {ds.name} is not UTF-8 text ({err}), so its band wavelengths cannot "
            "be read. Re-save the file's metadata as UTF-8, or pass wavelengths=[... nm, one per "
            "band] (CLI: --wavelengths) or sensor=<preset>.") from None


def descriptions(ds: Any) -> list[str | None]:
    """Band descriptions, None for each when they are not UTF-8 text."""
    try:
        return list(ds.descriptions)
    except UnicodeDecodeError:
        return [None] * ds.count


def _not_numbers(ds: Any, where: str, items: Sequence[Any]) -> ValueError:
    bad = next(str(t) for t in items if _parse_value(t) is None)
    return ValueError(
        f"The {where} of {ds.name} hold values that are not wavelengths (first: {bad[:40]!r}). "
        "Fix the file's metadata (one number per band, e.g. '450.5' or '0.4505 um'), or pass "
        "wavelengths=[... nm, one per band] (CLI: --wavelengths) or sensor=<preset>.")


def _values_from_strings(items: Sequence[Any], unit: str | None,
                         free_text: bool = False) -> np.ndarray | None:
    """Parse one value per item; None unless every item parses (see :func:`_parse_value`)."""
    parsed = [_parse_value(t, free_text) for t in items]
    if not parsed or any(p is None for p in parsed):
        return None
    if unit is None or _unit_factor(unit) is None:
        factors = {_unit_factor(p[1]) for p in parsed if p[1]}  # type: ignore[index]
        if len(factors) > 1:
            # items in different units ("450 nm", "0.51 um"): each converted with its own
            return np.array([_to_nm([v], u)[0] for v, u in parsed])  # type: ignore[misc]
    units = {p[1].lower() for p in parsed if p[1]}  # type: ignore[index]
    inline = units.pop() if len(units) == 1 else None
    return _to_nm([p[0] for p in parsed], unit or inline)  # type: ignore[index]


def _raster_wavelengths(ds: Any) -> tuple[np.ndarray, np.ndarray | None, str] | None:
    """Find band centres (nm), FWHM (nm) and the place they came from in an open rasterio dataset.

    Raises:
        ValueError: a wavelength tag on some bands only, or wavelength metadata that does not
            parse as numbers (rather than falling through to the next place silently).
    """
    n = ds.count
    # 2. per-band tags, default domain then GDAL's IMAGERY domain (GDAL >= 3.10, in micrometres)
    band_tags = [_tags(ds, i) for i in range(1, n + 1)]
    keys = [_ci_key(t, _WL_TAG_KEYS) for t in band_tags]
    if any(k is not None for k in keys):
        missing = [i + 1 for i, k in enumerate(keys) if k is None]
        if missing:
            raise ValueError(
                f"{ds.name} has a wavelength tag on some bands but not on band(s) "
                f"{', '.join(map(str, missing[:10]))}; one wavelength per band is needed. Tag "
                "every band, or pass wavelengths=[... nm, one per band] (CLI: --wavelengths).")
        wl_items = [_ci_get(t, _WL_TAG_KEYS) for t in band_tags]
        units = [_ci_get(t, _UNIT_TAG_KEYS) or ("um" if k.endswith("_um") else None)
                 for t, k in zip(band_tags, keys)]  # type: ignore[union-attr]
        if any(_parse_value(t) is None for t in wl_items):
            raise _not_numbers(ds, "wavelength band tags", wl_items)
        if len({None if u is None else str(u).strip().lower() for u in units}) == 1:
            wl = _values_from_strings(wl_items, units[0])
        else:  # bands tagged in different units: each band with its own
            wl = np.concatenate([_values_from_strings([t], u) for t, u in zip(wl_items, units)])
        fw_keys = [_ci_key(t, _FWHM_TAG_KEYS) for t in band_tags]
        fw_items = [_ci_get(t, _FWHM_TAG_KEYS) for t in band_tags]
        fw_units = [_ci_get(t, _UNIT_TAG_KEYS) or ("um" if (k or "").endswith("_um") else None)
                    for t, k in zip(band_tags, fw_keys)]
        fwhm = _fwhm_from_strings(fw_items, fw_units, wl_items)
        return wl, fwhm, "band tags"  # type: ignore[return-value]
    try:
        img = [ds.tags(i, ns="IMAGERY") for i in range(1, n + 1)]
    except UnicodeDecodeError:
        img = [_tags(ds, i, ns="IMAGERY") for i in range(1, n + 1)]
    except Exception:  # older GDAL: no such domain
        img = []
    if img and all("CENTRAL_WAVELENGTH_UM" in t for t in img):
        items = [t["CENTRAL_WAVELENGTH_UM"] for t in img]
        if any(_parse_value(t) is None for t in items):
            raise _not_numbers(ds, "CENTRAL_WAVELENGTH_UM band tags (IMAGERY domain)", items)
        wl = _to_nm([_parse_value(t)[0] for t in items], "um")  # type: ignore[index]
        fw = [t.get("FWHM_UM") for t in img]
        fwhm = (_to_nm([_parse_value(t)[0] for t in fw], "um")  # type: ignore[index]
                if all(_parse_value(t) is not None for t in fw) else None)
        return wl, fwhm, "band tags (IMAGERY domain)"
    # 3. band descriptions
    desc = descriptions(ds)
    if all(d for d in desc) and not _band_numbers(desc):
        wl = _values_from_strings(desc, None, free_text=True)
        if wl is not None:
            return wl, None, "band descriptions"
    # 4. dataset-level ENVI domain (or the same keys in the default domain)
    wrong = None
    for ns, label in (("ENVI", "ENVI metadata domain"), (None, "dataset tags")):
        try:
            tags = ds.tags(ns=ns) if ns else ds.tags()
        except UnicodeDecodeError:
            tags = _tags(ds, ns=ns) if ns else _tags(ds)
        except Exception:
            continue
        items = _parse_envi_list(_ci_get(tags, ("wavelength", "wavelengths")))
        if items and len(items) != n:
            # Reported by _resolve as a list of the wrong length, not as "no wavelengths".
            wrong = wrong or (np.full(len(items), np.nan), None, label)
        elif items:
            unit = _ci_get(tags, _UNIT_TAG_KEYS)
            wl = _values_from_strings(items, unit)
            if wl is None:
                raise _not_numbers(ds, f"wavelength list ({label})", items)
            fw = _parse_envi_list(_ci_get(tags, ("fwhm",)))
            fwhm = _fwhm_from_strings(fw, unit, items)
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


def _checked_fwhm(path: Path, fwhm: np.ndarray | None, wl: np.ndarray,
                  source: str) -> np.ndarray | None:
    """FWHM that are one positive finite width per band; otherwise dropped with a warning."""
    if fwhm is None:
        return None
    fwhm = np.asarray(fwhm, dtype=np.float64).reshape(-1)
    if fwhm.shape == wl.shape and np.all(np.isfinite(fwhm)) and np.all(fwhm > 0):
        return fwhm
    warnings.warn(
        f"The band FWHM stored in {path} ({source}) are not one positive width per band "
        f"({fwhm[:4].tolist()}{' ...' if fwhm.size > 4 else ''}); they are ignored. Fix the "
        "file's fwhm metadata to keep them.", UserWarning, stacklevel=4)
    return None


def _resolve(path: Path, num_bands: int, wavelengths: Sequence[float] | None, sensor: str | None,
             found: tuple[np.ndarray, np.ndarray | None, str] | None, looked: str,
             shape: tuple[int, ...] | None = None) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Apply the documented order: explicit, file metadata, sensor preset; else a clear error.

    ``shape`` is the array's shape where it may be stored bands-first (.mat files): the errors
    then say so when the first axis looks like the bands (:func:`axis_order_hint`).
    """
    from hsizoo.spectral.grid import check_wavelengths

    if wavelengths is not None:
        wl = as_wavelength_array(wavelengths)
        finite = wl[np.isfinite(wl)]
        if finite.size == wl.size and wl.size and 0 < finite.max() < 30:
            warnings.warn(
                f"The wavelengths given for {path.name} are all below 30; reading them as "
                "micrometres and converting to nm. Pass nanometres to silence this warning.",
                UserWarning, stacklevel=3,
            )
            wl = wl * 1000.0
        try:
            return check_wavelengths(wl, num_bands), None, "argument wavelengths="
        except ValueError as err:
            hint = (axis_order_hint(shape, wl.size) or axis_order_hint(shape)
                    if wl.size != num_bands else "")
            if hint:
                raise ValueError(f"{err}{hint}") from None
            raise
    if found is not None:
        wl, fwhm, source = found
        if wl.size != num_bands:
            what = (f"The wavelength list in {path} ({source}) has {wl.size} values but the "
                    f"file has {num_bands} bands")
            if sensor is None:
                raise ValueError(
                    f"{what}; one wavelength per band is needed."
                    f"{axis_order_hint(shape, wl.size) or axis_order_hint(shape)} "
                    "Fix the metadata, or pass wavelengths=[... nm, one per band] (CLI: "
                    "--wavelengths) or sensor=<preset>.")
            warnings.warn(f"{what}; using the sensor preset {sensor!r} instead.", UserWarning,
                          stacklevel=3)
        else:
            try:
                wl = check_wavelengths(wl, num_bands)
            except ValueError as err:
                raise ValueError(
                    f"The wavelengths stored in {path} ({source}) are not usable: {err} Pass "
                    "wavelengths= explicitly to override them."
                ) from err
            return wl, _checked_fwhm(path, fwhm, wl, source), source
    if sensor is not None:
        try:
            wl, fwhm = _sensor_wavelengths(sensor, num_bands)
        except ValueError as err:
            from hsizoo.spectral.sensors import get_sensor

            try:
                known = len(get_sensor(sensor).wavelengths)
            except (KeyError, ValueError):
                raise err from None
            hint = axis_order_hint(shape, known)
            if hint:
                raise ValueError(f"{err}{hint}") from None
            raise
        wl = check_wavelengths(wl, num_bands)
        return wl, _checked_fwhm(path, fwhm, wl, f"sensor preset {sensor!r}"), \
            f"sensor preset {sensor!r}"
    try:
        from hsizoo.spectral.sensors import list_sensors

        known = ", ".join(list_sensors())
    except ImportError:  # pragma: no cover - sensors module is part of the package
        known = "see hsizoo.spectral.sensors.list_sensors()"
    raise ValueError(
        f"No band wavelengths found for {path} ({num_bands} bands). Looked in: {looked}. Pass "
        f"wavelengths=[... nm, one per band] or sensor=<preset> (known presets: {known})."
        + axis_order_hint(shape)
    )
