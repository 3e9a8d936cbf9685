"""Label maps: reading them (:func:`read_labels`) and checking that their values can be classes.

A label map is one integer per pixel: 0 = unlabelled, 1..K = classes (a few unused ids are fine).
A label raster's declared nodata value (or ``nodata=``) marks unlabelled pixels and is read as 0;
without that, a uint8 fill of 255 would train a phantom class 255 and a uint16 fill of 65535 a
65,535-class model. Values that cannot be classes are refused with the reason
(:func:`check_label_ids`): negative values, NaN or inf, non-integer values, and ids so sparse that
the largest is almost surely a fill value (above 255 and more than 4x the number of distinct ids).
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from hsizoo.io.matlab import _mat_load, _mat_pick, _mat_variables
from hsizoo.io.raster import _check_path, open_raster, check_real
from hsizoo.io.remote import is_remote

#: Above this, a largest id more than SPARSE_FACTOR x the number of distinct ids is refused.
SPARSE_ABOVE = 255
SPARSE_FACTOR = 4


def _fmt(v: Any) -> str:
    """A label value as the user would type it: 65535, -1, 2.5."""
    v = v.item() if hasattr(v, "item") else v
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else f"{v:g}"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _first(mask: np.ndarray) -> str:
    r, c = (int(v[0]) for v in np.nonzero(mask))
    return f"{int(mask.sum())} pixel(s), e.g. row {r}, col {c}"


def _declare(where: str, value: str, is_file: bool) -> str:
    """What to do about a value that marks unlabelled pixels."""
    if is_file:
        return (f"If {value} marks unlabelled or nodata pixels, declare it as nodata: "
                f"read_labels(path, nodata={value}) and pass that map on, or set the file's "
                f"nodata (e.g. gdal_edit.py -a_nodata {value} {Path(where).name}); otherwise "
                "set those pixels to 0 or remap the classes to 1..K.")
    return (f"If {value} marks unlabelled or nodata pixels, set them to 0 (or read the map "
            f"with read_labels(..., nodata={value})); otherwise remap the classes to 1..K.")


def check_label_ids(arr: Any, where: str = "the label map", nodata: float | None = None, *,
                    nodata_source: str = "nodata=", is_file: bool = False,
                    max_id: int | None = None) -> np.ndarray:
    """Check that a label map's values can be class ids; return it as int64 (0 = unlabelled).

    Args:
        arr: The (H, W) map (singleton axes beyond the first two are dropped).
        where: The file or array, for messages.
        nodata: Value marking unlabelled pixels (NaN allowed); those pixels become 0.
        nodata_source: Where ``nodata`` was declared, for the message.
        is_file: Whether ``where`` is a file (the advice differs).
        max_id: Largest class id accepted, when there is one.

    Raises:
        ValueError: not 2-D, empty, not real numbers, NaN/inf, non-integers, negative values,
            ids above ``max_id``, or ids so sparse that the largest is almost surely a fill value.
    """
    arr = np.asarray(arr)
    if arr.ndim > 2:
        arr = np.squeeze(arr)
    if arr.ndim != 2:
        raise ValueError(f"Labels must be a 2-D (H, W) map; {where} has shape {arr.shape}.")
    if arr.size == 0:
        raise ValueError(f"{_cap(where)} is empty (shape {arr.shape}); a label map holds one "
                         "class id per pixel of the scene.")
    if arr.dtype.kind not in "biuf":
        raise ValueError(
            f"{_cap(where)} holds {arr.dtype} values; labels must be integer class ids "
            "(0 = unlabelled, 1..K). Save the label map as integers.")
    if nodata is not None:
        try:
            nd = float(nodata)
        except (TypeError, ValueError):
            raise ValueError(f"The label nodata value {nodata!r} ({nodata_source}) is not a "
                             "number; pass nodata=<number> or None.") from None
        hit = np.isnan(arr) if np.isnan(nd) and arr.dtype.kind == "f" else arr == nd
        n = int(hit.sum())
        zeros = int(((arr == 0) & ~hit).sum()) if nd != 0 else 0
        if n:
            arr = np.where(hit, 0, arr)
            if nd != 0:
                warnings.warn(
                    f"{n} pixel(s) of {where} hold its nodata value {nd:g} ({nodata_source}) and "
                    "are read as unlabelled (0).", UserWarning, stacklevel=3)
        if zeros:
            # A map that declares a non-zero nodata and also holds 0 often numbers its classes
            # 0..K-1 (the segmentation convention); hsizoo reads 0 as unlabelled.
            warnings.warn(
                f"{where} declares nodata {nd:g} ({nodata_source}) and also holds {zeros} "
                "pixel(s) of value 0, which hsizoo reads as unlabelled, not as a class. If its "
                "classes are numbered from 0 (0..K-1), add 1 to every class id first (keeping "
                "the nodata pixels at 0); if 0 already means unlabelled, nothing is lost.",
                UserWarning, stacklevel=3)
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr)
        if bad.any():
            what = "NaN" if np.isnan(arr[bad]).any() else "inf"
            raise ValueError(
                f"{_cap(where)} holds {what} at {_first(bad)}: labels must be integer class ids "
                f"(0 = unlabelled, 1..K). " + _declare(where, "float('nan')" if what == "NaN"
                                                      else "float('inf')", is_file))
        frac = arr != np.round(arr)
        if frac.any():
            raise ValueError(
                f"{_cap(where)} holds non-integer values such as {_fmt(arr[frac][0])} at "
                f"{_first(frac)}: labels must be integer class ids (0 = unlabelled, 1..K). Is "
                "it a continuous raster (reflectance, a probability or distance map) rather than "
                "a class map? Pass the class map, or round its values to class ids.")
    low = arr.min()
    if low < 0:
        raise ValueError(
            f"Labels must be >= 0 (0 = unlabelled, 1..K classes); {where} holds {_fmt(low)} at "
            f"{_first(arr == low)}. " + _declare(where, _fmt(low), is_file))
    high = arr.max()
    if max_id is not None and high > max_id:
        raise ValueError(
            f"Class ids must be at most {max_id} (class maps are uint16); {where} holds "
            f"{_fmt(high)}. Renumber the classes 1..K. " + _declare(where, _fmt(high), is_file))
    if high >= SPARSE_ABOVE:
        ids = np.unique(arr[arr > 0])
        if high > SPARSE_FACTOR * ids.size:
            others = ids[ids != high]
            listing = (f"{others.size} other id(s) between {_fmt(others.min())} and "
                       f"{_fmt(others.max())}" if others.size else "no other id")
            msg = (f"{_cap(where)} holds class id {_fmt(high)} at {_first(arr == high)}, but "
                   f"{listing}: an id so far above the others is almost surely a nodata or fill "
                   f"value, and would make a {_fmt(high)}-class model. "
                   + _declare(where, _fmt(high), is_file))
            if high > SPARSE_ABOVE:
                raise ValueError(msg)
            # 255, the usual uint8 fill, is a legal id: said, not refused
            warnings.warn(msg, UserWarning, stacklevel=3)
    return arr.astype(np.int64)


def read_labels(source: Any, *, variable: str | None = None,
                nodata: float | None = None) -> np.ndarray:
    """Read an (H, W) integer label map from an array, .mat, .npz, .npy or single-band raster.

    Args:
        source: An array, or the path of a file holding one 2-D label array.
        variable: Name of the .mat/.npz variable when the file holds several 2-D arrays.
        nodata: Value marking unlabelled pixels (read as 0); default the raster's own nodata
            value, if it declares one.

    Returns:
        The label map as int64 (0 = unlabelled).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a readable single 2-D map, or values that cannot be class ids
            (:func:`check_label_ids`).
    """
    from rasterio.errors import RasterioIOError

    where, source_nd, is_file = "the label array", "nodata=", False
    if isinstance(source, (str, Path)):
        remote = _check_path(source) if is_remote(source) else None
        p = Path(source).expanduser() if remote is None else remote
        if remote is None and not p.is_file():
            raise FileNotFoundError(f"Label file {p} does not exist. Check the path (relative "
                                    f"paths are resolved from {Path.cwd()}).")
        where, is_file = str(p), True
        suffix = p.suffix.lower()
        if suffix == ".mat":
            kind, variables = _mat_variables(p)
            name = _mat_pick(p, variables, 2, variable, "label map (H, W)")
            arr = _mat_load(p, kind, [name])[name]
        elif suffix in (".npz", ".npy"):
            arr = _load_numpy(p, variable)
        else:
            with open_raster(remote or _check_path(p)) as ds:
                if ds.count != 1:
                    raise ValueError(
                        f"The label raster {p} has {ds.count} bands; a label map is one band of "
                        "class ids. Pass a single-band raster (e.g. gdal_translate -b 1).")
                check_real(ds, p)
                try:
                    arr = ds.read(1)
                except RasterioIOError as err:
                    raise ValueError(
                        f"Reading the label raster {p} failed ({err}); the file is probably "
                        "truncated or corrupt. Re-export or re-download it.") from err
                if nodata is None and ds.nodata is not None:
                    nodata, source_nd = ds.nodata, "declared by the raster"
    return check_label_ids(arr if is_file else np.asarray(source), where, nodata,
                           nodata_source=source_nd, is_file=is_file)


def _load_numpy(p: Path, variable: str | None) -> np.ndarray:
    import zipfile

    try:
        if p.suffix.lower() == ".npy":
            return np.load(p)
        with np.load(p) as z:
            keys = [variable] if variable else (["gt"] if "gt" in z.files else z.files)
            if len(keys) != 1:
                raise ValueError(f"{p} holds {z.files}; pass variable=<name> for the labels.")
            if keys[0] not in z.files:
                raise ValueError(f"{p} has no array {keys[0]!r}; it holds {z.files}.")
            return z[keys[0]]
    except (OSError, EOFError, zipfile.BadZipFile, ValueError) as err:
        if isinstance(err, ValueError) and str(p) in str(err):
            raise
        raise ValueError(f"{p} is not a readable NumPy file ({type(err).__name__}: {err}); it may "
                         "be truncated, pickled or in another format. Re-save it with "
                         "numpy.save.") from err


def attach_labels(scene: Any, labels: Any, class_names: Any, win: Any,
                  full_shape: tuple[int, int] | None, where: str) -> Any:
    """Put a label map (and class names) on a scene read whole or through a window.

    Labels of the whole scene are cropped with the window; labels already of the window's shape
    are taken as they are.

    Returns:
        The scene.

    Raises:
        ValueError: a label map of neither shape, or fewer class names than classes.
    """
    if labels is not None:
        lab = read_labels(labels)
        if win is not None and lab.shape == tuple(full_shape or ()):
            r0, c0 = int(win.row_off), int(win.col_off)
            lab = np.ascontiguousarray(lab[r0:r0 + int(win.height), c0:c0 + int(win.width)])
        shape = scene.cube.shape[:2]
        if lab.shape != shape:
            expected = (f"the window's {shape} (or the whole scene's {tuple(full_shape)}, "
                        "cropped with it)" if win is not None else f"the scene's {shape}")
            raise ValueError(f"Label map shape {lab.shape} differs from {expected} ({where}); "
                             "labels must be one integer per pixel of this scene.")
        scene.labels = lab
    if class_names is not None:
        scene.class_names = list(class_names)
        if scene.labels is not None and scene.labels.max() > len(scene.class_names):
            raise ValueError(
                f"Labels go up to class {scene.labels.max()} but {len(scene.class_names)} class "
                "names were given; give one name per class 1..K.")
    return scene
