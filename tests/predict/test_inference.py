"""Whole-scene prediction: shared per-pixel computation equals the naive path, windows equal the
whole, invalid pixels are unclassified, streamed GeoTIFF output equals the in-memory map."""
from __future__ import annotations

import numpy as np
import pytest
import timm
import torch

import hsizoo  # noqa: F401  (registers the models)
from hsizoo.predict.engine import SharedPredictor, predict_naive, predict_scene
from hsizoo.io import Scene
from hsizoo.data.patches import prepare_cube
from hsizoo.spectral.grid import band_stats


def _scene(h: int = 13, w: int = 11, b: int = 12, lo: float = 450.0, hi: float = 2300.0,
           seed: int = 0) -> Scene:
    rng = np.random.default_rng(seed)
    cube = rng.normal(1.0, 0.3, size=(h, w, b)).astype(np.float32)
    return Scene(cube=cube, wavelengths=np.linspace(lo, hi, b))


def _model(num_classes: int = 4, **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    return timm.create_model("s2former_test", num_classes=num_classes, **kw).eval()


@pytest.mark.parametrize("lo,hi", [(450.0, 2300.0), (700.0, 1100.0)])  # full / partial coverage
def test_shared_equals_naive_on_every_pixel(lo: float, hi: float) -> None:
    scene = _scene(lo=lo, hi=hi)
    model = _model()
    P = model.patch_size
    padded = prepare_cube(band_stats(scene.cube).apply(scene.cube), None, P)
    rows, cols = np.nonzero(np.ones(scene.cube.shape[:2], bool))
    naive = predict_naive(model, padded, rows, cols, scene.wavelengths, batch_size=7)
    shared = SharedPredictor(model, scene.wavelengths, batch_size=5).predict_padded(
        padded, rows, cols)
    assert shared.shape == naive.shape == (rows.size, 4)
    torch.testing.assert_close(shared, naive, atol=1e-5, rtol=1e-5)
    feats = SharedPredictor(model, scene.wavelengths).predict_padded(padded, rows, cols,
                                                                      pre_logits=True)
    ref = model.forward_head(model.forward_features(
        torch.stack([padded[:, r:r + P, c:c + P] for r, c in zip(rows, cols)]),
        scene.wavelengths), pre_logits=True)
    torch.testing.assert_close(feats, ref, atol=1e-5, rtol=1e-5)


def test_windowed_equals_full_and_invalid_pixels_unclassified() -> None:
    scene = _scene(h=19, w=17)
    scene.valid[2, 3] = False
    scene.valid[10:12, 5:9] = False
    scene.cube[2, 3] = np.nan  # invalid pixels may hold anything
    model = _model()
    stats = band_stats(scene.cube, scene.valid)
    full = predict_scene(model, scene, stats, window_size=64, progress=False)
    win = predict_scene(model, scene, stats, window_size=6, batch_size=8, progress=False)
    np.testing.assert_array_equal(full.class_map, win.class_map)
    np.testing.assert_allclose(full.probabilities, win.probabilities, atol=1e-5)
    assert (full.class_map[~scene.valid] == 0).all()
    assert (full.class_map[scene.valid] > 0).all()
    assert np.isnan(full.confidence[~scene.valid]).all()
    assert np.allclose(full.probabilities[scene.valid].sum(-1), 1.0, atol=1e-5)
    assert (full.probabilities[~scene.valid] == 0).all()


def test_all_invalid_window_is_skipped() -> None:
    scene = _scene(h=12, w=12)
    scene.valid[:6, :6] = False
    res = predict_scene(_model(), scene, band_stats(scene.cube, scene.valid), window_size=6,
                        progress=False)
    assert (res.class_map[:6, :6] == 0).all() and (res.class_map[6:, :] > 0).all()


def test_streamed_geotiff_equals_in_memory(tmp_path) -> None:
    import rasterio
    from affine import Affine

    scene = _scene(h=21, w=18)
    scene.cube[4, 4] = -9999.0
    src = tmp_path / "scene.tif"
    profile = dict(driver="GTiff", height=21, width=18, count=scene.num_bands, dtype="float32",
                   crs="EPSG:32616", transform=Affine(20, 0, 500000, 0, -20, 4480000),
                   nodata=-9999.0)
    with rasterio.open(src, "w", **profile) as ds:
        ds.write(np.moveaxis(scene.cube, -1, 0))
        for i, wl in enumerate(scene.wavelengths, 1):
            ds.update_tags(i, wavelength=f"{wl:.3f}", wavelength_units="nm")
    scene.valid[4, 4] = False
    model = _model()
    stats = band_stats(scene.cube, scene.valid)
    mem = predict_scene(model, scene, stats, progress=False)
    out = tmp_path / "map.tif"
    res = predict_scene(model, str(src), stats, window_size=8, out_path=out,
                        confidence_path=tmp_path / "conf.tif", progress=False)
    assert res.class_map is None and res.probabilities is None
    with rasterio.open(out) as ds:
        streamed = ds.read(1)
        assert ds.crs.to_epsg() == 32616 and ds.transform == profile["transform"]
    np.testing.assert_array_equal(streamed, mem.class_map)
    assert streamed[4, 4] == 0
    with pytest.raises(FileExistsError, match="overwrite"):
        predict_scene(model, str(src), stats, out_path=out, progress=False)
    predict_scene(model, str(src), stats, out_path=out, overwrite=True, progress=False)

    # The streamed bar counts every pixel, nodata included, so it ends at its total, also when
    # a whole window is nodata (such windows are skipped).
    import hsizoo.predict.engine as inference

    bars = []

    class Bar:
        def __init__(self, total: int) -> None:
            self.total, self.n = total, 0
            bars.append(self)

        def update(self, k: int) -> None:
            self.n += k

        def close(self) -> None:
            pass

    with rasterio.open(src, "r+") as ds:
        ds.write(np.full((scene.num_bands, 8, 8), -9999.0, np.float32),
                 window=rasterio.windows.Window(8, 8, 8, 8))
    orig = inference._progress
    inference._progress = lambda total, enabled, desc: Bar(total)
    try:
        for sigma in (0.0, 2.0):
            predict_scene(model, str(src), stats, window_size=8, out_path=out, overwrite=True,
                          smooth_sigma=sigma)
    finally:
        inference._progress = orig
    assert [(b.n, b.total) for b in bars] == [(21 * 18, 21 * 18)] * 2


def test_class_map_save_quicklook_and_evaluate(tmp_path) -> None:
    scene = _scene()
    res = predict_scene(_model(), scene, band_stats(scene.cube), class_names=list("abcd"),
                        progress=False)
    path = res.save(tmp_path / "m.tif", quicklook=tmp_path / "q.png")
    assert path.exists() and (tmp_path / "q.png").stat().st_size > 1000
    with pytest.raises(FileExistsError):
        res.save(tmp_path / "m.tif")
    with pytest.raises(FileExistsError):
        res.save_quicklook(tmp_path / "q.png")
    rep = res.evaluate(res.class_map)
    assert rep.oa == 1.0


def test_band_count_mismatch_is_clear() -> None:
    scene = _scene(b=12)
    stats = band_stats(_scene(b=10).cube)
    with pytest.raises(ValueError, match="12 bands"):
        predict_scene(_model(), scene, stats, progress=False)


def test_smoothing_windowed_equals_full_and_removes_isolated_errors() -> None:
    from hsizoo.predict.engine import smooth_probabilities, smoothing_radius

    scene = _scene(h=23, w=21)
    scene.valid[4:6, 7:10] = False
    model = _model()
    stats = band_stats(scene.cube, scene.valid)
    full = predict_scene(model, scene, stats, window_size=64, smooth_sigma=1.5, progress=False)
    win = predict_scene(model, scene, stats, window_size=5, smooth_sigma=1.5, progress=False)
    raw = predict_scene(model, scene, stats, window_size=64, progress=False)
    # windows read a margin of the smoothing radius, so tiling does not change the result
    np.testing.assert_allclose(full.probabilities, win.probabilities, atol=1e-5)
    np.testing.assert_array_equal(full.class_map, win.class_map)
    np.testing.assert_allclose(full.probabilities, smooth_probabilities(
        raw.probabilities, scene.valid, 1.5), atol=1e-5)
    assert (full.class_map[~scene.valid] == 0).all()
    np.testing.assert_allclose(full.probabilities[scene.valid].sum(1), 1.0, atol=1e-5)
    assert smoothing_radius(0) == 0 and smoothing_radius(1.5) == 6

    # one wrong pixel inside a uniform field is outvoted by its neighbours
    p = np.zeros((9, 9, 2), np.float32)
    p[..., 0] = 0.9
    p[..., 1] = 0.1
    p[4, 4] = (0.2, 0.8)
    valid = np.ones((9, 9), bool)
    assert smooth_probabilities(p, valid, 1.0)[4, 4].argmax() == 0
    assert smooth_probabilities(p, valid, 0.0) is p
