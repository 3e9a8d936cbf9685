"""Scenes read over HTTP and S3 (GDAL /vsicurl/, /vsis3/) from a local range-serving server."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest_io import make_wavelengths, transform
from range_server import RangeServer

import hsizoo
from hsizoo.io.remote import RemotePath, is_remote


def _write_cog(path: Path, h: int = 1024, w: int = 1024, b: int = 4) -> np.ndarray:
    """A COG of random int16 (incompressible: tiles cost their size) with wavelength tags."""
    import rasterio
    import rasterio.shutil

    cube = np.random.default_rng(0).integers(0, 4000, (h, w, b)).astype("int16")
    tmp = path.with_suffix(".src.tif")
    with rasterio.open(tmp, "w", driver="GTiff", height=h, width=w, count=b, dtype="int16",
                       crs="EPSG:32616", transform=transform(), tiled=True, blockxsize=256,
                       blockysize=256) as ds:
        ds.write(np.moveaxis(cube, 2, 0))
        for i, wl in enumerate(make_wavelengths(b)):
            ds.update_tags(i + 1, wavelength=str(wl), wavelength_units="nm")
    rasterio.shutil.copy(tmp, path, driver="COG", compress="DEFLATE", blocksize=256)
    tmp.unlink()
    return cube


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("remote")
    (root / "bucket").mkdir()
    cube = _write_cog(root / "bucket" / "scene.tif")
    with RangeServer(root) as server:
        yield server, root / "bucket" / "scene.tif", cube


def test_remote_paths_are_kept_as_written() -> None:
    assert is_remote("https://example.org/a/b.tif") and is_remote("s3://bucket/k.tif")
    assert is_remote("/vsicurl/https://example.org/x.tif") and is_remote("/vsis3/b/k.tif")
    assert not is_remote("scene.tif") and not is_remote("/data/https/x.tif")
    assert not is_remote("/vsizip/local.zip/x.tif")  # a local archive, read as a local file
    url = RemotePath("https://example.org//a/b.tif?token=x")
    assert url.gdal == "/vsicurl/https://example.org//a/b.tif?token=x"  # no "//" collapsed
    assert (url.name, url.suffix) == ("b.tif", ".tif")
    assert RemotePath("s3://bucket/dir/k.tif").gdal == "/vsis3/bucket/dir/k.tif"


def test_http_window_fetches_only_part_of_the_file(served) -> None:
    server, local, cube = served
    size = local.stat().st_size
    # two spellings of two URLs (GDAL caches what it fetched per URL, within the process)
    for url in (f"{server.url}/bucket/scene.tif", f"/vsicurl/{server.url}/bucket/scene.tif?v=2"):
        server.log.clear()
        scene = hsizoo.read_scene(url, window=((300, 364), (520, 600)))
        np.testing.assert_array_equal(scene.cube, cube[300:364, 520:600].astype(np.float32))
        np.testing.assert_allclose(scene.wavelengths, make_wavelengths(4))
        assert scene.transform == transform() @ transform().translation(520, 300)
        assert scene.path == url and str(scene.crs) == "EPSG:32616"
        sent = server.bytes_sent()
        # the window touches 2 of 16 tiles (512 KiB each): the header and those tiles are read
        assert 0 < sent < 0.2 * size, (sent, size, server.log)


def test_s3_path_reads_through_vsis3(served, monkeypatch: pytest.MonkeyPatch) -> None:
    server, _, cube = served
    for key, value in {"AWS_S3_ENDPOINT": f"127.0.0.1:{server.port}", "AWS_HTTPS": "NO",
                       "AWS_VIRTUAL_HOSTING": "FALSE", "AWS_NO_SIGN_REQUEST": "YES"}.items():
        monkeypatch.setenv(key, value)
    server.log.clear()
    scene = hsizoo.read_scene("s3://bucket/scene.tif", bounds=(
        transform().c, transform().f - 20 * 40, transform().c + 20 * 30, transform().f))
    np.testing.assert_array_equal(scene.cube, cube[:40, :30].astype(np.float32))
    assert any(path.startswith("/bucket/scene.tif") for path, _ in server.log)
    info = hsizoo.io.read_scene_info("s3://bucket/scene.tif")
    assert (info.height, info.width, info.num_bands) == cube.shape


def test_unreachable_and_missing_urls_say_what_to_check(served) -> None:
    server, _, _ = served
    with pytest.raises(ValueError, match="Could not open the remote raster .*reachable"):
        hsizoo.read_scene(f"{server.url}/bucket/missing.tif")
    with pytest.raises(ValueError, match="Could not open the remote raster http://127.0.0.1:1/"):
        hsizoo.read_scene("http://127.0.0.1:1/scene.tif")
    with pytest.raises(ValueError, match="(?i)download it first"):
        hsizoo.read_scene(f"{server.url}/bucket/scene.mat")
