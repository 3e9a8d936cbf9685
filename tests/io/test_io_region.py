"""read_scene(window=..., bounds=...): only that part, on its own grid, with consistent labels."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest_io import PIXEL, make_cube, make_wavelengths, transform, write_envi, write_geotiff

from hsizoo.io import read_scene


@pytest.fixture(params=["geotiff", "envi"])
def scene_file(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, np.ndarray]:
    cube = make_cube(h=30, w=40, b=5)
    cube[0, 0] = -9999  # one nodata pixel, inside the window tested below
    if request.param == "geotiff":
        tags = [{"wavelength": str(v), "wavelength_units": "nm"} for v in make_wavelengths(5)]
        path = write_geotiff(tmp_path / "s.tif", cube, band_tags=tags, nodata=-9999)
    else:
        path, _ = write_envi(tmp_path / "s", cube, make_wavelengths(5), nodata=-9999)
    return path, cube


def test_window_reads_that_part_on_its_grid(scene_file: tuple[Path, np.ndarray]) -> None:
    from rasterio.windows import Window

    path, cube = scene_file
    labels = np.arange(30 * 40).reshape(30, 40) % 4
    whole = read_scene(path, labels=labels)
    part = read_scene(path, window=((0, 12), (5, 25)), labels=labels)
    np.testing.assert_array_equal(part.cube, whole.cube[0:12, 5:25])
    np.testing.assert_array_equal(part.valid, whole.valid[0:12, 5:25])
    np.testing.assert_array_equal(part.labels, labels[0:12, 5:25])
    assert part.transform == whole.transform @ whole.transform.translation(5, 0)
    assert part.crs == whole.crs and part.meta["window"] == ((0, 12), (5, 25))
    # the nodata pixel at (0, 0) stays invalid in a window holding it
    corner = read_scene(path, window=Window(0, 0, 3, 2))
    assert corner.cube.shape == (2, 3, 5) and not corner.valid[0, 0] and corner.valid[0, 1]
    # labels already cut to the window are taken as they are
    same = read_scene(path, window=((0, 12), (5, 25)), labels=labels[0:12, 5:25])
    np.testing.assert_array_equal(same.labels, part.labels)


def test_bounds_pick_every_pixel_they_touch(scene_file: tuple[Path, np.ndarray]) -> None:
    path, cube = scene_file
    t = transform()
    # x from 3.5 to 7 pixels, y from 2 to 6.25 pixels below the top: cols 3..6, rows 2..6
    left, right = t.c + 3.5 * PIXEL, t.c + 7 * PIXEL
    top, bottom = t.f - 2 * PIXEL, t.f - 6.25 * PIXEL
    part = read_scene(path, bounds=(left, bottom, right, top))
    assert part.meta["window"] == ((2, 7), (3, 7))
    np.testing.assert_array_equal(part.cube, cube[2:7, 3:7].astype(np.float32))
    assert part.transform.c == t.c + 3 * PIXEL and part.transform.f == t.f - 2 * PIXEL


@pytest.mark.parametrize("kwargs, message", [
    (dict(window=((0, 31), (0, 10))), "reaches outside .*30 rows x 40 columns"),
    (dict(window=((-1, 5), (0, 10))), "reaches outside"),
    (dict(window=((5, 5), (0, 10))), "is empty"),
    (dict(window=((0, 2.5), (0, 10))), "whole pixel numbers"),
    (dict(window="0:10"), r"not \(\(row_start"),
    (dict(bounds=(0, 0, 10, 10)), r"reaches outside .*bounds \(left, bottom, right, top\)"),
    (dict(bounds=(10, 0, 0, 10)), "left < right"),
    (dict(window=((0, 2), (0, 2)), bounds=(0, 0, 1, 1)), "not both"),
])
def test_regions_outside_or_malformed_are_refused(scene_file, kwargs, message) -> None:
    path, _ = scene_file
    with pytest.raises(ValueError, match=message):
        read_scene(path, **kwargs)


def test_bounds_need_georeferencing_and_mat_windows(tmp_path: Path) -> None:
    cube = make_cube(h=8, w=9, b=4)
    path = write_geotiff(tmp_path / "plain.tif", cube, crs=None,
                         band_tags=[{"wavelength": str(v)} for v in make_wavelengths(4)])
    with pytest.raises(ValueError, match="needs a georeferenced scene"):
        read_scene(path, bounds=(0, 0, 1, 1))
    part = read_scene(path, window=((1, 4), (2, 9)))
    np.testing.assert_array_equal(part.cube, cube[1:4, 2:9].astype(np.float32))
    assert part.transform is None
    import scipy.io

    scipy.io.savemat(tmp_path / "c.mat", {"cube": cube.astype(np.float32)})
    mat = read_scene(tmp_path / "c.mat", wavelengths=make_wavelengths(4), window=((2, 8), (0, 3)))
    np.testing.assert_array_equal(mat.cube, cube[2:8, 0:3].astype(np.float32))
    with pytest.raises(ValueError, match="Label map shape"):
        read_scene(path, window=((1, 4), (2, 9)), labels=np.zeros((5, 5), int))
