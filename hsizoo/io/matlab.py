"""MATLAB .mat files: listing, choosing and loading their arrays (v5 through scipy, v7.3 through h5py).

A cube is read with MATLAB's axis order, (H, W, B); its band wavelengths come from a 1-D variable
named ``wavelength(s)``/``wl`` of one value per band, else from the caller, a sensor preset or the
dataset catalogue entry of the file's name (see :mod:`hsizoo.io.band_metadata`).
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hsizoo.io.band_metadata import _resolve, _to_nm, as_wavelength_array
from hsizoo.io.limits import check_read_size
from hsizoo.io.scene import Scene, axis_order_hint
from hsizoo.io.validity import valid_mask

_MAT_WL_NAMES = ("wavelength", "wavelengths", "wl", "wavelength_nm", "wavelengths_nm", "lambda")


def _is_hdf5(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(1024)
    return b"\x89HDF\r\n\x1a\n" in head  # v7.3 files: a 512-byte MATLAB header, then HDF5


def _mat_variables(path: Path) -> tuple[str, dict[str, tuple[tuple[int, ...], str]]]:
    """List a .mat file's variables as name -> (MATLAB shape, class); kind is "v5" or "v7.3"."""
    import scipy.io as sio

    if _is_hdf5(path):
        from hsizoo._optional import require

        h5py = require("h5py", f"Reading the MATLAB v7.3 file {path}")

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
        from hsizoo._optional import require

        h5py = require("h5py", f"Reading the MATLAB v7.3 file {path}")

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


# bytes per value of MATLAB classes (and of the numpy dtypes h5py reports without one)
_ITEMSIZE = {"double": 8, "single": 4, "int8": 1, "uint8": 1, "int16": 2, "uint16": 2, "int32": 4,
             "uint32": 4, "int64": 8, "uint64": 8, "logical": 1}


def check_mat_size(path: Path, entry: tuple[tuple[int, ...], str]) -> None:
    """Refuse loading a .mat cube that cannot fit in memory: it is loaded in its own type and
    then converted to float32 (:func:`hsizoo.io.limits.check_read_size`)."""
    shape, cls = entry
    n = int(np.prod(shape, dtype=np.float64))
    size = _ITEMSIZE.get(cls) or (np.dtype(cls).itemsize if cls in np.sctypeDict else 8)
    stored = n * size if cls not in ("single", "float32") else 0
    h, w = (shape + (1, 1))[:2]
    check_read_size(stored + 4 * n + h * w, path, (shape + (1, 1, 1))[:3],
                    f"MATLAB {cls} read as float32", windowed=False)


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
    check_mat_size(path, variables[name])
    loaded = _mat_load(path, kind, [name, *wl_names[:1], *fw_names[:1]])
    raw = loaded[name]
    if raw.dtype.kind not in "biuf":
        what = "complex values" if raw.dtype.kind == "c" else f"{raw.dtype} values"
        raise ValueError(
            f"The variable {name!r} of {path} holds {what}; hsizoo reads real-valued reflectance "
            "or radiance. Convert it to a real numeric array (e.g. abs() for complex data) and "
            "save it again.")
    cube = np.asarray(raw, dtype=np.float32)
    found = None
    wrong = [n for n in variables if n.lower() in _MAT_WL_NAMES and n not in wl_names]
    if wavelengths is None and not wl_names and wrong:
        # A wavelength variable of the wrong length: say so rather than "no wavelengths".
        found = (np.full(int(np.prod(variables[wrong[0]][0])), np.nan), None,
                 f"variable {wrong[0]!r}")
    if wl_names:
        raw_wl = as_wavelength_array(loaded[wl_names[0]].reshape(-1),
                                     f"The variable {wl_names[0]!r} of {path}")
        wl = _to_nm(raw_wl, None)
        fw = None
        if fw_names:
            try:
                fw = as_wavelength_array(loaded[fw_names[0]].reshape(-1), "fwhm")
            except ValueError:
                fw = None  # not numbers: no FWHM (they are optional)
            else:  # in the unit of the wavelengths
                fw = _to_nm(fw, "um" if np.all(wl != raw_wl) else "nm")
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
    hint = axis_order_hint(cube.shape)
    if hint:
        warnings.warn(f"{path.name}: the cube {name!r} may be stored bands-first.{hint}",
                      UserWarning, stacklevel=3)
    return Scene(cube=cube, wavelengths=wl, valid=valid_mask(cube, nodata), fwhm=fwhm,
                 path=str(path), sensor=sensor, meta={**meta, "nodata": nodata})
