"""Reading scenes: wavelengths from every metadata location, units, nodata, ENVI, .mat, errors."""
from __future__ import annotations

import numpy as np
import pytest
from conftest_io import (
    CRS,
    envi_list,
    make_cube,
    make_wavelengths,
    transform,
    write_envi,
    write_geotiff,
    write_mat_v5,
    write_mat_v73,
)

from hsizoo.io import Scene, read_labels, read_scene, read_scene_info


@pytest.fixture
def cube() -> np.ndarray:
    return make_cube()


@pytest.fixture
def wl() -> np.ndarray:
    return make_wavelengths()


def _check_geo(scene: Scene) -> None:
    assert scene.crs is not None and scene.crs.to_string() == CRS
    assert scene.transform == transform()


# --- GeoTIFF wavelength sources ---------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["Band {i} ({v} nm)", "{v}", "{v} nm", "Band {i}: {v}"])
def test_geotiff_wavelengths_in_descriptions_nm(tmp_path, cube, wl, fmt):
    desc = [fmt.format(i=i + 1, v=v) for i, v in enumerate(wl)]
    path = write_geotiff(tmp_path / "s.tif", cube, descriptions=desc)
    scene = read_scene(path)
    np.testing.assert_allclose(scene.wavelengths, wl)
    assert scene.meta["wavelength_source"] == "band descriptions"
    assert scene.band_names == desc
    assert scene.cube.dtype == np.float32 and scene.cube.shape == cube.shape
    np.testing.assert_array_equal(scene.cube, cube.astype(np.float32))
    _check_geo(scene)


@pytest.mark.parametrize("fmt", ["{v:.5f} um", "{v:.5f}", "Band {i} ({v:.5f} micrometers)"])
def test_geotiff_wavelengths_in_descriptions_micrometres(tmp_path, cube, wl, fmt):
    desc = [fmt.format(i=i + 1, v=v / 1000) for i, v in enumerate(wl)]
    scene = read_scene(write_geotiff(tmp_path / "s.tif", cube, descriptions=desc))
    np.testing.assert_allclose(scene.wavelengths, wl, atol=1e-6)


def test_geotiff_wavelengths_in_band_tags_with_units_and_fwhm(tmp_path, cube, wl):
    tags = [{"wavelength": f"{v / 1000:.6f}", "wavelength_units": "Micrometers",
             "fwhm": "0.01"} for v in wl]
    scene = read_scene(write_geotiff(tmp_path / "s.tif", cube, band_tags=tags))
    np.testing.assert_allclose(scene.wavelengths, wl, atol=1e-6)
    np.testing.assert_allclose(scene.fwhm, np.full(len(wl), 10.0))
    assert scene.meta["wavelength_source"] == "band tags"


def test_geotiff_band_tags_uppercase_nm_without_unit(tmp_path, cube, wl):
    tags = [{"WAVELENGTH": f"{v}"} for v in wl]
    scene = read_scene(write_geotiff(tmp_path / "s.tif", cube, band_tags=tags))
    np.testing.assert_allclose(scene.wavelengths, wl)


def test_band_tags_win_over_descriptions(tmp_path, cube, wl):
    tags = [{"wavelength": f"{v}"} for v in wl]
    desc = [f"{v + 1000}" for v in wl]
    scene = read_scene(write_geotiff(tmp_path / "s.tif", cube, band_tags=tags, descriptions=desc))
    np.testing.assert_allclose(scene.wavelengths, wl)


@pytest.mark.parametrize("units,scale", [("Nanometers", 1.0), ("Micrometers", 1e-3),
                                         ("Unknown", 1e-3)])
def test_geotiff_wavelengths_in_envi_domain(tmp_path, cube, wl, units, scale):
    envi = {"wavelength": envi_list(wl * scale), "wavelength_units": units,
            "fwhm": envi_list(np.full(len(wl), 10.0 * scale))}
    scene = read_scene(write_geotiff(tmp_path / "s.tif", cube, envi=envi))
    np.testing.assert_allclose(scene.wavelengths, wl, atol=1e-6)
    np.testing.assert_allclose(scene.fwhm, 10.0)
    assert scene.meta["wavelength_source"] == "ENVI metadata domain"


def test_explicit_wavelengths_win_and_micrometres_warn(tmp_path, cube, wl):
    path = write_geotiff(tmp_path / "s.tif", cube, descriptions=[f"{v}" for v in wl])
    other = wl + 1.0
    np.testing.assert_allclose(read_scene(path, wavelengths=other).wavelengths, other)
    with pytest.warns(UserWarning, match="micrometres"):
        scene = read_scene(path, wavelengths=wl / 1000)
    np.testing.assert_allclose(scene.wavelengths, wl)


def test_sensor_preset_used_when_file_has_none(tmp_path):
    from hsizoo.spectral.sensors import get_sensor

    cube = make_cube(3, 4, 103)
    scene = read_scene(write_geotiff(tmp_path / "s.tif", cube), sensor="rosis")
    np.testing.assert_allclose(scene.wavelengths, get_sensor("rosis").wavelengths)
    assert scene.sensor == "rosis" and scene.fwhm is not None
    with pytest.raises(ValueError, match="103"):
        read_scene(tmp_path / "s.tif", sensor="aviris_indian_pines")  # 200-band preset
    with pytest.raises(ValueError, match="known presets"):
        read_scene(tmp_path / "s.tif", sensor="no_such_sensor")


def test_no_wavelengths_error_says_where_it_looked(tmp_path, cube):
    path = write_geotiff(tmp_path / "s.tif", cube, descriptions=["red"] * 6)
    with pytest.raises(ValueError) as err:
        read_scene(path)
    msg = str(err.value)
    for part in ("band tags", "band descriptions", "ENVI", "wavelengths=", "sensor=",
                 "aviris_indian_pines"):
        assert part in msg


def test_wavelength_list_errors(tmp_path, cube, wl):
    path = write_geotiff(tmp_path / "s.tif", cube)
    with pytest.raises(ValueError, match="6 bands"):
        read_scene(path, wavelengths=wl[:-1])
    with pytest.raises(ValueError, match="strictly increasing"):
        read_scene(path, wavelengths=wl[::-1])
    dup = [f"{v}" for v in wl]
    dup[3] = dup[2]
    with pytest.raises(ValueError, match="strictly increasing"):
        read_scene(write_geotiff(tmp_path / "d.tif", cube, descriptions=dup))


def test_no_georeferencing_gives_none(tmp_path, cube, wl):
    scene = read_scene(write_geotiff(tmp_path / "s.tif", cube, crs=None), wavelengths=wl)
    assert scene.crs is None and scene.transform is None


# --- validity -----------------------------------------------------------------------------------


def test_nodata_from_file_and_argument(tmp_path, cube, wl):
    cube = cube.copy()
    cube[0, 0, :] = -9999
    cube[2, 3, 1] = -9999  # a single bad band invalidates the pixel too
    path = write_geotiff(tmp_path / "s.tif", cube, nodata=-9999, descriptions=[f"{v}" for v in wl])
    scene = read_scene(path)
    assert not scene.valid[0, 0] and not scene.valid[2, 3]
    assert scene.valid.sum() == cube.shape[0] * cube.shape[1] - 2
    # the argument overrides the file's nodata
    value = float(cube[5, 5, 0])
    over = read_scene(path, nodata=value)
    assert not over.valid[5, 5] and over.valid[0, 0]


def test_nan_and_inf_are_invalid(tmp_path, wl):
    cube = make_cube(dtype="float32")
    cube[1, 1, 2] = np.nan
    cube[4, 2, 0] = np.inf
    scene = read_scene(write_geotiff(tmp_path / "s.tif", cube), wavelengths=wl)
    assert scene.valid.sum() == cube.shape[0] * cube.shape[1] - 2
    assert not scene.valid[1, 1] and not scene.valid[4, 2]


# --- ENVI ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("units,scale", [("Nanometers", 1.0), ("Micrometers", 1e-3)])
def test_envi_header_and_data_paths(tmp_path, cube, wl, units, scale):
    names = [f"b{i}" for i in range(len(wl))]
    hdr, data = write_envi(tmp_path / "scene", cube, wl * scale, units=units, band_names=names)
    a, b = read_scene(hdr), read_scene(data)
    for scene in (a, b):
        np.testing.assert_allclose(scene.wavelengths, wl, atol=1e-6)
        np.testing.assert_array_equal(scene.cube, cube.astype(np.float32))
        assert scene.crs is not None and scene.crs.to_epsg() == 32616
        assert scene.transform.c == 500_000.0 and scene.transform.a == 20.0
        assert scene.band_names == names


def test_envi_data_ignore_value_is_nodata(tmp_path, cube, wl):
    cube = cube.copy()
    cube[3, 4, :] = -1
    hdr, _ = write_envi(tmp_path / "scene", cube, wl, nodata=-1)
    scene = read_scene(hdr)
    assert not scene.valid[3, 4] and scene.valid.sum() == cube.shape[0] * cube.shape[1] - 1


def test_envi_header_without_data_file(tmp_path, cube, wl):
    hdr, data = write_envi(tmp_path / "scene", cube, wl)
    data.unlink()
    with pytest.raises(FileNotFoundError, match="no data file"):
        read_scene(hdr)


# --- MATLAB -------------------------------------------------------------------------------------


def test_mat_v5_single_cube_and_labels(tmp_path, wl):
    cube = make_cube(7, 5, 6, dtype="uint16")
    gt = np.random.default_rng(1).integers(0, 4, size=(7, 5)).astype(np.uint8)
    path = write_mat_v5(tmp_path / "c.mat", {"cube": cube})
    gpath = write_mat_v5(tmp_path / "g.mat", {"gt": gt})
    scene = read_scene(path, wavelengths=wl, labels=gpath, class_names=["a", "b", "c"])
    np.testing.assert_array_equal(scene.cube, cube.astype(np.float32))
    np.testing.assert_array_equal(scene.labels, gt)
    assert scene.crs is None and scene.transform is None
    assert scene.meta["mat_variable"] == "cube" and scene.meta["mat_version"] == "v5"


def test_mat_wavelength_variable(tmp_path, wl):
    cube = make_cube(4, 3, 6)
    scene = read_scene(write_mat_v5(tmp_path / "c.mat", {"data": cube, "wavelength": wl / 1000}))
    np.testing.assert_allclose(scene.wavelengths, wl)


def test_mat_several_cubes_needs_variable(tmp_path, wl):
    path = write_mat_v5(tmp_path / "c.mat", {"radiance": make_cube(4, 3, 6),
                                             "reflectance": make_cube(4, 3, 6, seed=1)})
    with pytest.raises(ValueError, match="radiance.*reflectance|reflectance.*radiance") as err:
        read_scene(path, wavelengths=wl)
    assert "variable=" in str(err.value)
    scene = read_scene(path, wavelengths=wl, variable="reflectance")
    np.testing.assert_array_equal(scene.cube, make_cube(4, 3, 6, seed=1).astype(np.float32))
    with pytest.raises(ValueError, match="no variable 'nope'"):
        read_scene(path, wavelengths=wl, variable="nope")


def test_mat_v73_axis_order(tmp_path, wl):
    cube = make_cube(7, 5, 6, dtype="float64")  # H != W != B so a transposition would show
    gt = np.arange(35, dtype=np.uint8).reshape(7, 5) % 4
    path = write_mat_v73(tmp_path / "c.mat", {"cube": cube})
    gpath = write_mat_v73(tmp_path / "g.mat", {"gt": gt})
    scene = read_scene(path, wavelengths=wl, labels=gpath)
    assert scene.meta["mat_version"] == "v7.3"
    np.testing.assert_array_equal(scene.cube, cube.astype(np.float32))
    np.testing.assert_array_equal(scene.labels, gt)


def test_catalogue_file_name_gives_sensor_with_warning(tmp_path):
    cube = make_cube(3, 2, 200, dtype="uint16")
    path = write_mat_v5(tmp_path / "Indian_pines_corrected.mat", {"indian_pines_corrected": cube})
    with pytest.warns(UserWarning, match="aviris_indian_pines"):
        scene = read_scene(path)
    assert scene.wavelengths.size == 200 and scene.sensor == "aviris_indian_pines"


def test_labels_shape_mismatch(tmp_path, cube, wl):
    path = write_geotiff(tmp_path / "s.tif", cube)
    with pytest.raises(ValueError, match="Label map shape"):
        read_scene(path, wavelengths=wl, labels=np.zeros((3, 3), dtype=int))
    with pytest.raises(ValueError, match=">= 0"):
        read_labels(-np.ones((3, 3)))
    with pytest.raises(ValueError, match="class names"):
        read_scene(path, wavelengths=wl, labels=np.full(cube.shape[:2], 3), class_names=["a"])


# --- bad files ----------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_scene(tmp_path / "nope.tif")


def test_truncated_geotiff(tmp_path, cube, wl):
    path = write_geotiff(tmp_path / "s.tif", make_cube(64, 64, 6), descriptions=[f"{v}" for v in wl])
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="s.tif"):
        read_scene(path)


def test_garbage_file(tmp_path):
    path = tmp_path / "x.tif"
    path.write_bytes(b"not a tiff at all" * 10)
    with pytest.raises(ValueError, match="Could not read .*x.tif"):
        read_scene(path)


@pytest.mark.parametrize("writer", [write_mat_v5, write_mat_v73])
def test_truncated_mat(tmp_path, wl, writer):
    path = writer(tmp_path / "c.mat", {"cube": make_cube(30, 30, 6, dtype="float64")})
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="c.mat"):
        read_scene(path, wavelengths=wl)


def test_read_scene_info_reads_no_pixels(tmp_path, cube, wl):
    path = write_geotiff(tmp_path / "s.tif", cube, descriptions=[f"{v}" for v in wl], nodata=-1)
    info = read_scene_info(path)
    assert (info.height, info.width, info.num_bands) == cube.shape
    assert info.nodata == -1 and info.dtype == "int16" and info.crs.to_string() == CRS
    np.testing.assert_allclose(info.wavelengths, wl)


def test_scene_constructor_checks():
    cube = np.zeros((2, 3, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="strictly increasing"):
        Scene(cube=cube, wavelengths=[500, 400, 600, 700])
    with pytest.raises(ValueError, match="Validity mask"):
        Scene(cube=cube, wavelengths=[400, 500, 600, 700], valid=np.ones((3, 2), bool))
    with pytest.raises(ValueError, match="fwhm"):
        Scene(cube=cube, wavelengths=[400, 500, 600, 700], fwhm=[10, 10])
