"""Class maps carry a legend GDAL reads (category names, raster attribute table) and overviews."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from rasterio.transform import from_origin

from hsizoo.io import read_class_map_metadata, write_class_map
from hsizoo.io.atomic import OutputError
from hsizoo.io.legend import sidecar_path
from hsizoo.io.mosaic import write_vrt_mosaics

NAMES = ["water", "forest & shrubs", "urban <dense>"]


def _gdal_view(path: Path, tmp_path: Path) -> str:
    """What GDAL itself makes of a raster and its sidecar: its VRT description (the XML
    ``gdal_translate -of VRT`` writes), category names and attribute table included."""
    import rasterio.shutil

    vrt = tmp_path / f"{path.stem}.gdal.vrt"
    rasterio.shutil.copy(str(path), str(vrt), driver="VRT")
    return vrt.read_text()


def _categories(xml: str) -> list[str]:
    block = re.search(r"<CategoryNames>(.*?)</CategoryNames>", xml, re.S).group(1)
    return [c.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
            for c in re.findall(r"<Category>(.*?)</Category>", block, re.S)]


def test_gdal_reports_the_category_names_and_attribute_table(tmp_path: Path) -> None:
    m = np.random.default_rng(0).integers(0, 4, (20, 30))
    colors = [(0, 0, 255), (0, 128, 0), (200, 10, 10)]
    out = write_class_map(tmp_path / "map.tif", m, crs="EPSG:32633",
                          transform=from_origin(0, 0, 10, 10), class_names=NAMES, colors=colors)
    assert sidecar_path(out).is_file()
    xml = _gdal_view(out, tmp_path)
    assert _categories(xml) == ["unclassified", *NAMES]
    rat = re.search(r'<GDALRasterAttributeTable tableType="thematic">(.*?)'
                    r"</GDALRasterAttributeTable>", xml, re.S).group(1)
    rows = [re.findall(r"<F>(.*?)</F>", r, re.S) for r in re.findall(r"<Row .*?</Row>", rat, re.S)]
    assert rows[2] == ["2", "forest &amp; shrubs", "0", "128", "0", "255"]
    assert [r[0] for r in rows] == ["0", "1", "2", "3"] and rows[0][1] == "unclassified"
    # the tags, colour table and pixels are what they were
    assert read_class_map_metadata(out)["class_names"] == NAMES
    import rasterio

    with rasterio.open(out) as ds:
        np.testing.assert_array_equal(ds.read(1), m)


def test_large_maps_get_mode_overviews(tmp_path: Path) -> None:
    import rasterio

    # every 2 x 2 block: one pixel of class 1 (top left), three of class 2; the mode is 2
    m = np.full((520, 600), 2, np.uint8)
    m[::2, ::2] = 1
    out = write_class_map(tmp_path / "big.tif", m, crs=None, transform=None, class_names=["a", "b"])
    with rasterio.open(out) as ds:
        assert ds.overviews(1) == [2, 4]
        assert ds.tags(ns="rio_overview") == {"resampling": "mode"}
        level = ds.read(1, out_shape=(260, 300))  # served from the first overview
    assert (level == 2).all()
    small = write_class_map(tmp_path / "small.tif", m[:200, :200], crs=None, transform=None,
                            class_names=["a", "b"])
    with rasterio.open(small) as ds:
        assert ds.overviews(1) == []  # one tile: nothing to gain


def test_the_sidecar_is_an_output_like_the_map(tmp_path: Path) -> None:
    m = np.ones((5, 6), int)
    target = tmp_path / "map.tif"
    sidecar_path(target).write_text("someone's notes")
    with pytest.raises(FileExistsError, match="aux.xml"):
        write_class_map(target, m, crs=None, transform=None, class_names=["a"])
    assert not target.exists() and sidecar_path(target).read_text() == "someone's notes"
    write_class_map(target, m, crs=None, transform=None, class_names=["a"], overwrite=True)
    assert "<CategoryNames>" in sidecar_path(target).read_text()


def test_a_failed_map_leaves_no_legend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hsizoo.io.writers as writers

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writers, "write_legend", boom)
    with pytest.raises((OSError, OutputError)):
        write_class_map(tmp_path / "map.tif", np.ones((5, 6), int), crs=None, transform=None,
                        class_names=["a"])
    assert list(tmp_path.iterdir()) == []  # neither the map nor a partial file


def test_vrt_mosaic_carries_the_category_names(tmp_path: Path) -> None:
    paths = [write_class_map(tmp_path / f"m{i}.tif", np.full((8, 8), i + 1), crs="EPSG:32633",
                             transform=from_origin(80 * i, 0, 10, 10), class_names=NAMES)
             for i in range(2)]
    (vrt,) = write_vrt_mosaics(paths, tmp_path)
    assert _categories(_gdal_view(vrt, tmp_path)) == ["unclassified", *NAMES]
