"""Quicklooks: composite bands chosen by wavelength, stretch over valid pixels, PNG written."""
from __future__ import annotations

import numpy as np
import pytest

from hsizoo.io import Scene, save_quicklook
from hsizoo.io.quicklook import composite_bands, stretch


def _scene(wl: np.ndarray, h: int = 20, w: int = 30) -> Scene:
    rng = np.random.default_rng(0)
    cube = rng.random((h, w, wl.size)).astype(np.float32)
    labels = rng.integers(0, 4, size=(h, w))
    return Scene(cube=cube, wavelengths=wl, labels=labels, class_names=["a", "b", "c"])


def test_true_colour_bands_by_wavelength():
    wl = np.arange(400.0, 2501.0, 10.0)
    idx, true_color = composite_bands(wl)
    assert true_color and wl[idx].tolist() == [640.0, 550.0, 470.0]


def test_false_colour_when_visible_not_covered():
    wl = np.linspace(700.0, 1000.0, 31)
    idx, true_color = composite_bands(wl)
    assert not true_color
    assert wl[idx[0]] > wl[idx[1]] > wl[idx[2]]  # red = longest wavelength
    assert len(set(idx)) == 3


def test_stretch_ignores_invalid_pixels():
    rgb = np.random.default_rng(0).random((10, 10, 3)).astype(np.float32)
    valid = np.ones((10, 10), dtype=bool)
    rgb[0, 0] = 1e6  # an outlier on an invalid pixel must not squash the stretch
    valid[0, 0] = False
    out = stretch(rgb, valid)
    assert out.min() == 0 and out.max() == 1 and np.all(out[0, 0] == 0)
    assert np.mean(out[valid] > 0.5) == pytest.approx(0.5, abs=0.1)


@pytest.mark.parametrize("wl", [np.linspace(420.0, 900.0, 12), np.linspace(1000.0, 2400.0, 12)])
def test_save_quicklook_png(tmp_path, wl):
    from matplotlib.image import imread

    scene = _scene(wl)
    one = save_quicklook(tmp_path / "rgb.png", Scene(cube=scene.cube, wavelengths=wl))
    two = save_quicklook(tmp_path / "map.png", scene, title="test")
    a, b = imread(one), imread(two)
    assert a.ndim == 3 and b.ndim == 3
    assert b.shape[1] > 1.5 * a.shape[1]  # composite plus class map and legend
    assert a[..., :3].std() > 0.05  # the composite is not blank
    with pytest.raises(ValueError, match="class_map shape"):
        save_quicklook(tmp_path / "bad.png", scene, class_map=np.zeros((3, 3), dtype=int))


def test_quicklook_title_says_false_colour(tmp_path, monkeypatch):
    from matplotlib.axes import Axes

    titles = []
    orig = Axes.set_title
    monkeypatch.setattr(Axes, "set_title", lambda self, t, *a, **k: (titles.append(t),
                                                                     orig(self, t, *a, **k))[1])
    save_quicklook(tmp_path / "x.png", _scene(np.linspace(1000.0, 2400.0, 12)))
    assert titles[0].startswith("False colour") and "visible" in titles[0]
    assert titles[1] == "Reference labels"
