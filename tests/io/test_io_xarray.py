"""Scenes to and from rioxarray DataArrays: wavelengths, CRS and transform kept both ways."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest_io import make_cube, make_wavelengths, transform, write_geotiff

from hsizoo.io import from_xarray, read_scene, to_xarray

rioxarray = pytest.importorskip("rioxarray", reason="the xarray extra: pip install 'hsizoo[xarray]'")


@pytest.fixture
def tif(tmp_path: Path) -> Path:
    cube = make_cube(h=9, w=11, b=6)
    cube[2, 3] = -1
    tags = [{"wavelength": str(v)} for v in make_wavelengths(6)]
    return write_geotiff(tmp_path / "s.tif", cube, band_tags=tags, nodata=-1)


def test_round_trip_keeps_wavelengths_crs_transform_and_validity(tif: Path) -> None:
    scene = read_scene(tif)
    da = to_xarray(scene)
    assert da.dims == ("band", "y", "x") and da.rio.crs == scene.crs
    assert da.rio.transform() == scene.transform
    np.testing.assert_allclose(da.coords["wavelength"].values, scene.wavelengths)
    assert da.coords["wavelength"].attrs["units"] == "nm" and np.isnan(da.values[:, 2, 3]).all()
    back = from_xarray(da)
    np.testing.assert_array_equal(back.cube[back.valid], scene.cube[scene.valid])
    np.testing.assert_array_equal(back.valid, scene.valid)
    np.testing.assert_allclose(back.wavelengths, scene.wavelengths)
    assert back.crs == scene.crs and back.transform == scene.transform
    assert back.meta["wavelength_source"] == "DataArray coordinate 'wavelength'"


def test_open_rasterio_with_wavelengths_as_coordinates(tif: Path) -> None:
    da = rioxarray.open_rasterio(tif)  # bands numbered 1..6: not wavelengths
    with pytest.raises(ValueError, match="No band wavelengths found .*'wavelength' coordinate"):
        from_xarray(da)
    wl = make_wavelengths(6)
    for tagged in (da.assign_coords(wavelength=("band", wl / 1000.0)).pipe(
            lambda d: d.assign_coords(wavelength=d.wavelength.assign_attrs(units="um"))),
                   da.assign_coords(band=wl)):
        scene = read_scene(tagged)  # read_scene takes a DataArray where it takes a path
        np.testing.assert_allclose(scene.wavelengths, wl)
        assert scene.transform == transform() and str(scene.crs) == "EPSG:32616"
        assert not scene.valid[2, 3] and scene.valid.sum() == 9 * 11 - 1  # rio nodata = -1
    part = from_xarray(da, wavelengths=wl, window=((1, 4), (2, 7)), labels=np.ones((9, 11), int))
    np.testing.assert_array_equal(part.cube, read_scene(tif, window=((1, 4), (2, 7))).cube)
    assert part.transform == transform() @ transform().translation(2, 1)
    assert part.labels.shape == (3, 5)


def test_finetune_inputs_accept_a_dataarray(tif: Path) -> None:
    from hsizoo.finetune.inputs import as_scene

    da = rioxarray.open_rasterio(tif).assign_coords(band=make_wavelengths(6))
    scene = as_scene(da, None, None)
    assert scene.cube.shape == (9, 11, 6) and scene.crs is not None
