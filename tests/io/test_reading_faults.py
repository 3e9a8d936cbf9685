"""Faults of the readers found by an audit and by tests/io/test_reading_fuzz.py, one test each.

1. a label raster's nodata value was ignored (a phantom class 255, a 65,535-class model), and
   values that cannot be classes were accepted;
2. a whole-scene read larger than the memory available died inside numpy;
3. an all-nodata scene was blamed on the labels;
4. a bands-first .mat cube got no hint;
then the faults the fuzzing found (ENVI headers GDAL reads leniently, per-band units, FWHM, ...).
"""
from __future__ import annotations

import contextlib
import os
import warnings

import numpy as np
import pytest
from conftest_io import envi_list, make_cube, make_wavelengths, write_envi, write_geotiff
from conftest_io import write_mat_v5

from hsizoo.io import iter_windows, read_labels, read_scene, read_scene_info


def _label_tif(path, lab, nodata=None, count=1, crs=None):
    import rasterio

    with rasterio.open(path, "w", driver="GTiff", height=lab.shape[0], width=lab.shape[1],
                       count=count, dtype=str(lab.dtype), nodata=nodata, crs=crs) as ds:
        for i in range(count):
            ds.write(lab, i + 1)
    return path


def _classes(h=20, w=18):
    lab = np.zeros((h, w), np.int64)
    lab[:, : w // 3], lab[:, w // 3: 2 * w // 3], lab[:, 2 * w // 3:] = 1, 2, 3
    return lab


# ------------------------------------------------------------------ 1. label nodata and values


@pytest.mark.parametrize("dtype,fill", [("uint8", 255), ("uint16", 65535), ("int16", -9999),
                                        ("float32", np.nan)])
def test_a_label_rasters_declared_nodata_is_unlabelled(tmp_path, dtype, fill):
    lab = _classes(6, 6).astype(dtype)
    lab[0, :] = fill  # a border outside the surveyed area
    path = _label_tif(tmp_path / "gt.tif", lab, nodata=fill)
    with pytest.warns(UserWarning, match=r"6 pixel\(s\) of .*gt\.tif hold its nodata value "
                                         r".*declared by the raster.*unlabelled \(0\)"):
        got = read_labels(path)
    assert got.dtype == np.int64 and got.max() == 3 and (got[0] == 0).all()
    np.testing.assert_array_equal(got[1:], _classes(6, 6)[1:])


def test_nodata_can_be_declared_for_files_without_one(tmp_path):
    lab = _classes(6, 6).astype(np.uint16)
    lab[:, 0] = 65535
    np.save(tmp_path / "gt.npy", lab)
    with pytest.raises(ValueError, match=r"class id 65535 .*nodata=65535"):
        read_labels(tmp_path / "gt.npy")
    with pytest.warns(UserWarning, match="nodata value 65535"):
        got = read_labels(tmp_path / "gt.npy", nodata=65535)
    assert got.max() == 3 and (got[:, 0] == 0).all()


def test_finetune_with_a_nodata_255_label_raster_learns_the_real_classes_only(tmp_path):
    """Before: a phantom class 255 was trained and counted in the evaluation (54.9 % OA where
    the real classes score ~92 %)."""
    from scenes import three_class_scene

    from hsizoo.finetune import finetune, prepare_labels

    scene = three_class_scene()
    lab = scene.labels.astype(np.uint8)
    lab[:3, :] = lab[:, :2] = 255  # a nodata frame around the labelled area
    path = _label_tif(tmp_path / "gt.tif", lab, nodata=255)
    with pytest.warns(UserWarning, match="nodata value 255"):
        train, K, names = prepare_labels(str(path), scene, 5, 0)
    assert K == 3 and names == ["rising", "falling", "wavy"] and train.max() == 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ft = finetune(scene, str(path), shots=5, seed=0, daft=False, model="s2former_test",
                      pretrained=False, steps=10, batch_size=16, head_steps=20, progress=False)
        report = ft.evaluate(str(path))
    assert ft.num_classes == 3
    assert report.num_pixels == int(((lab > 0) & (lab < 255)).sum()) - 15
    assert report.oa > 0.8, report


def test_a_uint16_nodata_65535_label_raster_makes_a_3_class_model_not_65535(tmp_path):
    from scenes import three_class_scene

    from hsizoo.finetune import prepare_labels

    scene = three_class_scene()
    lab = scene.labels.astype(np.uint16)
    lab[-1, :] = 65535
    with pytest.warns(UserWarning, match="nodata value 65535"):
        _, K, _ = prepare_labels(str(_label_tif(tmp_path / "gt.tif", lab, nodata=65535)),
                                 scene, 3, 0)
    assert K == 3
    # the same ids without a declared nodata: refused with the value and what to do
    with pytest.raises(ValueError, match=r"label map holds class id 65535 .*3 other id\(s\) "
                                         r"between 1 and 3.*nodata or fill value.*nodata=65535"):
        prepare_labels(lab, scene, 3, 0)


@pytest.mark.parametrize("value,dtype,match", [
    (-1, "int16", r"must be >= 0.*holds -1 at 1 pixel\(s\), e\.g\. row 2, col 3.*If -1 marks"),
    (np.nan, "float32", r"holds NaN at 1 pixel\(s\).*nodata=float\('nan'\)"),
    (np.inf, "float64", r"holds inf"),
    (2.5, "float64", r"non-integer values such as 2\.5 .*continuous raster"),
    (65535, "uint16", r"class id 65535.*almost surely a nodata or fill value.*65535-class model"),
    (4_000_000_000, "uint32", r"class id 4000000000"),
    (1e300, "float64", r"class id 1e\+300"),
])
def test_label_values_that_cannot_be_classes_are_refused_with_the_reason(value, dtype, match):
    lab = _classes(6, 6).astype(dtype)
    lab[2, 3] = value
    with pytest.raises(ValueError, match=match):
        read_labels(lab)


def test_legitimate_label_maps_are_read_as_before():
    lab = _classes(6, 6) * 2  # ids 2, 4, 6: gaps are fine
    np.testing.assert_array_equal(read_labels(lab), lab)
    many = np.arange(1, 301).reshape(15, 20)  # 300 classes: dense, above 255, accepted
    np.testing.assert_array_equal(read_labels(many.astype(np.uint16)), many)
    # 255 is a legal uint8 id, but so far above the others that it is said
    lab = _classes(6, 6).astype(np.uint8)
    lab[0, 0] = 255
    with pytest.warns(UserWarning, match=r"class id 255 .*nodata or fill value"):
        np.testing.assert_array_equal(read_labels(lab), lab)
    # complex or text label maps are not class ids
    with pytest.raises(ValueError, match="complex64 values; labels must be integer class ids"):
        read_labels(_classes(4, 4).astype(np.complex64))


# ------------------------------------------------------------------ 2. memory before reading


def test_a_scene_larger_than_the_memory_limit_is_refused_before_reading(tmp_path, monkeypatch):
    from hsizoo.io.limits import SceneTooLargeError

    wl = make_wavelengths(6)
    tif = write_geotiff(tmp_path / "s.tif", make_cube(), descriptions=[f"{v}" for v in wl])
    hdr, _ = write_envi(tmp_path / "e", make_cube(), wl)
    mat = write_mat_v5(tmp_path / "m.mat", {"cube": make_cube().astype(np.float64),
                                            "wavelength": wl})
    monkeypatch.setenv("HSIZOO_MAX_READ_BYTES", "1000")
    for path, need in ((tif, "2.4 KiB"), (hdr, "2.4 KiB"), (mat, "7.1 KiB")):
        with pytest.raises(SceneTooLargeError) as err:
            read_scene(path)
        msg = str(err.value)
        assert isinstance(err.value, MemoryError) and isinstance(err.value, ValueError)
        assert f"needs about {need} (9 x 11 pixels x 6 bands" in msg, msg
        assert "only 1000 B can be used ($HSIZOO_MAX_READ_BYTES)" in msg, msg
        assert "iter_windows" in msg and "more memory" in msg, msg
    assert "save the cube as a GeoTIFF or ENVI file" in msg  # .mat files are read whole
    # describing the scene and reading it window by window still work under the limit
    assert read_scene_info(tif).num_bands == 6
    blocks = list(iter_windows(tif, window_size=4))
    assert sum(b.cube.shape[0] * b.cube.shape[1] for b in blocks) == 9 * 11
    monkeypatch.setenv("HSIZOO_MAX_READ_BYTES", "1M")
    assert read_scene(tif).cube.shape == (9, 11, 6)
    monkeypatch.setenv("HSIZOO_MAX_READ_BYTES", "lots")
    with pytest.raises(ValueError, match=r"HSIZOO_MAX_READ_BYTES='lots' is not a number of bytes"):
        read_scene(tif)


def test_a_5000_x_5000_x_200_header_is_refused_with_its_size(tmp_path, monkeypatch):
    """The audit's case: a sparse GeoTIFF declaring 18.6 GiB of float32 (the file is small)."""
    import rasterio

    path = tmp_path / "big.tif"
    with rasterio.open(path, "w", driver="GTiff", width=5000, height=5000, count=200,
                       dtype="float32", tiled=True, blockxsize=1024, blockysize=1024,
                       sparse_ok=True, interleave="band") as ds:
        for i in range(200):
            ds.update_tags(i + 1, wavelength=str(400 + 10 * i))
    assert path.stat().st_size < 50_000_000
    monkeypatch.setenv("HSIZOO_MAX_READ_BYTES", "8G")
    with _address_space_capped(), \
            pytest.raises(MemoryError, match=r"big\.tif needs about 18\.6 GiB \(5000 x 5000 "
                                             r"pixels x 200 bands, float32 read as float32\) but "
                                             r"only 8\.0 GiB"):
        read_scene(path)


@contextlib.contextmanager
def _address_space_capped(extra: int = 4 * 2**30):
    """Cap this process's address space at its current size + ``extra`` while reading, so that a
    reader without the memory check fails at once (numpy's MemoryError) instead of filling the
    machine's memory."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        with open("/proc/self/statm") as fh:
            size = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (ImportError, OSError, ValueError):
        yield
        return
    cap = size + extra
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def test_the_memory_available_is_read_from_the_system(monkeypatch):
    from hsizoo.io.limits import available_memory

    monkeypatch.delenv("HSIZOO_MAX_READ_BYTES", raising=False)
    avail, source = available_memory()
    assert avail is not None and avail > 0 and source
    monkeypatch.setenv("HSIZOO_MAX_READ_BYTES", "2GiB")
    assert available_memory() == (2 * 2**30, "$HSIZOO_MAX_READ_BYTES")


# ------------------------------------------------------------------ 3. an all-nodata scene


def test_an_all_nodata_scene_is_said_before_any_label_message(tmp_path):
    from hsizoo.finetune import finetune, prepare_labels

    cube = np.full((6, 5, 4), -9999, np.int16)
    path = write_geotiff(tmp_path / "empty.tif", cube, nodata=-9999,
                         descriptions=[f"{v}" for v in make_wavelengths(4)])
    with pytest.warns(UserWarning, match=r"empty\.tif has no valid pixel.*nodata value -9999"):
        scene = read_scene(path)
    lab = np.ones((6, 5), int)
    lab[0, 0] = 65535  # a label fault too: the scene is said first
    for labels in (lab, None, np.ones((6, 5), int)):
        with pytest.raises(ValueError, match=r"The scene .*empty\.tif has no valid pixel.*"
                                             r"nodata value -9999.*Every band is nodata"):
            prepare_labels(labels, scene, 3, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=r"empty\.tif has no valid pixel.*Nothing can be "
                                             "trained"):
            finetune(str(path), lab, shots=3, model="s2former_test", pretrained=False)


def test_a_band_that_is_nodata_everywhere_is_named(tmp_path):
    from hsizoo.finetune import prepare_labels

    cube = make_cube(5, 4, 6)
    cube[:, :, 2] = 0  # a dead band, and 0 declared as nodata: every pixel invalid
    path = write_geotiff(tmp_path / "dead.tif", cube, nodata=0,
                         descriptions=[f"{v}" for v in make_wavelengths(6)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scene = read_scene(path)
    with pytest.raises(ValueError, match=r"Band\(s\) 3 are nodata at every pixel.*drop those "
                                         r"bands.*If 0 is a real value of the data, pass another "
                                         "nodata="):
        prepare_labels(np.ones((5, 4), int), scene, 3, 0)


# ------------------------------------------------------------------ 4. bands-first .mat cubes


def test_a_bands_first_mat_cube_is_hinted_in_every_error_and_warning(tmp_path):
    bhw = np.moveaxis(make_cube(40, 50, 6).astype(np.float32), 2, 0)  # (6, 40, 50)
    path = write_mat_v5(tmp_path / "b.mat", {"cube": bhw})
    hint = r"shape \(6, 40, 50\): its first axis looks like the bands.*np\.moveaxis\(cube, 0, -1\)"
    with pytest.raises(ValueError, match=r"No band wavelengths found.*" + hint):
        read_scene(path)  # no wavelengths at all: the shape alone
    with pytest.raises(ValueError, match=r"Got 6 wavelengths for data with 50 bands.*" + hint):
        read_scene(path, wavelengths=make_wavelengths(6))
    from hsizoo.spectral.sensors import get_sensor

    rosis = np.moveaxis(make_cube(20, 24, 103).astype(np.float32), 2, 0)  # (103, 20, 24)
    path = write_mat_v5(tmp_path / "r.mat", {"cube": rosis})
    assert len(get_sensor("rosis").wavelengths) == 103
    with pytest.raises(ValueError, match=r"preset 'rosis' has 103 bands but the scene has 24.*"
                                         r"first axis looks like the bands"):
        read_scene(path, sensor="rosis")
    # read with wavelengths for its last axis: it works, but the shape is said
    with pytest.warns(UserWarning, match=r"may be stored bands-first.*" + hint):
        read_scene(tmp_path / "b.mat", wavelengths=np.linspace(400, 900, 50))


# ------------------------------------------------------------------ faults found by the fuzzing


def _envi(tmp_path, **changes):
    """An ENVI file with its header edited: key -> new value (None removes the line)."""
    wl = make_wavelengths(6)
    hdr, data = write_envi(tmp_path / "scene", make_cube(), wl)
    lines = hdr.read_text().splitlines()
    out = []
    for line in lines:
        key = line.split("=")[0].strip()
        if key in changes:
            if changes[key] is not None:
                out.append(f"{key} = {changes.pop(key)}")
            continue
        out.append(line)
    out += [f"{k} = {v}" for k, v in changes.items() if v is not None]
    hdr.write_text("\n".join(out) + "\n")
    return hdr, data


@pytest.mark.parametrize("changes,match", [
    ({"interleave": "xyz"}, r"'interleave = xyz'; it must be bsq, bil or bip"),
    ({"byte order": "7"}, r"'byte order = 7'; it must be 0"),
    ({"data ignore value": "abc"}, r"'data ignore value = abc', which is not a number"),
    ({"bands": "1.5"}, r"'bands = 1\.5', which is not a whole number >= 1"),
    ({"samples": None}, r"has no 'samples'"),
    ({"header offset": "-5"}, r"'header offset = -5'"),
    ({"data type": "6"}, r"holds complex values \(ENVI data type 6 = complex64\)"),
    ({"data type": "99"}, r"'data type = 99', which is not an ENVI data type code"),
    ({"samples": "40"}, r"holds 1,188 bytes but its ENVI header scene\.hdr declares 9 lines x 40 "
                        r"samples x 6 bands of int16.*= 4,320 bytes: the file is truncated"),
    ({"wavelength": "{abc, 500, 600, 700, 800, 900}"},
     r"wavelength list of the ENVI header .* not numbers \(first: 'abc'\)"),
    ({"wavelength": envi_list(np.arange(7) * 50 + 450)},
     r"has 7 values but the file has 6 bands"),
])
def test_envi_headers_gdal_reads_leniently_are_refused(tmp_path, changes, match):
    """GDAL took these as BSQ, little-endian, nodata 0, 1 band, zeros past the file's end, the real
    part, 0 nm or the first 6 wavelengths: a cube that disagrees with the file."""
    hdr, _ = _envi(tmp_path, **changes)
    with pytest.raises(ValueError, match=match):
        read_scene(hdr)


def test_a_header_that_is_not_utf8_is_read_and_its_bad_bytes_named(tmp_path):
    hdr, _ = _envi(tmp_path)
    raw = hdr.read_bytes()
    hdr.write_bytes(raw.replace(b"{test scene}", b"{caf\xe9 \xff}"))
    assert read_scene(hdr).cube.shape == (9, 11, 6)  # before: UnicodeDecodeError
    hdr.write_bytes(raw.replace(b"{450.5", b"{4\xff50.5"))
    with pytest.raises(ValueError, match=r"not numbers \(first: '4.50\.5'\)"):
        read_scene(hdr)  # before: UnicodeDecodeError; read leniently, 50.5 nm


def test_envi_fwhm_come_from_the_header_in_its_unit(tmp_path):
    wl = make_wavelengths(6)
    hdr, _ = _envi(tmp_path, **{"wavelength units": "Wavenumber",
                                "wavelength": envi_list(1e7 / wl),
                                "fwhm": envi_list(10 * 1e7 / wl ** 2)})
    scene = read_scene(hdr)
    np.testing.assert_allclose(scene.wavelengths, wl, rtol=1e-5)
    np.testing.assert_allclose(scene.fwhm, 10, rtol=1e-5)  # before: None (GDAL drops them)


def test_geotiff_band_metadata_faults(tmp_path):
    wl = make_wavelengths(6)
    cube = make_cube()
    # each band in its own unit (before: band 1's unit for all, refused as not increasing)
    units = ["Nanometers", "Micrometers", "nm", "um", "cm-1", "Nanometers"]
    as_unit = {"Nanometers": lambda v: v, "nm": lambda v: v, "Micrometers": lambda v: v / 1000,
               "um": lambda v: v / 1000, "cm-1": lambda v: 1e7 / v}
    tags = [{"wavelength": f"{as_unit[u](v):.9g}", "wavelength_units": u}
            for v, u in zip(wl, units)]
    np.testing.assert_allclose(read_scene(write_geotiff(tmp_path / "a.tif", cube,
                                                        band_tags=tags)).wavelengths, wl)
    # a junk wavelength tag is refused, not skipped for the band descriptions
    tags = [{"wavelength": f"{v}"} for v in wl]
    tags[2]["wavelength"] = "4x50"
    with pytest.raises(ValueError, match=r"wavelength band tags of .*b\.tif hold values that are "
                                         r"not wavelengths \(first: '4x50'\)"):
        read_scene(write_geotiff(tmp_path / "b.tif", cube, band_tags=tags,
                                 descriptions=[f"{v + 1} nm" for v in wl]))
    # wavelength tags on some bands only
    with pytest.raises(ValueError, match=r"wavelength tag on some bands but not on band\(s\) 6"):
        read_scene(write_geotiff(tmp_path / "c.tif", cube, band_tags=[
            {"wavelength": f"{v}"} for v in wl[:5]] + [{}]))
    # FWHM without a unit beside nm centres stay nm (before: x1000, as micrometres); FWHM in
    # wavenumbers are widths (before: 1e7 / width nm); invalid FWHM are dropped with a warning
    tags = [{"wavelength": f"{v}", "fwhm": "10"} for v in wl]
    np.testing.assert_allclose(read_scene(write_geotiff(tmp_path / "d.tif", cube,
                                                        band_tags=tags)).fwhm, 10)
    envi = {"wavelength": envi_list(1e7 / wl), "wavelength_units": "cm-1",
            "fwhm": envi_list(5 * 1e7 / wl ** 2)}
    np.testing.assert_allclose(read_scene(write_geotiff(tmp_path / "e.tif", cube,
                                                        envi=envi)).fwhm, 5, rtol=1e-5)
    tags = [{"wavelength": f"{v}", "fwhm": "-1" if i == 0 else "5"} for i, v in enumerate(wl)]
    with pytest.warns(UserWarning, match=r"FWHM .* are not one positive width per band"):
        assert read_scene(write_geotiff(tmp_path / "f.tif", cube, band_tags=tags)).fwhm is None
    # the IMAGERY domain with junk: named (before: a bare "could not convert string to float")
    import rasterio

    path = write_geotiff(tmp_path / "g.tif", cube)
    with rasterio.open(path, "r+") as ds:
        for i, v in enumerate(wl):
            ds.update_tags(i + 1, ns="IMAGERY", CENTRAL_WAVELENGTH_UM="abc" if i == 1 else f"{v}")
    with pytest.raises(ValueError, match=r"CENTRAL_WAVELENGTH_UM .*first: 'abc'"):
        read_scene(path)


def test_label_file_faults(tmp_path):
    lab = _classes(6, 6).astype(np.uint8)
    with pytest.raises(ValueError, match=r"label raster .*gt2\.tif has 2 bands"):
        read_labels(_label_tif(tmp_path / "gt2.tif", lab, count=2))  # before: band 1, silently
    path = _label_tif(tmp_path / "gt.tif", np.tile(_classes(6, 6), (40, 40)).astype(np.float64))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    with pytest.raises(ValueError, match=r"gt\.tif"):
        read_labels(path)  # before: RasterioIOError
    np.save(tmp_path / "obj.npy", np.array([[1, "a"]], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"obj\.npy is not a readable NumPy file"):
        read_labels(tmp_path / "obj.npy")


def test_wavelength_lists_that_are_not_numbers_are_named(tmp_path):
    from hsizoo.finetune.inputs import as_scene
    from hsizoo.io import Scene

    wl = make_wavelengths(6)
    path = write_geotiff(tmp_path / "s.tif", make_cube())
    bad = [*wl[:5], "abc"]
    with pytest.raises(ValueError, match=r"wavelengths= must be numbers.*item 5 is 'abc'"):
        read_scene(path, wavelengths=bad)  # before: numpy's "could not convert string to float"
    with pytest.raises(ValueError, match=r"Scene wavelengths must be numbers.*item 5 is 'abc'"):
        Scene(cube=np.zeros((2, 2, 6), np.float32), wavelengths=bad)
    with pytest.raises(ValueError, match=r"must be numbers.*item 5 is 'abc'"):
        as_scene(np.zeros((2, 2, 6), np.float32), bad, None)
    with pytest.raises(ValueError, match=r"must be finite numbers in nanometres; item 5 is nan"):
        read_scene(path, wavelengths=[*wl[:5], None])  # numpy reads None as NaN
    # a column vector (as MATLAB stores lists) is a list (before: "6 bands but 6 wavelengths")
    scene = Scene(cube=np.zeros((2, 2, 6), np.float32), wavelengths=wl[:, None])
    np.testing.assert_array_equal(scene.wavelengths, wl)
    with pytest.raises(ValueError, match=r"flat list of band centres.*shape \(2, 6\)"):
        read_scene(path, wavelengths=[wl, wl])


def test_mat_faults(tmp_path):
    wl = make_wavelengths(6)
    path = write_mat_v5(tmp_path / "c.mat", {"cube": make_cube().astype(np.complex64) + 1j,
                                             "wavelength": wl})
    with pytest.raises(ValueError, match=r"'cube' of .*c\.mat holds complex values"):
        read_scene(path)  # before: the real part, with a ComplexWarning
    path = write_mat_v5(tmp_path / "s.mat", {"cube": make_cube(9, 11, 1), "wavelength": "a"})
    with pytest.raises(ValueError, match=r"The variable 'wavelength' of .*s\.mat must be numbers"):
        read_scene(path)
