"""Class and confidence maps: georeferencing, nodata, colour table and names survive a round trip."""
from __future__ import annotations

import json

import numpy as np
import pytest
from conftest_io import CRS, make_cube, make_wavelengths, transform, write_geotiff

from hsizoo.io import (
    default_palette,
    iter_windows,
    open_class_map_writer,
    read_class_map_metadata,
    read_scene,
    write_class_map,
    write_confidence_map,
)

NAMES = ["water", "trees", "asphalt", "meadows"]


def _leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".") or "partial" in p.name]


def test_round_trip_read_write_reread(tmp_path):
    import rasterio

    cube = make_cube(300, 270, 3)  # larger than one 256 x 256 tile
    src = write_geotiff(tmp_path / "scene.tif", cube, descriptions=[f"{v}" for v in make_wavelengths(3)])
    scene = read_scene(src)
    cmap = np.random.default_rng(0).integers(0, len(NAMES) + 1, size=scene.cube.shape[:2])
    out = write_class_map(tmp_path / "map.tif", cmap, crs=scene.crs, transform=scene.transform,
                          class_names=NAMES, window_size=100)
    with rasterio.open(out) as ds:
        assert ds.crs.to_string() == CRS and ds.transform == transform()
        assert ds.nodata == 0 and ds.dtypes[0] == "uint8" and ds.count == 1
        assert ds.block_shapes[0] == (256, 256)
        assert ds.compression.name.lower() == "deflate"
        np.testing.assert_array_equal(ds.read(1), cmap)
        table = ds.colormap(1)
        tags = ds.tags()
    pal = default_palette(len(NAMES))
    assert [table[i + 1][:3] for i in range(len(NAMES))] == pal
    assert json.loads(tags["CLASS_NAMES"]) == NAMES
    assert tags["CLASS_2"] == "trees" and tags["CLASS_0"] == "unclassified"
    meta = read_class_map_metadata(out)
    assert meta["class_names"] == NAMES and meta["colors"] == pal and meta["nodata"] == 0
    # and the map reads back as a scene-shaped grid through the reader too
    again = read_scene(out, wavelengths=[1.0e3])
    assert again.crs == scene.crs and again.transform == scene.transform
    assert _leftovers(tmp_path) == []


def test_custom_colors_and_uint16(tmp_path):
    import rasterio

    colors = [(10, 20, 30), (40, 50, 60), (70, 80, 90), (1, 2, 3)]
    cmap = np.array([[0, 1], [2, 4]])
    write_class_map(tmp_path / "a.tif", cmap, crs=CRS, transform=transform(), class_names=NAMES,
                    colors=colors)
    assert read_class_map_metadata(tmp_path / "a.tif")["colors"] == colors
    names = [f"c{i}" for i in range(300)]
    big = np.array([[0, 299], [300, 1]])
    write_class_map(tmp_path / "b.tif", big, crs=None, transform=None, class_names=names)
    with rasterio.open(tmp_path / "b.tif") as ds:
        assert ds.dtypes[0] == "uint16"
        np.testing.assert_array_equal(ds.read(1), big)
        assert ds.crs is None


def test_overwrite_and_bad_class_ids(tmp_path):
    path = tmp_path / "map.tif"
    cmap = np.ones((4, 5), dtype=int)
    write_class_map(path, cmap, crs=CRS, transform=transform(), class_names=NAMES)
    with pytest.raises(FileExistsError, match="overwrite=True.*--overwrite"):
        write_class_map(path, cmap, crs=CRS, transform=transform(), class_names=NAMES)
    write_class_map(path, cmap * 2, crs=CRS, transform=transform(), class_names=NAMES,
                    overwrite=True)
    import rasterio

    with rasterio.open(path) as ds:
        assert ds.read(1).max() == 2
    with pytest.raises(ValueError, match="class id 5"):
        write_class_map(tmp_path / "bad.tif", cmap * 5, crs=CRS, transform=transform(),
                        class_names=NAMES)
    assert not (tmp_path / "bad.tif").exists() and _leftovers(tmp_path) == []
    with pytest.raises(ValueError, match="colours"):
        write_class_map(tmp_path / "c.tif", cmap, crs=CRS, transform=transform(),
                        class_names=NAMES, colors=[(1, 2, 3)])


def test_streaming_writer_with_halo_equals_whole_write(tmp_path):
    import rasterio

    cube = make_cube(37, 29, 4)
    src = write_geotiff(tmp_path / "s.tif", cube, descriptions=[f"{v}" for v in make_wavelengths(4)])
    scene = read_scene(src)

    def classify(block_cube: np.ndarray) -> np.ndarray:
        # a stand-in for a 3 x 3 patch model: class from the mean of the 3 x 3 neighbourhood
        # of band 0, which needs a halo of 1 to give the same answer window by window
        from scipy.ndimage import uniform_filter

        m = uniform_filter(block_cube[..., 0], size=3, mode="nearest")
        return (np.digitize(m, [1500, 2000, 2500]) + 1).astype(np.uint8)

    expected = classify(scene.cube)
    with open_class_map_writer(tmp_path / "stream.tif", *scene.cube.shape[:2], crs=scene.crs,
                               transform=scene.transform, class_names=NAMES) as out:
        for block in iter_windows(src, 8, halo=1):
            out.write(block.window, block.crop(classify(block.cube)))
        assert not (tmp_path / "stream.tif").exists()  # moved into place only when complete
    with rasterio.open(tmp_path / "stream.tif") as ds:
        np.testing.assert_array_equal(ds.read(1), expected)


def test_streaming_writer_error_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with open_class_map_writer(tmp_path / "m.tif", 10, 10, crs=CRS, transform=transform(),
                                   class_names=NAMES) as out:
            out.write((0, 0), np.ones((5, 5), dtype=np.uint8))
            raise RuntimeError("prediction crashed")
    assert list(tmp_path.iterdir()) == []


def test_streaming_writer_checks_blocks(tmp_path):
    with open_class_map_writer(tmp_path / "m.tif", 10, 10, crs=CRS, transform=transform(),
                               class_names=NAMES) as out:
        with pytest.raises(ValueError, match="does not match the window"):
            from rasterio.windows import Window

            out.write(Window(0, 0, 4, 4), np.ones((5, 5), dtype=np.uint8))
        with pytest.raises(ValueError, match="outside"):
            out.write((8, 8), np.ones((5, 5), dtype=np.uint8))
        with pytest.raises(ValueError, match="class id 9"):
            out.write((0, 0), np.full((2, 2), 9))
        out.write((0, 0), np.zeros((10, 10), dtype=np.uint8))
    assert (tmp_path / "m.tif").exists()


@pytest.mark.parametrize("dtype,atol", [("float32", 0.0), ("uint8", 0.5 / 254)])
def test_confidence_map(tmp_path, dtype, atol):
    import rasterio

    conf = np.random.default_rng(0).random((12, 9)).astype(np.float32)
    valid = np.ones_like(conf, dtype=bool)
    valid[0, 0] = False
    out = write_confidence_map(tmp_path / "c.tif", conf, crs=CRS, transform=transform(),
                               dtype=dtype, valid=valid)
    with rasterio.open(out) as ds:
        assert ds.dtypes[0] == dtype and ds.transform == transform()
        raw = ds.read(1, masked=True)
        assert raw.mask[0, 0] and raw.mask.sum() == 1
        back = raw.astype(np.float64) * ds.scales[0] + ds.offsets[0]
    np.testing.assert_allclose(back[1:, 1:], conf[1:, 1:], atol=atol + 1e-7)
    with pytest.raises(ValueError, match="0..1"):
        write_confidence_map(tmp_path / "d.tif", conf + 1, crs=CRS, transform=transform())


def test_a_failed_write_keeps_the_previous_map(tmp_path, monkeypatch):
    """GDAL only logs some write errors (a full disk): the finished file is read back before it
    replaces anything, so a broken write raises and the previous map stays intact."""
    import rasterio

    from hsizoo.io import atomic

    path = tmp_path / "map.tif"
    cmap = np.ones((40, 50), dtype=int)
    write_class_map(path, cmap, crs=CRS, transform=transform(), class_names=NAMES)

    def truncated(p):  # what a full disk leaves: the file stops part-way
        with open(p, "r+b") as fh:
            fh.truncate(200)

    monkeypatch.setattr(atomic, "fsync_path", truncated)
    with pytest.raises(OSError, match="unchanged"):
        write_class_map(path, cmap * 2, crs=CRS, transform=transform(), class_names=NAMES,
                        overwrite=True)
    with rasterio.open(path) as ds:
        assert (ds.read(1) == 1).all()
    assert _leftovers(tmp_path) == []


def test_maps_are_created_with_the_users_umask(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        write_class_map(tmp_path / "a.tif", np.ones((4, 5), int), crs=None, transform=None,
                        class_names=NAMES)
        os.umask(0o077)
        write_class_map(tmp_path / "b.tif", np.ones((4, 5), int), crs=None, transform=None,
                        class_names=NAMES)
    finally:
        os.umask(old)
    assert (tmp_path / "a.tif").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.tif").stat().st_mode & 0o777 == 0o600
