"""Tests of simulated scenes (hsizoo.data.simulate, .spectral_library, .layouts, .materials)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hsizoo.io.scene import Scene
from hsizoo.spectral.sensors import get_sensor, list_sensors
from hsizoo.data.layouts import LAYOUTS, load_layout, make_layout
from hsizoo.data.simulate import resample_spectra, simulate_scene
from hsizoo.data.spectral_library import load_spectral_library, read_envi_library

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "hsi"


def _nearest_mean_accuracy(cube: np.ndarray, labels: np.ndarray) -> float:
    mask = labels > 0
    x, y = cube[mask], labels[mask]
    ids = np.unique(y)
    means = np.stack([x[y == c].mean(0) for c in ids])
    d = ((x[:, None, :] - means[None]) ** 2).sum(-1)
    return float((ids[d.argmin(1)] == y).mean())


# --- library and resampling -----------------------------------------------------------------


def test_public_names_stay_in_simulate() -> None:
    # The library and layout names moved to their own modules stay importable from simulate.
    import hsizoo.data.layouts as layouts
    import hsizoo.data.simulate as simulate
    import hsizoo.data.spectral_library as spectral_library

    for name in simulate.__all__:
        assert hasattr(simulate, name), name
    for module in (layouts, spectral_library):
        for name in module.__all__:
            assert getattr(simulate, name) is getattr(module, name), name


def test_library_loads_and_is_cached() -> None:
    lib = load_spectral_library()
    assert lib is load_spectral_library()
    assert lib.spectra.shape == (7261, 180) and lib.spectra.dtype == np.float32
    assert lib.wavelengths[0] == 400 and lib.wavelengths[-1] == 2450
    assert np.all(np.diff(lib.wavelengths) > 0)
    # Water-vapour bands removed: gaps after 1350 and 1790 nm.
    assert np.diff(lib.wavelengths).max() == pytest.approx(170)
    assert 0 <= lib.spectra.min() and lib.spectra.max() < 1.1
    assert len(lib.where(LEVEL_3="canopy")) == 2000
    assert len(lib.where(LEVEL_2="built")) > 500
    assert lib.names[0] == lib.metadata["NAME"][0]
    # A PROSAIL canopy has a red edge: NIR far above red.
    veg = lib.spectra[lib.where(LEVEL_3="canopy")].mean(0)
    red, nir = veg[lib.wavelengths == 670][0], veg[lib.wavelengths == 850][0]
    assert nir > 3 * red


def test_read_envi_library_big_endian_float64(tmp_path: Path) -> None:
    spectra = np.array([[0.1, 0.2, 0.3], [0.5, 0.4, 0.3]])
    sli = tmp_path / "lib.sli"
    spectra.astype(">f8").tofile(sli)
    (tmp_path / "lib.sli.hdr").write_text(
        "ENVI\nsamples = 3\nlines = 2\nbands = 1\nheader offset = 0\n"
        "file type = ENVI Spectral Library\ndata type = 5\ninterleave = bsq\nbyte order = 1\n"
        "wavelength units = Micrometers\nwavelength = { 0.5 , 0.6 ,\n 0.7 }\n"
        "spectra names = { a , b }\n")
    (tmp_path / "lib.csv").write_text("NAME,LEVEL_3\na,soil\nb,canopy\n")
    lib = read_envi_library(sli, tmp_path / "lib.csv")
    np.testing.assert_allclose(lib.spectra, spectra, rtol=1e-6)
    np.testing.assert_allclose(lib.wavelengths, [500, 600, 700])
    assert lib.names == ("a", "b") and lib.where(LEVEL_3="canopy").tolist() == [1]


def test_resampling_gaussian_response() -> None:
    lib_wl = np.arange(400.0, 2451.0, 10.0)
    lib_wl = lib_wl[(lib_wl < 1360) | (lib_wl > 1450)]  # a gap, like the water band
    linear = (lib_wl / 1000.0)[None, :]
    const = np.full_like(linear, 0.3)
    bands = np.array([380.0, 550.0, 1400.0, 2000.0, 2490.0])
    fwhm = np.full(5, 10.0)
    np.testing.assert_allclose(resample_spectra(const, lib_wl, bands, fwhm), 0.3, rtol=1e-5)
    out = resample_spectra(linear, lib_wl, bands, fwhm)[0]
    # Inside the range (and across the gap, linearly interpolated) a linear spectrum is kept.
    np.testing.assert_allclose(out[1:4], bands[1:4] / 1000.0, atol=2e-3)
    # Beyond the range: flat extrapolation from the nearest library sample.
    assert out[0] == pytest.approx(0.4, abs=2e-3) and out[4] == pytest.approx(2.45, abs=2e-3)


# --- layouts --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["voronoi", "fields"])
def test_make_layout(kind: str) -> None:
    lab = make_layout((60, 80), num_classes=7, seed=3, kind=kind)
    assert lab.shape == (60, 80) and np.issubdtype(lab.dtype, np.integer)
    assert set(np.unique(lab)) == set(range(8))  # all classes and some background
    np.testing.assert_array_equal(lab, make_layout((60, 80), 7, 3, kind))
    assert not np.array_equal(lab, make_layout((60, 80), 7, 4, kind))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"shape": (10,)}, "shape"),
        ({"shape": (0, 5)}, "shape"),
        ({"num_classes": 0}, "num_classes"),
        ({"kind": "hexagons"}, "kind"),
        ({"shape": (4, 4), "num_classes": 12}, "too small"),
        ({"shape": (4, 4), "num_classes": 12, "kind": "fields"}, "too small"),
    ],
)
def test_make_layout_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_layout(**kwargs)


def test_load_layout_from_env_dir_and_missing(tmp_path: Path, monkeypatch) -> None:
    gt = np.zeros((5, 6), dtype=np.uint8)
    gt[1:3, 1:4] = 2
    np.savez(tmp_path / "salinas_gt.npz", gt=gt)
    monkeypatch.setenv("HSIZOO_DATA_DIR", str(tmp_path))
    np.testing.assert_array_equal(load_layout("Salinas"), gt)
    with pytest.raises(FileNotFoundError, match="ksc_gt.npz.*HSIZOO_DATA_DIR"):
        load_layout("ksc")
    with pytest.raises(ValueError, match="indian_pines"):
        load_layout("atlantis")


@pytest.mark.integration
@pytest.mark.parametrize("name,shape,classes", [
    ("indian_pines", (145, 145), 16), ("pavia_university", (610, 340), 9),
    ("salinas", (512, 217), 16), ("ksc", (512, 614), 13)])
def test_load_real_layouts(name: str, shape: tuple[int, int], classes: int) -> None:
    if not (DATA / LAYOUTS[name][0]).exists():
        pytest.skip(f"real label map absent: {DATA / LAYOUTS[name][0]}")
    gt = load_layout(name)
    assert gt.shape == shape and gt.max() == classes and gt.min() == 0
    assert len(LAYOUTS[name][2]) == classes


@pytest.mark.integration
def test_simulate_on_indian_pines_layout() -> None:
    if not (DATA / "Indian_pines_gt.mat").exists():
        pytest.skip(f"real label map absent: {DATA / 'Indian_pines_gt.mat'}")
    s = simulate_scene("indian_pines", seed=0)
    assert s.shape == (145, 145, 200)
    assert s.class_names[0] == "Alfalfa" and s.meta["recipes"]["Woods"] == "trees"
    assert np.count_nonzero(s.labels) == 10249
    acc = _nearest_mean_accuracy(s.cube, s.labels)
    assert 0.3 < acc < 0.99


# --- simulated scenes -----------------------------------------------------------------------


@pytest.mark.parametrize("sensor", ["aviris_indian_pines", "rosis", "sentinel2_msi", "emit"])
def test_scene_matches_preset(sensor: str) -> None:
    lab = make_layout((24, 30), num_classes=4, seed=1)
    assert np.any(lab == 0)
    s = simulate_scene(lab, sensor=sensor, seed=2)
    p = get_sensor(sensor)
    assert isinstance(s, Scene)
    assert s.cube.shape == (24, 30, p.num_bands) and s.cube.dtype == np.float32
    np.testing.assert_array_equal(s.wavelengths, p.wavelengths)
    np.testing.assert_array_equal(s.fwhm, p.fwhm)
    assert s.valid.all() and np.isfinite(s.cube).all()
    np.testing.assert_array_equal(s.labels, lab)
    assert s.class_names == ["class_1", "class_2", "class_3", "class_4"]
    assert s.sensor == sensor and s.meta["seed"] == 2
    assert set(s.meta["library_ids"]) == {"background", *s.class_names}
    names = set(load_spectral_library().names)
    assert all(i in names or i.startswith("synthetic:")
               for ids in s.meta["library_ids"].values() for i in ids)
    # Background pixels get a spectrum of their own, not zeros.
    assert s.cube[lab == 0].mean() > 0.02


def test_extrapolated_and_gap_bands_are_counted_and_flat() -> None:
    s = simulate_scene((12, 12), sensor="emit", seed=0, noise_snr=None, num_classes=2)
    assert s.meta["bands_extrapolated_beyond_library"] > 0
    assert s.meta["bands_interpolated_across_library_gaps"] > 0
    # EMIT's first bands (381, 388 nm) lie below the library's 400 nm: nearly equal values.
    first, second = s.cube[..., 0], s.cube[..., 1]
    assert np.abs(first - second).max() < 0.01 * first.mean()


def test_deterministic_per_seed() -> None:
    a = simulate_scene((30, 30), seed=5, num_classes=3)
    b = simulate_scene((30, 30), seed=5, num_classes=3)
    np.testing.assert_array_equal(a.cube, b.cube)
    assert a.meta["library_ids"] == b.meta["library_ids"]
    c = simulate_scene((30, 30), seed=6, num_classes=3)
    assert not np.allclose(a.cube, c.cube)


def test_classes_separable_but_not_trivially() -> None:
    lab = make_layout((64, 64), num_classes=8, seed=0)
    s = simulate_scene(lab, sensor="aviris_indian_pines", seed=0, noise_snr=50)
    cube, labels = s.cube, s.labels
    ids = [c for c in range(1, 9) if np.any(labels == c)]
    means = np.stack([cube[labels == c].mean(0) for c in ids])
    within = np.stack([cube[labels == c].std(0) for c in ids]).mean(0)
    # Class means differ by more than the within-class spread in at least some bands.
    ratio = means.std(0) / within
    assert np.count_nonzero(ratio > 1.0) >= 10
    acc = _nearest_mean_accuracy(cube, labels)
    assert acc > 3.0 / len(ids), acc  # far above chance (1/8)
    assert acc < 0.995, acc  # noise, variability and mixing make it imperfect


def test_boundaries_are_mixed() -> None:
    lab = np.ones((20, 40), dtype=np.int64)
    lab[:, 20:] = 2
    kw = dict(seed=1, noise_snr=None, illumination=0.0, variability=0.05)
    s = simulate_scene(lab, mixing_width=1.5, **kw)
    pure = simulate_scene(lab, mixing_width=0.0, **kw)

    def boundary_vs_interior(cube: np.ndarray) -> tuple[float, float]:
        m1, m2 = cube[:, 2:12].reshape(-1, cube.shape[2]).mean(0), \
            cube[:, 28:38].reshape(-1, cube.shape[2]).mean(0)
        mid = (m1 + m2) / 2
        d = np.linalg.norm(cube - mid, axis=2)
        return float(d[:, 19:21].mean()), float(d[:, np.r_[2:12, 28:38]].mean())

    b, i = boundary_vs_interior(s.cube)
    assert b < 0.6 * i
    b0, i0 = boundary_vs_interior(pure.cube)
    assert b0 > 0.8 * i0  # without mixing, boundary pixels are as pure as the interior


def test_illumination_varies_smoothly() -> None:
    lab = np.ones((64, 64), dtype=np.int64)
    kw = dict(seed=3, noise_snr=None, variability=0.0, mixing_width=0.0)
    flat = simulate_scene(lab, illumination=0.0, **kw).cube.mean(2)
    lit = simulate_scene(lab, illumination=0.3, **kw).cube.mean(2)

    def block_std(img: np.ndarray) -> float:  # spread of 8 x 8 block means: low-frequency part
        return float(img.reshape(8, 8, 8, 8).mean(axis=(1, 3)).std() / img.mean())

    assert block_std(lit) > 0.1
    assert block_std(lit) > 4 * block_std(flat)


def test_noise_level_follows_snr() -> None:
    lab = make_layout((40, 40), num_classes=3, seed=0)
    clean = simulate_scene(lab, seed=0, noise_snr=None).cube
    noisy = simulate_scene(lab, seed=0, noise_snr=25.0).cube
    resid = (noisy - clean).reshape(-1, clean.shape[2])
    expected = clean.reshape(-1, clean.shape[2]).mean(0) / 25.0
    np.testing.assert_allclose(resid.std(0), expected, rtol=0.15)


def test_class_names_steer_materials() -> None:
    lab = make_layout((32, 32), num_classes=3, seed=0)
    s = simulate_scene(lab, seed=0, class_names=["Asphalt", "Meadows", "Water"], noise_snr=None)
    assert s.meta["recipes"]["Asphalt"] == "dark_urban"
    assert s.meta["library_ids"]["Water"][0] == "synthetic:water"
    wl = s.wavelengths
    red, nir = np.argmin(np.abs(wl - 670)), np.argmin(np.abs(wl - 850))
    meadow = s.cube[lab == 2].mean(0)
    water = s.cube[lab == 3].mean(0)
    assert meadow[nir] > 2 * meadow[red]  # vegetation red edge
    assert water[nir] < 0.05  # water is dark in the NIR


def test_errors() -> None:
    lab = make_layout((16, 16), num_classes=2, seed=0)
    with pytest.raises(ValueError) as err:
        simulate_scene(lab, sensor="hyperspectral9000")
    assert all(n in str(err.value) for n in list_sensors())
    for bad, match in [
        (np.zeros((4, 4, 2), dtype=int), "shape"),
        (np.ones((4, 4), dtype=np.float32), "integer"),
        (-np.ones((4, 4), dtype=int), ">= 0"),
        (np.zeros((4, 4), dtype=int), "no labelled"),
        ("atlantis", "known layouts"),
        ((4,), "shape"),
    ]:
        with pytest.raises(ValueError, match=match):
            simulate_scene(bad)
    with pytest.raises(ValueError, match="class names"):
        simulate_scene(lab, class_names=["one"])
    with pytest.raises(ValueError, match="noise_snr"):
        simulate_scene(lab, noise_snr=0)
    with pytest.raises(ValueError, match="mixing_width"):
        simulate_scene(lab, mixing_width=-1)


# --- field effects (several fields of one crop that differ, as on Indian Pines) ---------------


def test_field_variability_makes_fields_of_one_class_differ() -> None:
    """With ``field_variability`` every connected field of a class gets its own spectra: the
    spread of field means within a class grows, the scene without it is bit-identical to the
    scene made before the option existed, and the options are recorded."""
    from scipy.ndimage import label

    lab = make_layout((96, 96), num_classes=4, seed=2, kind="fields", fields_per_class=4)
    counts = [label(lab == c)[1] for c in range(1, 5)]
    assert min(counts) >= 2 and sum(counts) >= 12, counts

    def field_spread(scene) -> float:
        out = []
        for c in range(1, 5):
            f, n = label(lab == c)
            means = np.stack([scene.cube[f == i].mean(0) for i in range(1, n + 1)])
            out.append(float(np.linalg.norm(means - means.mean(0), axis=1).mean()))
        return float(np.mean(out))

    plain = simulate_scene(lab, sensor="aviris_indian_pines", seed=4)
    fields = simulate_scene(lab, sensor="aviris_indian_pines", seed=4, field_variability=1.0)
    assert field_spread(fields) > 1.5 * field_spread(plain)
    assert fields.meta["params"]["field_variability"] == 1.0
    assert "field_variability" not in plain.meta["params"]
    again = simulate_scene(lab, sensor="aviris_indian_pines", seed=4, field_variability=0.0)
    np.testing.assert_array_equal(plain.cube, again.cube)
    gen = simulate_scene((96, 96), seed=2, num_classes=4, layout_kind="fields",
                         fields_per_class=4)
    np.testing.assert_array_equal(gen.labels, lab)
    assert gen.meta["params"]["layout_kind"] == "fields"
    with pytest.raises(ValueError, match="field_variability"):
        simulate_scene(lab, field_variability=-1.0)
    with pytest.raises(ValueError, match="layout_kind"):
        simulate_scene((32, 32), layout_kind="hexagons")
    with pytest.raises(ValueError, match="fields_per_class"):
        make_layout((96, 96), kind="fields", fields_per_class=0)


def test_scene_spec_options_reach_the_simulation() -> None:
    import importlib

    pt = importlib.import_module("hsizoo.pretrain")
    s = pt.load_scene_spec("simulated:aviris_indian_pines:64x64x4:1:kind=fields/per_class=2/"
                           "names=crop/fields=0.5/noise_snr=80")
    assert s.class_names == ["crop 1", "crop 2", "crop 3", "crop 4"]
    assert set(s.meta["recipes"].values()) == {"crop", "background"}
    assert s.meta["params"]["field_variability"] == 0.5 and s.meta["params"]["noise_snr"] == 80
    assert s.meta["params"]["layout_kind"] == "fields"
    plain = pt.load_scene_spec("simulated:aviris_indian_pines:64x64x4:1")
    np.testing.assert_array_equal(plain.cube, simulate_scene(
        (64, 64), sensor="aviris_indian_pines", seed=1, num_classes=4).cube)
    for bad, match in (("simulated:enmap:32x32:1:colour=red", "Bad option"),
                       ("simulated:enmap:32x32:1:fields=lots", "takes a float"),
                       ("simulated:enmap:salinas:1:names=crop", "generated layout")):
        with pytest.raises(ValueError, match=match):
            pt.load_scene_spec(bad)


def test_material_pool_makes_classes_share_materials() -> None:
    """With a material pool, classes of one recipe reuse a few library spectra (crops on the
    same soils) and differ by proportions: fewer distinct library ids, and the classes are
    harder to tell apart by their mean spectra."""
    lab = make_layout((96, 96), num_classes=8, seed=5, kind="fields", fields_per_class=2)
    names = [f"crop {i}" for i in range(1, 9)]
    own = simulate_scene(lab, sensor="aviris_indian_pines", seed=5, class_names=names)
    shared = simulate_scene(lab, sensor="aviris_indian_pines", seed=5, class_names=names,
                            material_pool={"vegetation": 2, "soil": 1, "npv": 1})

    def distinct(scene) -> int:
        return len({i for c, ids in scene.meta["library_ids"].items() if c != "background"
                    for i in ids})

    assert distinct(shared) < distinct(own)
    assert distinct(shared) <= 4
    assert _nearest_mean_accuracy(shared.cube, lab) < _nearest_mean_accuracy(own.cube, lab)
    assert shared.meta["params"]["material_pool"] == {"vegetation": 2, "soil": 1, "npv": 1}
    assert simulate_scene(lab, seed=5, material_pool=2).meta["params"]["material_pool"][
        "soil"] == 2
    for bad in (0, {"rock": 1}, {"soil": 0}, "3"):
        with pytest.raises(ValueError, match="material_pool"):
            simulate_scene(lab, seed=5, material_pool=bad)
    import importlib

    pt = importlib.import_module("hsizoo.pretrain")
    s = pt.load_scene_spec("simulated:aviris_indian_pines:96x96x8:5:kind=fields/per_class=2/"
                           "names=crop/pool=vegetation2+soil1+npv1")
    np.testing.assert_array_equal(s.cube, shared.cube)
    with pytest.raises(ValueError, match="vegetation3"):
        pt.load_scene_spec("simulated:enmap:32x32:1:pool=lots")


# --- unequal class areas ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["voronoi", "fields"])
def test_class_skew_makes_class_areas_unequal_and_zero_changes_nothing(kind: str) -> None:
    kw = dict(num_classes=8, seed=3, kind=kind, **({"fields_per_class": 3}
                                                    if kind == "fields" else {}))
    plain = make_layout((145, 145), **kw)
    np.testing.assert_array_equal(make_layout((145, 145), class_skew=0.0, **kw), plain)

    def largest_share(lab: np.ndarray) -> float:
        areas = np.bincount(lab.ravel(), minlength=9)[1:]
        return float(areas.max() / areas.sum())

    skewed = make_layout((145, 145), class_skew=2.0, **kw)
    assert set(np.unique(skewed)) - {0} == set(range(1, 9))  # every class still occurs
    assert largest_share(skewed) > 1.5 * largest_share(plain)
    with pytest.raises(ValueError, match="class_skew"):
        make_layout((32, 32), class_skew=-1.0)


def test_class_skew_reaches_the_scene_from_its_spec() -> None:
    from hsizoo import pretrain as pt

    s = pt.load_scene_spec("simulated:aviris_indian_pines:96x96x6:2:kind=fields/per_class=2/skew=1.5")
    assert s.meta["params"]["class_skew"] == 1.5
    np.testing.assert_array_equal(
        s.labels, make_layout((96, 96), num_classes=6, seed=2, kind="fields", fields_per_class=2,
                              class_skew=1.5))
    with pytest.raises(ValueError, match="generated layout"):
        simulate_scene(make_layout((32, 32), num_classes=3), class_skew=1.0)
