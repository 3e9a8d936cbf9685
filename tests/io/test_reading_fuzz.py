"""Fuzzing the readers with seeded random inputs: ENVI headers, GeoTIFF band metadata, label maps,
wavelength lists and MATLAB cubes.

Every case ends either in a valid result or in a clear error of hsizoo's documented types
(ValueError, KeyError, FileNotFoundError, MemoryError and their subclasses, with a message of
its own): never another exception type (IndexError, TypeError, UnicodeDecodeError, ...), never a
RuntimeWarning from numpy, never a bare message from numpy or Python ("could not convert string to
float"), and never an invalid input accepted silently. Each generator knows what it wrote, so a
case is expected to be read ("ok": the cube, wavelengths and labels must come back exactly),
refused ("error"), or either ("either": only the result's validity is checked, e.g. a header
describing fewer pixels than its file holds).

The default suite runs FAST_CASES cases per family; ``--runslow`` runs SLOW_CASES more per family
(other seeds). A failure lists every failing case with its family, seed and what was generated;
``_run(family, seed, tmp_path)`` replays one.
"""
from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest_io import write_geotiff, write_mat_v5, write_mat_v73

from hsizoo.io import Scene, read_labels, read_scene, read_scene_info

FAMILIES = ("envi", "geotiff", "labels", "wavelengths", "mat")
FAST_CASES = 100     # per family: 500 in the default suite
SLOW_CASES = 400     # per family: 2,000 more with --runslow
ALLOWED = (ValueError, KeyError, FileNotFoundError, MemoryError)
# messages that are numpy's or Python's own, not hsizoo's
RAW = re.compile(r"could not convert|invalid literal|codec can't|unsupported operand|has no "
                 r"attribute|out of bounds|zero-size array|not supported between|object is not")


@dataclass
class Case:
    expect: str                      # "ok", "error" or "either"
    run: Callable[[], Any]
    check: Callable[[Any], None]     # the oracle on a result
    notes: list[str] = field(default_factory=list)


def _wavelengths(rng: np.random.Generator, b: int) -> np.ndarray:
    """b strictly increasing band centres (nm), 0.01 nm resolution."""
    return np.round(400 + np.cumsum(rng.uniform(1.0, 60.0, b)), 2)


def _valid_wl(wl: Any, b: int) -> None:
    wl = np.asarray(wl)
    assert wl.shape == (b,), f"{wl.shape} wavelengths for {b} bands"
    assert np.all(np.isfinite(wl)) and (b < 2 or np.all(np.diff(wl) > 0)), wl
    assert wl.min() > 0 and wl.max() <= 1e5, wl


# ---------------------------------------------------------------------------------------- ENVI

_ENVI_CODES = {1: "u1", 2: "i2", 3: "i4", 4: "f4", 5: "f8", 12: "u2", 13: "u4", 14: "i8", 15: "u8"}
_LAYOUT = {"bsq": (2, 0, 1), "bil": (0, 2, 1), "bip": (0, 1, 2)}


def _envi_case(rng: np.random.Generator, d: Path) -> Case:
    h, w, b = (int(v) for v in rng.integers(1, 6, 3))
    code = int(rng.choice(list(_ENVI_CODES)))
    inter, order = str(rng.choice(list(_LAYOUT))), int(rng.integers(0, 2))
    offset = int(rng.choice([0, 0, 16, 128]))
    cube = rng.integers(0, 100, (h, w, b)).astype(_ENVI_CODES[code])
    wl = _wavelengths(rng, b)
    unit = str(rng.choice(["Nanometers", "nm", "NANOMETERS", "Micrometers", "um", "µm",
                           "Wavenumber", "cm-1", "none", "Unknown"]))
    listed = {"Micrometers": wl / 1000, "um": wl / 1000, "µm": wl / 1000, "Wavenumber": 1e7 / wl,
              "cm-1": 1e7 / wl}.get(unit, wl)
    if unit in ("none", "Unknown") and rng.random() < 0.5:
        listed = wl / 1000  # micrometres without a unit: the magnitude rule
    items = [f"{v:.7g}" for v in listed]
    f: dict[str, str] = {"description": "{fuzz}", "samples": str(w), "lines": str(h),
                         "bands": str(b), "header offset": str(offset),
                         "file type": "ENVI Standard", "data type": str(code),
                         "interleave": inter, "byte order": str(order)}
    if unit != "none":
        f["wavelength units"] = unit
    notes: list[str] = [f"{h}x{w}x{b} code {code} {inter} bo{order} off{offset} unit {unit}"]
    extra: list[str] = []
    wl_kind = False
    nodata, truncate, explicit, fw, upper = None, False, rng.random() < 0.15, None, set()
    fw_nm = np.round(rng.uniform(2, 12, b), 3)
    fw_expect = None  # no FWHM written
    if rng.random() < 0.3:
        # in the unit of the listed centres: a length scales, a wavenumber width is 1e7 dl / l^2
        fw = [f"{v:.7g}" for v in (fw_nm * 1e7 / wl ** 2 if unit in ("Wavenumber", "cm-1")
                                   else fw_nm * listed[0] / wl[0])]
        fw_expect = "match"

    verdicts = {"file": "ok", "metadata": "ok"}  # the data layout; the wavelength metadata
    order_ = ("ok", "either", "error")

    def worse(new: str) -> None:
        part = "metadata" if wl_kind else "file"
        verdicts[part] = max(verdicts[part], new, key=order_.index)

    fields_done: set[str | None] = set()
    b_listed = b  # the band count the wavelength list must match
    for _ in range(int(rng.choice([0, 0, 1, 1, 2]))):
        kind = str(rng.choice(
            ["dim_junk", "dim_more", "dim_less", "dtype_bad", "dtype_complex", "interleave_junk",
             "interleave_other", "order_junk", "offset_junk", "ignore_junk", "ignore_num",
             "wl_unsorted", "wl_dup", "wl_nan", "wl_negative", "wl_missing", "wl_extra",
             "wl_junk", "wl_absent", "unit_junk", "nonutf8_desc", "nonutf8_wl", "junk_lines",
             "truncate", "key_case", "fwhm_junk", "dup_key", "field_missing"]))
        key = str(rng.choice(["samples", "lines", "bands"]))
        # one change per header field: a second one could undo the first
        touched = {"dim": key, "dtype": "data type", "interleave": "interleave",
                   "order": "byte order", "offset": "header offset", "ignore": "data ignore value",
                   "unit": "wavelength units", "dup": key, "field": "*"}.get(kind.split("_")[0])
        if touched is not None and (touched in fields_done or "*" in fields_done
                                    or (touched == "*" and fields_done)):
            continue
        fields_done.add(touched)
        notes.append(kind)
        wl_kind = kind.startswith("wl_") or kind in ("unit_junk", "nonutf8_wl")
        if kind == "dim_junk":
            f[key] = str(rng.choice(["abc", "-3", "0", "4.5", "", "1e3", "two", "3 4", "0x4"]))
            worse("error")
        elif kind == "dim_more" and _whole(f, key):
            f[key] = str(_whole(f, key) + int(rng.integers(1, 4)))
            worse("error")
        elif kind == "dim_less" and _whole(f, key) > 1:
            f[key] = str(_whole(f, key) - 1)
            worse("either")
        elif kind == "dtype_bad":
            f["data type"] = str(rng.choice(["0", "7", "8", "10", "11", "16", "99", "abc", "-1",
                                             "4.0", ""]))
            worse("error")
        elif kind == "dtype_complex":
            f["data type"] = str(rng.choice(["6", "9"]))
            worse("error")
        elif kind == "interleave_junk":
            f["interleave"] = str(rng.choice(["xyz", "bsqq", "", "b s q", "1", "BIL?"]))
            worse("error")
        elif kind == "interleave_other":
            f["interleave"] = str(rng.choice([k for k in _LAYOUT if k != inter]).upper())
            worse("either")
        elif kind == "order_junk":
            f["byte order"] = str(rng.choice(["2", "-1", "big", "0.5", "01x"]))
            worse("error")
        elif kind == "offset_junk":
            f["header offset"] = str(rng.choice(["-5", "abc", "1.5", "1e2"]))
            worse("error")
        elif kind == "ignore_junk":
            f["data ignore value"] = str(rng.choice(["abc", "--1", "1,2", "nodata"]))
            worse("error")
        elif kind == "ignore_num":
            nodata = int(cube.reshape(-1)[int(rng.integers(0, cube.size))])
            f["data ignore value"] = str(nodata)
        elif not items and (kind.startswith("wl_") or kind == "nonutf8_wl"):
            continue  # no wavelength list left to spoil
        elif kind == "wl_unsorted" and len(items) > 1:
            perm = rng.permutation(len(items))
            if np.any(perm != np.arange(len(items))):
                items = [items[i] for i in perm]
                worse("error")
        elif kind == "wl_dup" and len(items) > 1:
            i = int(rng.integers(1, len(items)))
            items[i] = items[i - 1]
            worse("error")
        elif kind == "wl_nan":
            items[int(rng.integers(0, len(items)))] = str(rng.choice(["nan", "NaN", "inf",
                                                                     "-inf"]))
            worse("error")
        elif kind == "wl_negative":
            items[0] = "-" + items[0].lstrip("-")
            worse("error")
        elif kind == "wl_missing":
            items = items[:-1]
        elif kind == "wl_extra":
            items = items + [items[-1] + "1"]
        elif kind == "wl_junk":
            items[int(rng.integers(0, len(items)))] = str(rng.choice(["abc", "4x50", "--", "nm",
                                                                     "1.2.3"]))
            worse("error")
        elif kind == "wl_absent":
            items = []
            worse("error")
        elif kind == "unit_junk":
            f["wavelength units"] = str(rng.choice(["Index", "GHz", "furlongs", "nm!", "μ"]))
            worse("error")
        elif kind == "nonutf8_desc":
            f["description"] = "{caf\udcff scene}"
        elif kind == "nonutf8_wl":
            i = int(rng.integers(0, len(items)))
            items[i] = items[i][:1] + "\udcff" + items[i][1:]
            worse("error")
        elif kind == "junk_lines":
            extra += ["just some words", "; a comment = {x}", "foo = bar", "x start = 1"]
        elif kind == "truncate":
            truncate = True
            worse("error")
        elif kind == "key_case":
            upper.add(key)
        elif kind == "fwhm_junk":
            fw = [str(rng.choice(["nan", "-3", "0", "abc"]))] + ["5"] * (b - 1)
            fw_expect = "dropped"
        elif kind == "field_missing":
            gone = str(rng.choice(["samples", "lines", "bands", "data type", "interleave",
                                   "byte order", "header offset"]))
            notes.append(f"no {gone}")
            if f.pop(gone, None) is not None:
                default = {"interleave": inter == "bsq", "byte order": order == 0,
                           "header offset": offset == 0}
                worse("error" if gone not in default else "ok" if default[gone] else "either")
        elif kind == "dup_key" and _whole(f, key) > 1:
            extra.append(f"{key} = {_whole(f, key) - 1}")  # GDAL, and hsizoo, keep the last
            if key == "bands":
                b_listed = _whole(f, key) - 1
            worse("either")
    if _data_bytes(offset, h, w, b, code) < 2:
        verdicts["file"] = max(verdicts["file"], "either", key=order_.index)  # GDAL: too small
    if len(items) != b_listed or "wl_absent" in notes:
        wl_kind = True
        worse("error")
    elif "wl_missing" in notes or "wl_extra" in notes:  # one value dropped, another added
        wl_kind = True
        worse("either")
    # wavelengths given by the caller win: the file's wavelength metadata is not read
    expect = max(verdicts["file"], "ok" if explicit else verdicts["metadata"], key=order_.index)
    lines = ["ENVI"] + [f"{k.upper() if k in upper else k} = {v}" for k, v in f.items()]
    if items:
        lines.append("wavelength = {" + ", ".join(items) + "}")
    if fw is not None:
        lines.append("fwhm = {" + ", ".join(fw) + "}")
    lines += extra
    data_suffix = str(rng.choice([".img", ".dat", ".bsq", "", ".raw"]))
    hdr, data = d / "scene.hdr", d / ("scene" + data_suffix)
    hdr.write_bytes("\n".join(lines).encode("utf-8", "surrogateescape") + b"\n")
    raw = np.transpose(cube, _LAYOUT[inter]).astype(cube.dtype.newbyteorder(">" if order else "<"))
    blob = b"\0" * offset + raw.tobytes()
    data.write_bytes(blob[: len(blob) // 2] if truncate else blob)
    declared = tuple(int(f[k]) if re.fullmatch(r"\d+", f.get(k, "")) else -1
                     for k in ("lines", "samples", "bands"))
    target = hdr if rng.random() < 0.5 else data
    info_only = rng.random() < 0.2
    kwargs = {"wavelengths": wl} if explicit else {}

    def run() -> Any:
        return (read_scene_info if info_only else read_scene)(target, **kwargs)

    def check(res: Any) -> None:
        got = (res.height, res.width, res.num_bands) if info_only else res.cube.shape
        # never a shape other than the (final) header's; GDAL keeps the last of repeated keys
        assert got == declared or "dup_key" in notes, f"shape {got} vs header {declared}"
        _valid_wl(res.wavelengths, got[2])
        if expect != "ok":
            return
        np.testing.assert_allclose(res.wavelengths, wl, rtol=2e-6, atol=0.02)
        if fw_expect == "dropped" or (explicit and fw_expect):
            assert res.fwhm is None, res.fwhm  # wavelengths= given: the file's FWHM unused
        elif fw_expect == "match":
            assert res.fwhm is not None, "FWHM lost"
            np.testing.assert_allclose(res.fwhm, fw_nm, rtol=2e-6, atol=1e-3)
        if not info_only:
            np.testing.assert_array_equal(res.cube, cube.astype(np.float32))
            bad = (cube == nodata).any(axis=2) if nodata is not None else np.zeros((h, w), bool)
            np.testing.assert_array_equal(res.valid, ~bad)

    return Case(expect, run, check, notes)


def _data_bytes(offset: int, h: int, w: int, b: int, code: int) -> int:
    """Bytes of the ENVI data file written (GDAL does not recognise a 1-byte one as ENVI)."""
    return offset + h * w * b * np.dtype(_ENVI_CODES[code]).itemsize


def _whole(f: dict[str, str], key: str) -> int:
    """The header field as a whole number, 0 when it is missing or not one."""
    v = f.get(key, "")
    return int(v) if re.fullmatch(r"\d+", v) else 0


# ------------------------------------------------------------------------------------- GeoTIFF

# unit tag -> factor from nm (None: wavenumbers in cm-1)
_UNITS = {"Nanometers": 1.0, "nm": 1.0, "Micrometers": 1e-3, "um": 1e-3, "µm": 1e-3,
          "microns": 1e-3, "Wavenumber": None, "cm-1": None}


def _encode(nm: float, unit: str) -> str:
    scale = _UNITS[unit]
    return f"{1e7 / nm if scale is None else nm * scale:.9g}"


def _geotiff_case(rng: np.random.Generator, d: Path) -> Case:
    h, w, b = int(rng.integers(1, 5)), int(rng.integers(1, 5)), int(rng.integers(1, 7))
    dtype = str(rng.choice(["uint8", "int16", "uint16", "int32", "float32", "float64"]))
    cube = rng.integers(0, 100, (h, w, b)).astype(dtype)
    wl = _wavelengths(rng, b)
    fw_nm = np.round(rng.uniform(3, 10, b), 3)
    where = str(rng.choice(["tags", "tags_mixed", "imagery", "desc", "envi", "dataset"]))
    unit = str(rng.choice(list(_UNITS)))
    if where in ("imagery", "desc"):
        unit = "um" if where == "imagery" else "nm"  # GDAL's IMAGERY domain is in micrometres
    units = [str(rng.choice(list(_UNITS))) if where == "tags_mixed" else unit for _ in range(b)]
    items = [_encode(v, u) for v, u in zip(wl, units)]
    fws = [f"{f * 1e7 / v ** 2:.9g}" if _UNITS[u] is None else _encode(f, u)
           for f, v, u in zip(fw_nm, wl, units)]
    with_fwhm = where in ("tags", "tags_mixed", "imagery", "envi") and rng.random() < 0.6
    notes, expect = [f"{h}x{w}x{b} {dtype} {where} {units}"], "ok"
    mut = str(rng.choice(["none", "none", "junk", "nan", "unsorted", "dup", "negative", "unit",
                          "missing", "extra", "fwhm_bad", "desc_words"]))
    notes.append(mut)
    if mut == "junk":
        items[int(rng.integers(0, b))] = str(rng.choice(["abc", "4x50", "--", "1.2.3", "n/a"]))
        expect = "error" if where != "desc" else "either"
    elif mut == "nan":
        items[int(rng.integers(0, b))] = str(rng.choice(["nan", "inf", "-inf"]))
        expect = "error"
    elif mut == "unsorted" and b > 1:
        perm = rng.permutation(b)
        if np.any(perm != np.arange(b)):
            items, units = [items[i] for i in perm], [units[i] for i in perm]
            expect = "error"
    elif mut == "dup" and b > 1:
        items[1], units[1] = items[0], units[0]
        expect = "error"
    elif mut == "negative":
        items[0] = "-" + items[0]
        expect = "error"
    elif mut == "unit" and where not in ("desc", "imagery"):
        units = [str(rng.choice(["GHz", "Index", "parsecs"]))] * b
        expect = "error"
    elif mut == "missing":
        items = items[:-1]
        expect = "error"
    elif mut == "extra" and where in ("envi", "dataset"):
        items = items + ["2500"]
        expect = "error"
    elif mut == "fwhm_bad" and with_fwhm:
        fws[0] = str(rng.choice(["nan", "-1", "0", "abc"]))
    elif mut == "desc_words" and where == "desc":
        expect = "error"
    kw: dict[str, Any] = {}
    if where in ("tags", "tags_mixed"):
        key = str(rng.choice(["wavelength", "WAVELENGTH", "center_wavelength", "Wavelength"]))
        kw["band_tags"] = [{key: items[i], "wavelength_units": units[i],
                            **({"fwhm": fws[i]} if with_fwhm else {})} if i < len(items) else {}
                           for i in range(b)]
    elif where == "desc":
        fmt = str(rng.choice(["Band {i} ({v} nm)", "{v}", "{v} nm", "Band {i}: {v}"]))
        kw["descriptions"] = ([fmt.format(i=i + 1, v=v) for i, v in enumerate(items)]
                              + [""] * (b - len(items)) if mut != "desc_words" else ["red"] * b)
    elif where in ("envi", "dataset"):
        tags = {"wavelength": "{" + ", ".join(items) + "}", "wavelength_units": units[0]}
        if with_fwhm:
            tags["fwhm"] = "{" + ", ".join(fws) + "}"
        kw["envi" if where == "envi" else "dataset_tags"] = tags
    path = write_geotiff(d / "s.tif", cube, crs=None, **kw)
    if where == "imagery":
        import rasterio

        with rasterio.open(path, "r+") as ds:
            for i in range(len(items)):
                ds.update_tags(i + 1, ns="IMAGERY", CENTRAL_WAVELENGTH_UM=items[i],
                               **({"FWHM_UM": fws[i]} if with_fwhm else {}))
    fwhm_expected = with_fwhm and mut != "fwhm_bad"

    def check(res: Any) -> None:
        assert res.cube.shape == (h, w, b)
        _valid_wl(res.wavelengths, b)
        if res.fwhm is not None:
            assert res.fwhm.shape == (b,), res.fwhm
            assert np.all(np.isfinite(res.fwhm)) and np.all(res.fwhm > 0), res.fwhm
        if expect == "ok":
            np.testing.assert_allclose(res.wavelengths, wl, rtol=1e-6, atol=1e-3)
            np.testing.assert_array_equal(res.cube, cube.astype(np.float32))
            if fwhm_expected:
                assert res.fwhm is not None, "FWHM lost"
                np.testing.assert_allclose(res.fwhm, fw_nm, rtol=1e-5, atol=1e-3)
            elif mut == "fwhm_bad":
                assert res.fwhm is None, res.fwhm

    return Case(expect, lambda: read_scene(path), check, notes)


# -------------------------------------------------------------------------------------- labels

_FILLS = {"uint8": [255], "int8": [-1, -128, 127], "int16": [-1, -9999, 32767],
          "uint16": [65535, 9999, 255], "int32": [-1, -9999, 2**31 - 1, 70000],
          "uint32": [2**32 - 1, 65535, 1000], "float32": [-1.0, -9999.0, np.nan, 2.5, 1e30, np.inf],
          "float64": [-1.0, np.nan, 0.5, 1e300, 65535.0]}


def _labels_case(rng: np.random.Generator, d: Path) -> Case:
    h, w = int(rng.integers(2, 9)), int(rng.integers(2, 9))
    dtype = str(rng.choice(list(_FILLS)))
    k = int(rng.integers(1, 20))
    ids = np.sort(rng.choice(np.arange(1, k + 3), size=k, replace=False))  # a few gaps
    lab = np.where(rng.random((h, w)) < 0.3, 0, rng.choice(ids, (h, w))).astype(dtype)
    container = str(rng.choice(["tif", "tif", "npy", "mat", "array"]))
    notes = [f"{h}x{w} {dtype} {container} ids<={int(ids.max())}"]
    fill, declared = None, False
    mut = str(rng.choice(["none", "fill", "fill", "fill_declared", "multiband", "bad_dtype",
                          "shape", "truncated"]))
    notes.append(mut)
    expect_map = lab.astype(np.float64)
    expect = "ok"
    if mut.startswith("fill"):
        fill = rng.choice(_FILLS[dtype])
        mask = rng.random((h, w)) < 0.3
        mask[0, 0] = True
        lab = np.where(mask, np.asarray(fill, dtype=dtype), lab).astype(dtype)
        declared = mut == "fill_declared"
        notes.append(f"fill {fill}{' declared' if declared else ''}")
        if declared:
            expect_map = np.where(mask, 0.0, expect_map)
        else:
            expect_map = np.where(mask, float(np.asarray(fill, dtype=dtype)), expect_map)
            v = float(np.asarray(fill, dtype=dtype))
            present = np.unique(expect_map[expect_map > 0])
            if not np.isfinite(v) or v < 0 or v != round(v):
                expect = "error"
            elif v > 255 and v > 4 * present.size:
                expect = "error"
    elif mut == "multiband" and container == "tif":
        expect = "error"
    elif mut == "bad_dtype" and container in ("npy", "array"):
        lab = lab.astype(str(rng.choice(["complex64", "U3", "object"])))
        expect = "error"
    elif mut == "shape" and container in ("npy", "array"):
        lab = lab.reshape(-1) if rng.random() < 0.5 else lab[None, :, :, None]
        expect = "error" if lab.ndim == 1 else "ok"
    elif mut == "truncated" and container in ("npy", "tif"):
        expect = "error"
    kwargs: dict[str, Any] = {}
    if container == "tif":
        import rasterio

        path = d / "labels.tif"
        count = 2 if mut == "multiband" else 1
        nd = fill if declared else None
        with rasterio.open(path, "w", driver="GTiff", height=h, width=w, count=count,
                           dtype=dtype, nodata=nd) as ds:
            for i in range(count):
                ds.write(lab, i + 1)
        source: Any = path
    elif container == "npy":
        source = d / "labels.npy"
        np.save(source, lab, allow_pickle=True)
    elif container == "mat":
        source = write_mat_v5(d / "labels.mat", {"gt": lab})
    else:
        source = lab
    if container != "tif" and declared:
        kwargs["nodata"] = fill
    if mut == "truncated" and container in ("npy", "tif"):
        raw = Path(source).read_bytes()
        Path(source).write_bytes(raw[: len(raw) // 3])

    def check(res: Any) -> None:
        assert res.dtype == np.int64 and res.ndim == 2 and res.min() >= 0
        if expect == "ok":
            np.testing.assert_array_equal(res, expect_map.reshape(res.shape).astype(np.int64))

    return Case(expect, lambda: read_labels(source, **kwargs), check, notes)


# --------------------------------------------------------------------------------- wavelengths

_WL_FILE: dict[int, Path] = {}


def _wavelength_case(rng: np.random.Generator, d: Path) -> Case:
    b = int(rng.integers(1, 7))
    wl = _wavelengths(rng, b)
    kind = str(rng.choice(["nm", "um", "unsorted", "dup", "nan", "inf", "negative", "zero",
                           "short", "long", "wavenumber", "wavenumber_rev", "strings", "junk",
                           "none_item", "nested", "huge", "tuple", "column"]))
    vals: Any = wl.tolist()
    if kind == "um":
        vals = (wl / 1000).tolist()
    elif kind == "unsorted" and b > 1:
        vals = wl[::-1].tolist()
    elif kind == "dup" and b > 1:
        vals[-1] = vals[0]
    elif kind in ("nan", "inf"):
        vals[int(rng.integers(0, b))] = float(kind)
    elif kind == "negative":
        vals[0] = -vals[0]
    elif kind == "zero":
        vals[0] = 0.0
    elif kind == "short":
        vals = vals[:-1]
    elif kind == "long":
        vals = vals + [vals[-1] + 10]
    elif kind == "wavenumber":
        vals = (1e7 / wl).tolist()
    elif kind == "wavenumber_rev":
        vals = (1e7 / wl[::-1]).tolist()
    elif kind == "strings":
        vals = [f"{v}" for v in vals]
    elif kind == "junk":
        vals[int(rng.integers(0, b))] = str(rng.choice(["abc", "450nm", ""]))
    elif kind == "none_item":
        vals[int(rng.integers(0, b))] = None
    elif kind == "nested":
        vals = [vals, vals]
    elif kind == "huge":
        vals[-1] = 1e6
    elif kind == "tuple":
        vals = tuple(vals)
    elif kind == "column":
        vals = np.asarray(vals)[:, None]
    how = str(rng.choice(["read_scene", "scene", "as_scene", "check"]))
    expect = _expect_wavelengths(vals, b, convert_um=how == "read_scene", physical=how != "scene")
    if b not in _WL_FILE:
        _WL_FILE[b] = write_geotiff(d.parent / f"wl{b}.tif", np.ones((2, 3, b), np.uint8),
                                    crs=None)
    cube = np.ones((2, 3, b), np.float32)

    def run() -> Any:
        if how == "read_scene":
            return read_scene(_WL_FILE[b], wavelengths=vals).wavelengths
        if how == "scene":
            return Scene(cube=cube, wavelengths=vals).wavelengths
        if how == "as_scene":
            from hsizoo.finetune.inputs import as_scene

            return as_scene(cube, vals, None).wavelengths
        from hsizoo.spectral.grid import check_wavelengths

        return check_wavelengths(vals, b)

    def check(res: Any) -> None:
        res = np.asarray(res)
        assert res.shape == (b,) and np.all(np.isfinite(res))
        assert b < 2 or np.all(np.diff(res) > 0)
        if how != "scene":
            _valid_wl(res, b)

    return Case(expect, run, check, [f"{b} bands {kind} via {how}: {str(vals)[:60]}"])


def _expect_wavelengths(vals: Any, b: int, convert_um: bool, physical: bool) -> str:
    try:
        a = np.asarray(vals, dtype=np.float64)
    except (TypeError, ValueError):
        return "error"
    if sum(n > 1 for n in a.shape) > 1:
        return "error"
    a = a.reshape(-1)
    if a.size != b or not np.all(np.isfinite(a)) or (b > 1 and not np.all(np.diff(a) > 0)):
        return "error"
    if physical:
        if convert_um and a.max() < 30 and a.min() > 0:
            a = a * 1000
        if a.min() <= 0 or a.max() > 1e5 or a.max() < 30:
            return "error"
    return "ok"


# ----------------------------------------------------------------------------------------- mat


def _mat_case(rng: np.random.Generator, d: Path) -> Case:
    h, w, b = int(rng.integers(8, 20)), int(rng.integers(8, 20)), int(rng.integers(1, 5))
    first = rng.random() < 0.4  # bands-first (B, H, W), as numpy users often store cubes
    cube = rng.uniform(0, 1, (h, w, b)).astype(str(rng.choice(["float32", "float64", "uint16"])))
    arr = np.moveaxis(cube, 2, 0) if first else cube
    wl = _wavelengths(rng, b)
    wl_kind = str(rng.choice(["ok", "ok", "none", "short", "nan", "string", "column", "complex"]))
    arrays: dict[str, Any] = {"cube": arr}
    if wl_kind in ("ok", "column"):
        arrays["wavelength"] = wl[:, None] if wl_kind == "column" else wl
    elif wl_kind == "short" and b > 1:
        arrays["wavelength"] = wl[:-1]
    elif wl_kind == "nan":
        arrays["wavelength"] = np.where(np.arange(b) == 0, np.nan, wl)
    elif wl_kind == "string":
        arrays["wavelength"] = "abcd"[:b]
    elif wl_kind == "complex":
        arrays["cube"] = arr.astype(np.complex64) + 1j
    v73 = rng.random() < 0.3 and wl_kind not in ("string", "complex")
    path = (write_mat_v73 if v73 else write_mat_v5)(d / "c.mat", arrays)
    ok = wl_kind in ("ok", "column") and not first
    expect = "ok" if ok else "either" if first and wl_kind in ("ok", "column") else "error"
    if wl_kind == "short" and b == 1:
        expect = "error"
    notes = [f"{arr.shape} {'bands-first' if first else ''} {arr.dtype} wl {wl_kind} "
             f"{'v7.3' if v73 else 'v5'}"]

    def check(res: Any) -> None:
        _valid_wl(res.wavelengths, res.cube.shape[2])
        assert res.cube.shape == arr.shape
        if expect == "ok":
            np.testing.assert_allclose(res.wavelengths, wl)
            np.testing.assert_array_equal(res.cube, cube.astype(np.float32))

    case = Case(expect, lambda: read_scene(path), check, notes)
    case.hint = first and 4 * b <= min(h, w)  # type: ignore[attr-defined]
    return case


# ---------------------------------------------------------------------------------------- runner

_MAKERS = {"envi": _envi_case, "geotiff": _geotiff_case, "labels": _labels_case,
           "wavelengths": _wavelength_case, "mat": _mat_case}


def _run(family: str, seed: int, tmp: Path) -> str | None:
    """Run one case; None when it passes, else what went wrong."""
    d = tmp / f"{family}-{seed}"
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([20240613, FAMILIES.index(family), seed])
    case = _MAKERS[family](rng, d)
    where = f"{family} seed {seed} ({'; '.join(case.notes)}), expected {case.expect}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", RuntimeWarning)  # numpy noise escaping the reader
        try:
            result = case.run()
        except ALLOWED as err:
            msg = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
            if case.expect == "ok":
                return f"{where}: refused: {type(err).__name__}: {msg[:300]}"
            if len(msg) < 40 or RAW.search(msg):
                return f"{where}: unclear {type(err).__name__}: {msg[:300]}"
            if getattr(case, "hint", False) and "wavelength" in msg.lower() \
                    and "moveaxis" not in msg:
                return f"{where}: a bands-first cube refused without the axis hint: {msg[:300]}"
            return None
        except Exception as err:  # noqa: BLE001 - the point of the test
            return f"{where}: {type(err).__name__}: {str(err)[:300]}"
    if case.expect == "error":
        return f"{where}: accepted: {str(result)[:200]}"
    try:
        case.check(result)
    except AssertionError as err:
        return f"{where}: invalid result: {str(err)[:300]}"
    return None


def _fuzz(tmp: Path, seeds: range) -> None:
    _WL_FILE.clear()
    failures = [f for family in FAMILIES for seed in seeds
                if (f := _run(family, seed, tmp)) is not None]
    assert not failures, f"{len(failures)} failing case(s):\n" + "\n".join(failures[:15])


def test_readers_survive_fuzzed_inputs(tmp_path: Path) -> None:
    _fuzz(tmp_path, range(FAST_CASES))


@pytest.mark.slow
def test_readers_survive_more_fuzzed_inputs(tmp_path: Path) -> None:
    _fuzz(tmp_path, range(FAST_CASES, FAST_CASES + SLOW_CASES))


def test_the_fuzz_covers_every_verdict(tmp_path: Path) -> None:
    """The generators produce cases of each kind in the default run (a fuzz that only ever
    expects errors, or only valid files, tests little)."""
    seen = {f: set() for f in FAMILIES}
    for family in FAMILIES:
        for seed in range(FAST_CASES):
            d = tmp_path / f"{family}-{seed}"
            d.mkdir()
            rng = np.random.default_rng([20240613, FAMILIES.index(family), seed])
            seen[family].add(_MAKERS[family](rng, d).expect)
    for family, kinds in seen.items():
        assert {"ok", "error"} <= kinds, (family, kinds)
