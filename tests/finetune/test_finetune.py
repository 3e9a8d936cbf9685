"""hsizoo.finetune: few-shot fine-tuning end to end on a tiny synthetic scene, label modes, bad
input, saving/loading, and the CLI handlers."""
from __future__ import annotations

import argparse
import warnings

import numpy as np
import pytest
import torch

import hsizoo  # noqa: F401
from hsizoo.method.daft import DaftConfig
from hsizoo.cli.finetune import register_cli
from hsizoo.finetune import finetune, load_finetuned, prepare_labels
from hsizoo.io import Scene
from hsizoo.data.splits import few_shot_split
from scenes import WL, three_class_scene as _scene  # noqa: I001

FAST = dict(model="s2former_test", pretrained=False, steps=25, batch_size=16, head_steps=50,
            progress=False)


def _fast_daft(**kw) -> DaftConfig:
    return DaftConfig(timesteps=100, unlabelled_batch=16, **kw)


@pytest.mark.parametrize("daft", [False, True])
def test_finetune_beats_chance(daft: bool) -> None:
    scene = _scene()
    ft = finetune(scene, scene.labels, shots=5, seed=0, daft=_fast_daft(enabled=daft),
                  pseudo_rounds=1, **FAST)
    assert ft.train_labels is not None and (np.bincount(ft.train_labels.ravel())[1:] == 5).all()
    rep = ft.evaluate()
    assert rep.num_pixels == scene.labels.size - 15  # training shots are left out
    assert rep.oa > 0.8, rep
    res = ft.predict(progress=False)
    assert res.class_map.shape == scene.labels.shape and res.probabilities.shape[-1] == 3
    assert ft.history["steps_done"] == 25 and ft.history["seconds"]["total"] > 0


def test_sparse_labels_equal_drawn_shots() -> None:
    scene = _scene()
    split = few_shot_split(scene.labels, 4, seed=3)
    a = finetune(scene, scene.labels, shots=4, seed=3, daft=False, **FAST)
    b = finetune(scene, split.train, shots=None, seed=3, daft=False, **FAST)
    np.testing.assert_array_equal(a.train_labels, split.train)
    np.testing.assert_array_equal(b.train_labels, split.train)
    for pa, pb in zip(a.model.parameters(), b.model.parameters()):
        torch.testing.assert_close(pa, pb)
    # A sparse map with at most `shots` pixels per class is used whole, with a warning.
    with pytest.warns(UserWarning, match="all labelled pixels"):
        lab, _, _ = prepare_labels(split.train, scene, 10, 0)
    np.testing.assert_array_equal(lab, split.train)


def test_cube_with_wavelengths_and_file_labels(tmp_path) -> None:
    scene = _scene()
    np.save(tmp_path / "labels.npy", scene.labels)
    ft = finetune(scene.cube, str(tmp_path / "labels.npy"), shots=3, wavelengths=WL, daft=False,
                  **FAST)
    assert ft.class_names == ["class 1", "class 2", "class 3"]
    with pytest.raises(ValueError, match="wavelengths"):
        finetune(scene.cube, scene.labels, shots=3, **FAST)


def test_bad_inputs_are_clear() -> None:
    scene = _scene()
    with pytest.raises(ValueError, match="cover exactly the scene"):
        prepare_labels(np.ones((5, 5), int), scene, 5, 0)
    with pytest.raises(ValueError, match="positive integer"):
        prepare_labels(scene.labels, scene, 0, 0)
    with pytest.raises(ValueError, match="no labelled pixel"):
        prepare_labels(np.zeros_like(scene.labels), scene, 5, 0)
    with pytest.raises(ValueError, match="class names"):
        prepare_labels(scene.labels, scene, 5, 0, class_names=["a", "b"])
    # A class with fewer pixels than shots: warned, all its pixels used.
    lab = scene.labels.copy()
    lab[lab == 3] = 0
    lab[0, -1] = lab[1, -1] = 3
    with pytest.warns(UserWarning, match="class 3"):
        train, K, _ = prepare_labels(lab, scene, 5, 0)
    assert (train == 3).sum() == 2 and K == 3
    # A class with no pixel at all: warned by name.
    lab = scene.labels.copy()
    lab[lab == 2] = 0
    with pytest.warns(UserWarning, match="falling"):
        prepare_labels(lab, scene, 5, 0)


def test_sensor_without_coverage() -> None:
    scene = _scene()
    far = Scene(cube=scene.cube, wavelengths=np.linspace(3000, 4000, 12), labels=scene.labels)
    with pytest.raises(ValueError, match="cover no point"):
        finetune(far, far.labels, shots=3, daft=False, **FAST)
    # A checkpoint trained on visible bands only cannot cover a SWIR-only scene.
    swir = Scene(cube=scene.cube, wavelengths=np.linspace(1500, 2400, 12), labels=scene.labels)
    kw = {**FAST, "model_kwargs": {"wavelengths": np.linspace(400, 900, 12).tolist()}}
    with pytest.raises(ValueError, match="cannot cover"):
        finetune(swir, swir.labels, shots=3, daft=False, **kw)


def test_missing_weights_policy() -> None:
    scene = _scene()
    with pytest.raises(ValueError, match="no pretrained weights"):
        finetune(scene, scene.labels, shots=3, **{**FAST, "pretrained": True})
    with pytest.warns(UserWarning, match="random initialisation"):
        finetune(scene, scene.labels, shots=3, daft=False, **{**FAST, "pretrained": None})


def test_save_and_load_roundtrip(tmp_path) -> None:
    scene = _scene()
    ft = finetune(scene, scene.labels, shots=3, daft=False, **FAST)
    ft.save_pretrained(tmp_path / "model")
    back = load_finetuned(tmp_path / "model")
    assert back.class_names == ft.class_names
    a = ft.predict(progress=False)
    b = back.predict(scene, progress=False)
    np.testing.assert_array_equal(a.class_map, b.class_map)
    np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-5)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hsizoo")
    register_cli(parser.add_subparsers(dest="command"))
    return parser


def _write_scene_tif(path, scene: Scene) -> None:
    import rasterio
    from affine import Affine

    with rasterio.open(path, "w", driver="GTiff", height=scene.height, width=scene.width,
                       count=scene.num_bands, dtype="float32", crs="EPSG:32616",
                       transform=Affine(30, 0, 600000, 0, -30, 4000000)) as ds:
        ds.write(np.moveaxis(scene.cube, -1, 0))
        for i, wl in enumerate(scene.wavelengths, 1):
            ds.update_tags(i, wavelength=f"{wl:.3f}", wavelength_units="nm")


def test_cli_finetune_and_predict(tmp_path, capsys) -> None:
    import rasterio

    scene = _scene()
    _write_scene_tif(tmp_path / "scene.tif", scene)
    np.save(tmp_path / "labels.npy", scene.labels)
    out, model_dir = tmp_path / "map.tif", tmp_path / "ft"
    argv = ["finetune", str(tmp_path / "scene.tif"), str(tmp_path / "labels.npy"), "--shots", "4",
            "--out", str(out), "--model", "s2former_test", "--no-pretrained", "--steps", "10",
            "--quiet", "--save-model", str(model_dir), "--quicklook", str(tmp_path / "q.png"),
            "--eval-labels", str(tmp_path / "labels.npy")]
    args = _parser().parse_args(argv)
    assert args.func(args) == 0
    assert "OA" in capsys.readouterr().out
    with rasterio.open(out) as ds:
        assert ds.crs.to_epsg() == 32616 and ds.read(1).shape == scene.labels.shape
        first = ds.read(1)
    args = _parser().parse_args(argv)
    with pytest.raises(FileExistsError, match="--overwrite"):
        args.func(args)
    pred = ["predict", str(model_dir), str(tmp_path / "scene.tif"), "--out",
            str(tmp_path / "map2.tif"), "--window", "8", "--quiet"]
    args = _parser().parse_args(pred)
    assert args.func(args) == 0
    with rasterio.open(tmp_path / "map2.tif") as ds:
        np.testing.assert_array_equal(ds.read(1), first)
    with pytest.raises(FileExistsError):
        args.func(args)
    args = _parser().parse_args(pred + ["--overwrite"])
    assert args.func(args) == 0


def test_labels_from_a_file_are_kept_for_evaluate(tmp_path) -> None:
    """finetune(scene, "labels.tif") keeps the map: evaluate() and evaluate(path) both work."""
    import rasterio

    scene = _scene()
    bare = Scene(cube=scene.cube, wavelengths=scene.wavelengths)
    with rasterio.open(tmp_path / "labels.tif", "w", driver="GTiff", height=scene.height,
                       width=scene.width, count=1, dtype="uint8") as ds:
        ds.write(scene.labels.astype(np.uint8), 1)
    ft = finetune(bare, str(tmp_path / "labels.tif"), shots=5, daft=False, **FAST)
    a = ft.evaluate()
    b = ft.evaluate(str(tmp_path / "labels.tif"))
    assert a.num_pixels == b.num_pixels == scene.labels.size - 15
    assert a.oa == b.oa


def test_evaluate_ignores_labelled_nodata_pixels() -> None:
    scene = _scene()
    valid = np.ones(scene.labels.shape, bool)
    valid[:4] = False
    sc = Scene(cube=scene.cube, wavelengths=scene.wavelengths, labels=scene.labels, valid=valid,
               class_names=scene.class_names)
    with pytest.warns(UserWarning, match="nodata"):
        ft = finetune(sc, sc.labels, shots=5, daft=False, **FAST)
    rep = ft.evaluate()
    assert rep.num_pixels == int(valid.sum()) - 15
    assert "valid pixels" in repr(sc) and len(repr(sc)) < 200


@pytest.mark.parametrize("bad", ["0", "-1", "five"])
def test_cli_refuses_non_positive_shots(bad, capsys) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["finetune", "s.tif", "l.tif", "--out", "m.tif", "--shots", bad])
    assert "--all-labels" in capsys.readouterr().err


def test_transductive_parts_switch() -> None:
    """The graph gives pseudo-labels before training and a refiner for the training scene."""
    from hsizoo.finetune import TransductionConfig

    scene = _scene()
    ft = finetune(scene, scene.labels, shots=3, daft=_fast_daft(), pseudo_rounds=1, **FAST)
    assert ft.history["transduction"]["neighbours"] == 10
    # Whole-scene pseudo-labels from the first propagation, then one refresh.
    assert len(ft.history["pseudo_counts"]) == 2
    assert ft.history["pseudo_counts"][0] == scene.labels.size - 9
    assert ft.refiner is not None
    refined = ft.predict(progress=False)
    assert refined.meta.get("graph_refinement_alpha") == 0.99
    off = finetune(scene, scene.labels, shots=3, daft=_fast_daft(),
                   transduction=TransductionConfig(refine_alpha=0.0), **FAST)
    assert off.refiner is None
    plain = finetune(scene, scene.labels, shots=3, daft=False, **FAST)
    assert plain.refiner is None and "pseudo_counts" not in plain.history
    assert plain.history["transduction"] is None


def test_predict_compares_the_scenes_wavelengths_with_the_models(tmp_path) -> None:
    scene = _scene()
    ft = finetune(scene, scene.labels, shots=3, daft=False, **FAST)
    same = Scene(cube=scene.cube, wavelengths=scene.wavelengths)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same bands: nothing to say
        ft.predict(same, progress=False)
    shifted = Scene(cube=scene.cube, wavelengths=scene.wavelengths + 40.0)
    with pytest.warns(UserWarning, match="differ from the 12 bands"):
        ft.predict(shifted, progress=False)
    # Another range altogether: refused before any work, also on the streamed CLI path.
    far = Scene(cube=scene.cube, wavelengths=np.linspace(2400.0, 2490.0, 12))
    with pytest.raises(ValueError, match="do not overlap"):
        ft.predict(far, progress=False)
    _write_scene_tif(tmp_path / "far.tif", far)
    with pytest.raises(ValueError, match="do not overlap"):
        ft.predict(str(tmp_path / "far.tif"), out_path=tmp_path / "m.tif", progress=False)
    assert not (tmp_path / "m.tif").exists()
    # Another band count: refused with the reason, and no warning that resampling would do.
    fewer = Scene(cube=scene.cube[..., :8], wavelengths=scene.wavelengths[:8])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="has 8 bands but this model was fine-tuned on 12"):
            ft.predict(fewer, progress=False)


@pytest.mark.parametrize("wl", [np.linspace(-600.0, 1490.0, 12), np.linspace(4e5, 9e5, 12)])
def test_non_physical_wavelengths_are_refused(wl) -> None:
    scene = _scene()
    with pytest.raises(ValueError, match="not physical"):
        finetune(scene.cube, scene.labels, wavelengths=wl, shots=3, daft=False, **FAST)


def test_device_is_explicit_and_refused_when_absent(monkeypatch) -> None:
    import torch

    scene = _scene()
    ft = finetune(scene, scene.labels, shots=3, daft=_fast_daft(), device="cpu", **FAST)
    assert ft.history["device"] == "cpu"
    assert next(ft.model.parameters()).device.type == "cpu"
    assert ft.predict(progress=False, device="cpu").class_map.shape == scene.labels.shape
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA"):
        finetune(scene, scene.labels, shots=3, daft=False, device="cuda", **FAST)
    ft = finetune(scene, scene.labels, shots=3, daft=False, **FAST)  # default: the CPU here
    assert ft.history["device"] == "cpu"


def test_label_raster_on_another_grid_is_refused(tmp_path) -> None:
    import rasterio
    from affine import Affine

    from hsizoo.io import read_scene

    scene = _scene()
    _write_scene_tif(tmp_path / "scene.tif", scene)
    sc = read_scene(tmp_path / "scene.tif")
    for name, tr in (("same.tif", Affine(30, 0, 600000, 0, -30, 4000000)),
                     ("shifted.tif", Affine(30, 0, 601000, 0, -30, 4000000))):
        with rasterio.open(tmp_path / name, "w", driver="GTiff", height=scene.height,
                           width=scene.width, count=1, dtype="uint8", crs="EPSG:32616",
                           transform=tr) as ds:
            ds.write(scene.labels.astype(np.uint8), 1)
    lab, _, _ = prepare_labels(str(tmp_path / "same.tif"), sc, 3, 0)
    assert (lab > 0).sum() == 9
    with pytest.raises(ValueError, match="another grid"):
        prepare_labels(str(tmp_path / "shifted.tif"), sc, 3, 0)


def test_class_ids_beyond_uint16_are_refused_before_training() -> None:
    scene = _scene()
    lab = scene.labels.copy()
    lab[lab == 3] = 1_000_000
    with pytest.raises(ValueError, match="at most 65535"):
        prepare_labels(lab, Scene(cube=scene.cube, wavelengths=scene.wavelengths), 3, 0)


def test_pseudo_batch_size_sets_the_pseudo_labelled_patches_per_step(monkeypatch) -> None:
    """``pseudo_batch_size`` draws that many pseudo-labelled patches a step (default: as many as
    the shots' ``batch_size``), and is refused when not a positive integer."""
    import hsizoo.finetune.student as student
    from hsizoo.finetune import FinetuneRecipe

    seen: list[tuple[int, int]] = []
    real = student.daft_losses

    def spy(net, teacher, xb, yb, xu, wl, cfg, alpha_bar, xp=None, yp=None, *a, **k):
        seen.append((xb.shape[0], -1 if xp is None else xp.shape[0]))
        return real(net, teacher, xb, yb, xu, wl, cfg, alpha_bar, xp, yp, *a, **k)

    monkeypatch.setattr(student, "daft_losses", spy)
    scene = _scene()
    fast = {**FAST, "steps": 3, "head_steps": 1}
    ft = finetune(scene, scene.labels, shots=3, daft=_fast_daft(), pseudo_batch_size=40, **fast)
    assert set(seen) == {(16, 40)} and ft.history["pseudo_batch_size"] == 40
    seen.clear()
    finetune(scene, scene.labels, shots=3, daft=_fast_daft(), **fast)
    assert set(seen) == {(16, 16)}
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="pseudo_batch_size"):
            FinetuneRecipe(pseudo_batch_size=bad)
