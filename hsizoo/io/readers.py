"""Reading hyperspectral scenes: GeoTIFF and ENVI (through rasterio/GDAL) and MATLAB .mat files.

Band centre wavelengths are part of the data (DESIGN.md, "Spectral identity is data"), so the
reader looks for them in every place a file is known to keep them, in this order:

1. ``wavelengths=`` given by the caller;
2. per-band tags (``wavelength``, ``center_wavelength``, GDAL's IMAGERY domain
   ``CENTRAL_WAVELENGTH_UM``), with ``wavelength_units`` where present;
3. band descriptions (``"Band 1 (450.5 nm)"``, ``"450.5"``, ``"0.4505 um"``);
4. the dataset-level ENVI metadata domain (``wavelength = {...}``, ``wavelength units``);
5. for .mat files, a 1-D variable named ``wavelength(s)``/``wl`` of one value per band;
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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hsizoo.io.scene import Scene, axis_order_hint
from hsizoo.io.windows import WindowBlock, check_empty, plan_windows

_RASTER_SUFFIXES = {".tif", ".tiff", ".gtiff", ".img", ".dat", ".bsq", ".bil", ".bip", ".raw",
                    ".envi", ".vrt", ".hdr", ""}
_ENVI_DATA_SUFFIXES = ("", ".img", ".dat", ".bsq", ".bil", ".bip", ".raw", ".envi")
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
_MAT_WL_NAMES = ("wavelength", "wavelengths", "wl", "wavelength_nm", "wavelengths_nm", "lambda")


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


# ----------------------------------------------------------------------------------------------
# Validity


def valid_mask(cube: np.ndarray, nodata: float | None) -> np.ndarray:
    """Pixel validity (H, W): False where any band is NaN, +-inf or equal to ``nodata``.

    Any band rather than all bands: a spectrum with one nodata band would feed garbage into a model.
    """
    ok = np.empty(cube.shape[:-1], dtype=bool)
    check_nodata = nodata is not None and bool(np.isfinite(nodata))
    value = np.asarray(nodata if check_nodata else 0, dtype=cube.dtype)
    # in slabs of rows, so the (rows, W, B) boolean temporaries stay small for big windows
    step = max(1, (1 << 22) // max(1, int(np.prod(cube.shape[1:]))))
    for r in range(0, cube.shape[0], step):
        part = cube[r:r + step]
        slab = np.isfinite(part).all(axis=-1)
        if check_nodata:
            slab &= ~(part == value).any(axis=-1)
        ok[r:r + step] = slab
    return ok


# ----------------------------------------------------------------------------------------------
# Rasters (GeoTIFF, ENVI, anything GDAL reads)


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


def _check_path(path: str | Path) -> Path:
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


def _open_raster(path: Path) -> Any:
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

    try:
        with warnings.catch_warnings():
            # not being georeferenced is fine (crs/transform become None)
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            return rasterio.open(path)
    except RasterioIOError as err:
        raise ValueError(
            f"Could not read {path} as a raster ({err}). The file may be truncated, corrupt or in a "
            "format GDAL does not read; for ENVI data keep the .hdr header beside it. Re-export or "
            "re-download the file."
        ) from err


def _read_block(ds: Any, path: Path, window: Any = None) -> np.ndarray:
    """Read (h, w, B) float32 from an open dataset, turning GDAL read errors into ValueError.

    GDAL converts to float32 and interleaves bands straight into the (h, w, B) buffer (rasterio
    passes the strided view on), so a window costs one float32 block and no temporary copies.
    """
    from einops import rearrange
    from rasterio.errors import RasterioIOError
    from rasterio.windows import Window

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


def _raster_info(path: Path, ds: Any, wavelengths: Sequence[float] | None, sensor: str | None,
                 nodata: float | None) -> SceneInfo:
    # Wavelengths given by the caller win: the file's metadata (even an unknown unit) is not read.
    found = _raster_wavelengths(ds) if wavelengths is None else None
    wl, fwhm, source = _resolve(
        path, ds.count, wavelengths, sensor, found,
        "band tags (wavelength / wavelength_units / IMAGERY domain), band descriptions, "
        "the ENVI metadata domain (wavelength = {...})",
    )
    if nodata is None:
        nodata = ds.nodata
    names = [d for d in ds.descriptions]
    if ds.driver == "ENVI":
        # GDAL appends the wavelength to ENVI band names ("b1 (450.5 Nanometers)"); keep the
        # names as the header gives them
        try:
            listed = _parse_envi_list(ds.tags(ns="ENVI").get("band_names"))
        except Exception:
            listed = None
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


# ----------------------------------------------------------------------------------------------
# MATLAB files


def _is_hdf5(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(1024)
    return b"\x89HDF\r\n\x1a\n" in head  # v7.3 files: a 512-byte MATLAB header, then HDF5


def _mat_variables(path: Path) -> tuple[str, dict[str, tuple[tuple[int, ...], str]]]:
    """List a .mat file's variables as name -> (MATLAB shape, class); kind is "v5" or "v7.3"."""
    import scipy.io as sio

    if _is_hdf5(path):
        import h5py

        try:
            with h5py.File(path, "r") as f:
                out = {}
                for name, obj in f.items():
                    if name.startswith("#") or not isinstance(obj, h5py.Dataset):
                        continue
                    cls = obj.attrs.get("MATLAB_class", b"")
                    cls = cls.decode() if isinstance(cls, bytes) else str(cls)
                    # h5py sees MATLAB's column-major arrays with their axes reversed
                    out[name] = (tuple(obj.shape[::-1]), cls or str(obj.dtype))
                return "v7.3", out
        except OSError as err:
            raise ValueError(
                f"{path} looks like a MATLAB v7.3 (HDF5) file but could not be read ({err}); it is "
                "probably truncated. Re-download or re-save it."
            ) from err
    try:
        listing = sio.whosmat(path)
    except Exception as err:  # scipy raises ValueError, TypeError, OSError... on bad files
        raise ValueError(
            f"{path} is not a readable MATLAB .mat file ({type(err).__name__}: {err}). It may be "
            "truncated or in another format; re-download or re-save it."
        ) from err
    return "v5", {name: (tuple(shape), cls) for name, shape, cls in listing}


def _mat_load(path: Path, kind: str, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Load the named variables with MATLAB's axis order (H, W, B for a cube)."""
    if kind == "v7.3":
        import h5py

        try:
            with h5py.File(path, "r") as f:
                return {n: np.transpose(f[n][()]) for n in names}
        except OSError as err:
            raise ValueError(f"Reading {list(names)} from {path} failed ({err}); the file is "
                             "probably truncated. Re-download or re-save it.") from err
    import scipy.io as sio

    try:
        data = sio.loadmat(path, variable_names=list(names))
    except Exception as err:
        raise ValueError(
            f"Reading {list(names)} from {path} failed ({type(err).__name__}: {err}); the file is "
            "probably truncated or corrupt. Re-download or re-save it."
        ) from err
    missing = [n for n in names if n not in data]
    if missing:
        raise ValueError(f"{path} lacks variable(s) {missing}; the file is probably truncated.")
    return {n: np.asarray(data[n]) for n in names}


_NUMERIC = {"double", "single", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64",
            "uint64", "logical"}


def _mat_pick(path: Path, variables: dict, ndim: int, variable: str | None, what: str) -> str:
    if variable is not None:
        if variable not in variables:
            raise ValueError(
                f"{path} has no variable {variable!r}; it holds {sorted(variables)}. Pass one of "
                "these as variable=."
            )
        return variable
    cands = [n for n, (shape, cls) in variables.items()
             if len(shape) == ndim and (cls in _NUMERIC or cls.startswith(("float", "int", "uint")))
             and min(shape) > 0]
    if ndim == 2:  # a label map is 2-D and not a vector
        cands = [n for n in cands if min(variables[n][0]) > 1]
    if not cands:
        raise ValueError(
            f"{path} holds no {ndim}-D numeric array to use as {what}; its variables are "
            + ", ".join(f"{n} {s}" for n, (s, _) in variables.items()) + "."
        )
    if len(cands) > 1:
        raise ValueError(
            f"{path} holds several {ndim}-D arrays that could be the {what}: "
            + ", ".join(f"{n} {variables[n][0]}" for n in cands)
            + ". Pass variable=<name> to choose one."
        )
    return cands[0]


def _read_mat(path: Path, variable: str | None, wavelengths: Sequence[float] | None,
              sensor: str | None, nodata: float | None) -> Scene:
    kind, variables = _mat_variables(path)
    name = _mat_pick(path, variables, 3, variable, "hyperspectral cube (H, W, B)")
    bands = variables[name][0][2]
    wl_names = [n for n in variables if n.lower() in _MAT_WL_NAMES
                and int(np.prod(variables[n][0])) == bands]
    fw_names = [n for n in variables if n.lower() == "fwhm" and int(np.prod(variables[n][0])) == bands]
    loaded = _mat_load(path, kind, [name, *wl_names[:1], *fw_names[:1]])
    cube = np.asarray(loaded[name], dtype=np.float32)
    found = None
    wrong = [n for n in variables if n.lower() in _MAT_WL_NAMES and n not in wl_names]
    if wavelengths is None and not wl_names and wrong:
        # A wavelength variable of the wrong length: say so rather than "no wavelengths".
        found = (np.full(int(np.prod(variables[wrong[0]][0])), np.nan), None,
                 f"variable {wrong[0]!r}")
    if wl_names:
        wl = _to_nm(loaded[wl_names[0]].reshape(-1), None)
        fw = _to_nm(loaded[fw_names[0]].reshape(-1), "um" if wl_names and
                    np.nanmax(loaded[wl_names[0]]) < 30 else "nm") if fw_names else None
        found = (wl, fw, f"variable {wl_names[0]!r}")
    meta: dict[str, Any] = {"mat_variable": name, "mat_version": kind}
    if wavelengths is None and sensor is None and found is None:
        # A file of the dataset catalogue, recognised by its canonical name: the catalogue
        # knows its sensor. Still a guess from a file name, hence the warning.
        from hsizoo.data.catalogue import sensor_for_file

        guess = sensor_for_file(path.name, bands)
        if guess is not None:
            warnings.warn(
                f"{path.name} has no wavelengths; using the sensor preset {guess!r} of the dataset "
                f"catalogue entry with that file name. Pass sensor={guess!r} to silence this.",
                UserWarning, stacklevel=3,
            )
            sensor = guess
    wl, fwhm, source = _resolve(path, bands, wavelengths, sensor, found,
                                "a 1-D variable named wavelength(s)/wl of one value per band",
                                cube.shape)
    meta["wavelength_source"] = source
    return Scene(cube=cube, wavelengths=wl, valid=valid_mask(cube, nodata), fwhm=fwhm,
                 path=str(path), sensor=sensor, meta={**meta, "nodata": nodata})


# ----------------------------------------------------------------------------------------------
# Labels


def read_labels(source: Any, *, variable: str | None = None) -> np.ndarray:
    """Read an (H, W) integer label map from an array, .mat, .npz, .npy or single-band raster.

    Args:
        source: An array, or the path of a file holding one 2-D label array.
        variable: Name of the .mat/.npz variable when the file holds several 2-D arrays.

    Returns:
        The label map as int64 (0 = unlabelled).
    """
    if isinstance(source, (str, Path)):
        p = Path(source).expanduser()
        if not p.is_file():
            raise FileNotFoundError(f"Label file {p} does not exist.")
        suffix = p.suffix.lower()
        if suffix == ".mat":
            kind, variables = _mat_variables(p)
            name = _mat_pick(p, variables, 2, variable, "label map (H, W)")
            arr = _mat_load(p, kind, [name])[name]
        elif suffix == ".npz":
            with np.load(p) as z:
                keys = [variable] if variable else (["gt"] if "gt" in z.files else z.files)
                if len(keys) != 1:
                    raise ValueError(f"{p} holds {z.files}; pass variable=<name> for the labels.")
                arr = z[keys[0]]
        elif suffix == ".npy":
            arr = np.load(p)
        else:
            with _open_raster(_check_path(p)) as ds:
                arr = ds.read(1)
    else:
        arr = np.asarray(source)
    arr = np.squeeze(arr)
    if arr.ndim != 2:
        raise ValueError(f"Labels must be a 2-D (H, W) map; got shape {arr.shape}.")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError("Labels must be integers (0 = unlabelled, 1..K classes).")
    if arr.size and arr.min() < 0:
        raise ValueError(f"Labels must be >= 0 (0 = unlabelled); found {arr.min()}.")
    return arr.astype(np.int64)


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
    with _open_raster(p) as ds:
        return _raster_info(p, ds, wavelengths, sensor, nodata)


def read_scene(path: str | Path, wavelengths: Sequence[float] | None = None,
               sensor: str | None = None, nodata: float | None = None, *,
               variable: str | None = None, labels: Any = None,
               class_names: Sequence[str] | None = None) -> Scene:
    """Read a hyperspectral scene into memory.

    Args:
        path: A GeoTIFF, an ENVI data file or its .hdr header, any raster GDAL reads, or a MATLAB
            .mat file (v5 through scipy, v7.3 through h5py).
        wavelengths: Band centre wavelengths in nm, one per band; win over the file's metadata.
        sensor: Name of a :mod:`hsizoo.spectral.sensors` preset, used when the file has no wavelengths.
        nodata: Value marking missing pixels; overrides the file's nodata. NaN and inf are always
            invalid.
        variable: For .mat files, the variable holding the (H, W, B) cube; needed when the file
            holds several 3-D arrays.
        labels: Optional label map: an (H, W) array or the path of a file holding one.
        class_names: Names of classes 1..K for ``labels``.

    Returns:
        A :class:`Scene` with a float32 cube (H, W, B), wavelengths in nm, validity mask, CRS and
        transform (None for .mat files). ``scene.meta["wavelength_source"]`` says where the
        wavelengths came from.

    Raises:
        FileNotFoundError: the file (or an ENVI header's data file) does not exist.
        ValueError: unreadable or truncated file, wavelengths not found or inconsistent, labels of
            the wrong shape, ambiguous .mat variables.
    """
    p = _check_path(path)
    if p.suffix.lower() == ".mat":
        scene = _read_mat(p, variable, wavelengths, sensor, nodata)
    else:
        with _open_raster(p) as ds:
            info = _raster_info(p, ds, wavelengths, sensor, nodata)
            cube = _read_block(ds, p)
        scene = Scene(
            cube=cube, wavelengths=info.wavelengths, valid=valid_mask(cube, info.nodata),
            fwhm=info.fwhm, crs=info.crs, transform=info.transform, band_names=info.band_names,
            path=str(p), sensor=sensor, meta={**info.meta, "nodata": info.nodata},
        )
    if labels is not None:
        lab = read_labels(labels)
        if lab.shape != scene.cube.shape[:2]:
            raise ValueError(
                f"Label map shape {lab.shape} differs from the scene's {scene.cube.shape[:2]} "
                f"({p.name}); labels must be one integer per pixel of this scene."
            )
        scene.labels = lab
    if class_names is not None:
        scene.class_names = list(class_names)
        if scene.labels is not None and scene.labels.max() > len(scene.class_names):
            raise ValueError(
                f"Labels go up to class {scene.labels.max()} but {len(scene.class_names)} class "
                "names were given; give one name per class 1..K."
            )
    return scene


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
        cube = np.asarray(_mat_load(p, kind, [name])[name], dtype=np.float32)
        scene = Scene(cube=cube, wavelengths=np.arange(cube.shape[2], dtype=float) + 1,
                      valid=valid_mask(cube, nodata), path=str(p))
        yield from scene.windows(window_size, overlap, halo, on_empty)
        return
    import rasterio

    env = {} if gdal_cache_mb is None else {"GDAL_CACHEMAX": int(gdal_cache_mb)}
    with rasterio.Env(**env), _open_raster(p) as ds:
        nd = ds.nodata if nodata is None else nodata
        for win, read, core in plan_windows(ds.height, ds.width, window_size, overlap, halo):
            cube = _read_block(ds, p, read)
            block = WindowBlock(win, cube, valid_mask(cube, nd), read, core)
            if check_empty(block, on_empty, str(p)):
                yield block
            # release this window before reading the next, so one window is resident, not two
            del cube, block
