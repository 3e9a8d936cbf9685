"""The TorchGeo dataset of hyperspectral rasters: samples carry their wavelengths."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest_io import PIXEL, make_cube, make_wavelengths, transform, write_geotiff


def test_without_torchgeo_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from hsizoo._optional import MissingExtraError

    monkeypatch.setitem(sys.modules, "torchgeo", None)
    monkeypatch.delitem(sys.modules, "hsizoo.data.torchgeo_dataset", raising=False)
    with pytest.raises(MissingExtraError, match=r"hsizoo\[torchgeo\]"):
        importlib.import_module("hsizoo.data.torchgeo_dataset")


def _files(folder: Path) -> tuple[np.ndarray, list[Path]]:
    cube = make_cube(h=16, w=16, b=5, dtype="float32")
    tags = [{"wavelength": str(v), "wavelength_units": "nm"} for v in make_wavelengths(5)]
    return cube, [write_geotiff(folder / "a.tif", cube, band_tags=tags)]


def test_samples_carry_wavelengths_and_the_right_pixels(tmp_path: Path) -> None:
    pytest.importorskip("torchgeo", reason="the torchgeo extra: pip install 'hsizoo[torchgeo]'")
    from torchgeo.samplers import GridGeoSampler

    from hsizoo.data.torchgeo_dataset import HyperspectralRasterDataset

    cube, _ = _files(tmp_path)
    seen = []
    ds = HyperspectralRasterDataset(tmp_path, transforms=lambda s: seen.append(
        sorted(s)) or s)
    np.testing.assert_allclose(ds.wavelengths, make_wavelengths(5))
    queries = list(GridGeoSampler(ds, size=8, stride=8))
    assert len(queries) == 4
    sample = ds[queries[0]]
    assert sample["image"].shape == (5, 8, 8)
    np.testing.assert_allclose(sample["wavelengths"].numpy(), make_wavelengths(5), rtol=1e-6)
    assert "wavelengths" in seen[0]  # transforms see the complete sample
    # the patch is the file's pixels under the query's bounds
    t = transform()
    x0 = getattr(queries[0], "minx", None)
    x0 = queries[0][0].start if x0 is None else x0
    y1 = getattr(queries[0], "maxy", None)
    y1 = queries[0][1].stop if y1 is None else y1
    c0, r0 = int(round((x0 - t.c) / PIXEL)), int(round((t.f - y1) / PIXEL))
    np.testing.assert_allclose(sample["image"].numpy(),
                               np.moveaxis(cube[r0:r0 + 8, c0:c0 + 8], 2, 0))
    # bands by name (their wavelengths), and the wavelengths that go with them
    names = ds.all_bands[1:3]
    part = HyperspectralRasterDataset(tmp_path, bands=names)
    s2 = part[queries[0]]
    assert s2["image"].shape == (2, 8, 8)
    np.testing.assert_allclose(s2["wavelengths"].numpy(), make_wavelengths(5)[1:3], rtol=1e-6)
    with pytest.raises(ValueError, match="not band names"):
        HyperspectralRasterDataset(tmp_path, bands=["123"])


def test_files_of_another_sensor_are_refused(tmp_path: Path) -> None:
    pytest.importorskip("torchgeo", reason="the torchgeo extra: pip install 'hsizoo[torchgeo]'")
    from hsizoo.data.torchgeo_dataset import HyperspectralRasterDataset

    _files(tmp_path)
    tags = [{"wavelength": str(v)} for v in make_wavelengths(4)]
    write_geotiff(tmp_path / "b.tif", make_cube(h=8, w=8, b=4, dtype="float32"), band_tags=tags)
    with pytest.raises(ValueError, match="other band wavelengths"):
        HyperspectralRasterDataset(tmp_path)
