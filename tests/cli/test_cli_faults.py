"""Faults of the command line found by an audit, each refused or handled with a clear message.

1. the outputs of one command are committed together or not at all (hsizoo.io.commit);
2. a checkpoint tampered with in place (same size and mtime) is refused on every load;
3. no output may name an input (the scene, labels, wavelengths file, model folder);
4. invalid settings are refused while the arguments are parsed, before any work;
5. a scene smaller than the model's patch is refused, not mapped to one class;
6. a long --wavelengths list, bad wavelengths and Ctrl-C give one clear line, no traceback;
7. ``hsizoo download`` refuses names that are no checkpoint name, saying how to find names.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest_io import make_cube, make_wavelengths, write_geotiff

from hsizoo.cli import main
from hsizoo.io.atomic import OutputError

BASE = ["--model", "s2former_test", "--no-pretrained", "--steps", "1", "--quiet"]


def _no_space(*_a, **_k):
    raise OSError(errno.ENOSPC, "No space left on device")


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*"))


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def _inputs(folder: Path, h: int = 12, w: int = 10) -> tuple[str, str]:
    """A 6-band GeoTIFF scene with wavelengths and a two-class label map (.npy)."""
    folder.mkdir(parents=True, exist_ok=True)
    cube = make_cube(h, w, 6).astype(np.float32)
    scene = write_geotiff(folder / "scene.tif", cube,
                          descriptions=[f"{v} nm" for v in make_wavelengths(6)])
    labels = np.zeros((h, w), dtype=np.int64)
    labels[: h // 2], labels[h // 2:] = 1, 2
    np.save(folder / "labels.npy", labels)
    return str(scene), str(folder / "labels.npy")


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[str, str]:
    return _inputs(tmp_path / "in")


def _stop_before_training(monkeypatch, seen: dict | None = None) -> None:
    """hsizoo.finetune.finetune replaced by a stub that records its arguments and stops."""
    import hsizoo.finetune  # noqa: F401 (the package whose finetune is replaced)

    def stub(*a, **k):
        if seen is None:
            raise AssertionError("fine-tuning started although the arguments were invalid")
        seen.update(k, args=a)
        raise _Reached

    monkeypatch.setattr(sys.modules["hsizoo.finetune"], "finetune", stub)


class _Reached(Exception):
    """Raised by the stub: validation passed and fine-tuning was called."""


def _error_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ": error: " in ln]
    assert len(lines) == 1, err
    return lines[0]


# ------------------------------------------------------------ 1. outputs committed together


def _first_outputs(tmp_path: Path) -> tuple[Path, Path, dict]:
    """A map and its confidence from an earlier run (bytes no new run can write)."""
    out, conf = tmp_path / "out" / "map.tif", tmp_path / "out" / "conf.tif"
    out.parent.mkdir()
    out.write_bytes(b"the map of an earlier run")
    conf.write_bytes(b"the confidence of that run")
    return out, conf, {p: p.read_bytes() for p in (out, conf)}


def test_a_failed_confidence_write_keeps_the_old_map_and_confidence(tmp_path, inputs,
                                                                    monkeypatch, capsys) -> None:
    import hsizoo.io

    out, conf, before = _first_outputs(tmp_path)
    monkeypatch.setattr(hsizoo.io, "write_confidence_map", _no_space)  # the disk fills up
    assert main(["finetune", *inputs, "--out", str(out), "--confidence", str(conf), "--seed", "2",
                 "--overwrite", *BASE]) == 2
    line = _error_line(capsys.readouterr().err)
    assert "No space left on device" in line and "none of them was written" in line
    assert {p: p.read_bytes() for p in (out, conf)} == before  # the pair still matches
    assert _hidden(tmp_path / "out") == []


def test_a_failed_quicklook_or_model_keeps_every_output(tmp_path, inputs, monkeypatch,
                                                         capsys) -> None:
    """The map, confidence, quicklook and saved model of one run: all replaced, or none."""
    from matplotlib.figure import Figure

    import hsizoo.hub.card as card

    out, conf = tmp_path / "out" / "map.tif", tmp_path / "out" / "conf.tif"
    png, model = tmp_path / "out" / "q.png", tmp_path / "out" / "model"
    out.parent.mkdir()
    outputs = ["--out", str(out), "--confidence", str(conf), "--quicklook", str(png),
               "--save-model", str(model)]
    assert main(["finetune", *inputs, *outputs, "--seed", "1", *BASE]) == 0
    before = _files(tmp_path / "out")
    assert {"map.tif", "conf.tif", "q.png", "model/model.safetensors"} <= set(before)

    real_savefig = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", _no_space)
    assert main(["finetune", *inputs, *outputs, "--seed", "2", "--overwrite", *BASE]) == 2
    assert "No space left" in _error_line(capsys.readouterr().err)
    assert _files(tmp_path / "out") == before and _hidden(tmp_path / "out") == []

    monkeypatch.setattr(Figure, "savefig", real_savefig)
    monkeypatch.setattr(card, "render_model_card", _no_space)  # the last output written
    assert main(["finetune", *inputs, *outputs, "--seed", "2", "--overwrite", *BASE]) == 2
    assert _files(tmp_path / "out") == before and _hidden(tmp_path / "out") == []

    monkeypatch.undo()
    assert main(["finetune", *inputs, *outputs, "--seed", "2", "--overwrite", *BASE]) == 0
    after = _files(tmp_path / "out")
    assert set(after) == set(before) and after["conf.tif"] != before["conf.tif"]
    assert after["model/model.safetensors"] != before["model/model.safetensors"]


def test_a_streamed_prediction_keeps_both_maps_when_the_second_fails(tmp_path, inputs,
                                                                     monkeypatch) -> None:
    from hsizoo.io.writers import ConfidenceMapWriter, _GridWriter
    from hsizoo.predict.engine import predict_scene
    from hsizoo.models._factory import create_model
    from hsizoo.spectral.grid import band_stats

    scene, _ = inputs
    cube = make_cube(12, 10, 6).astype(np.float32)
    out, conf = tmp_path / "map.tif", tmp_path / "conf.tif"
    out.write_bytes(b"the map of an earlier run")
    conf.write_bytes(b"the confidence of that run")
    before = {p: p.read_bytes() for p in (out, conf)}
    real_close = _GridWriter.close

    def close(self):
        if isinstance(self, ConfidenceMapWriter):
            self._closed = True
            self._ds.close()
            self._file.abort()
            _no_space()
        real_close(self)

    monkeypatch.setattr(_GridWriter, "close", close)
    model = create_model("s2former_test", num_classes=3).eval()
    with pytest.raises(OutputError, match="none of them was written"):
        predict_scene(model, scene, band_stats(cube), out_path=out, confidence_path=conf,
                      overwrite=True, window_size=8, progress=False)
    assert {p: p.read_bytes() for p in (out, conf)} == before and _hidden(tmp_path) == []


@pytest.mark.parametrize("folder_first", [False, True])
def test_a_rename_failing_midway_puts_back_what_was_there(tmp_path, monkeypatch,
                                                          folder_first) -> None:
    """commit_together: the second rename fails; the first output is restored (a replaced file
    gets its old bytes back, a new one is removed), and no partial or backup is left."""
    from hsizoo.io import atomic
    from hsizoo.io.commit import commit_together

    a, new, folder = tmp_path / "a.txt", tmp_path / "new.txt", tmp_path / "f"
    a.write_text("old a")
    folder.mkdir()
    (folder / "x").write_text("old x")
    calls = []
    real_swap_file, real_swap_folder = atomic._swap_file, atomic._swap_folder

    def swap_file(tmp, target, overwrite):
        calls.append(target.name)
        if len(calls) == 3:
            _no_space()
        real_swap_file(tmp, target, overwrite)

    def swap_folder(src, target):
        calls.append(target.name)
        if len(calls) == 3:
            _no_space()
        real_swap_folder(src, target)

    monkeypatch.setattr(atomic, "_swap_file", swap_file)
    monkeypatch.setattr(atomic, "_swap_folder", swap_folder)
    with pytest.raises(OutputError, match="none of them was written|were not written either"):
        with commit_together():
            if folder_first:
                with atomic.atomic_folder(folder, may_replace=lambda f: True) as f:
                    (f / "x").write_text("new x")
            atomic.write_atomic(a, b"new a", overwrite=True)
            atomic.write_atomic(new, b"brand new", overwrite=False)
            if not folder_first:
                with atomic.atomic_folder(folder, may_replace=lambda f: True) as f:
                    (f / "x").write_text("new x")
    assert len(calls) == 3
    assert a.read_text() == "old a" and not new.exists()
    assert (folder / "x").read_text() == "old x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "f"]
    assert _hidden(tmp_path) == []


def test_a_map_inside_the_saved_model_folder_is_committed_with_it(tmp_path, inputs,
                                                                    monkeypatch) -> None:
    """A map written into the --save-model folder arrives with the new folder, and stays as it
    was when the model cannot be saved."""
    import hsizoo.hub.card as card

    model = tmp_path / "model"
    argv = ["finetune", *inputs, "--out", str(model / "map.tif"), "--save-model", str(model),
            "--overwrite", *BASE]
    model.mkdir()
    assert main(argv) == 0
    assert {"map.tif", "model.safetensors", "config.json"} <= {p.name for p in model.iterdir()}
    (model / "map.tif").write_bytes(b"the map of an earlier run")
    before = _files(model)
    monkeypatch.setattr(card, "render_model_card", _no_space)
    assert main([*argv, "--seed", "3"]) == 2
    assert _files(model) == before and _hidden(tmp_path) == []
    monkeypatch.undo()
    assert main([*argv, "--seed", "3"]) == 0
    after = _files(model)
    assert set(after) == set(before) and after["map.tif"] != before["map.tif"]
    assert _hidden(tmp_path) == []


# ------------------------------------------------------------ 2. tampered checkpoints


def _tamper(path: Path) -> None:
    """Flip one byte near the end, keeping size and modification time."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[-2] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns


def test_a_hub_cache_file_tampered_in_place_is_refused_on_the_next_load(hub, tmp_path) -> None:
    from hsizoo.hub.save import save_pretrained
    from hsizoo.hub.verify import CheckpointError
    from hsizoo.models._factory import create_model

    repo = "hsizoo-test/s2former_test.tamper"
    saved = save_pretrained(create_model("s2former_test", num_classes=3), tmp_path / "saved",
                            config=dict(tag="tamper", hf_hub_id=repo))
    shutil.copytree(saved, hub.repo_dir(repo))
    cfg = dict(hf_hub_id=repo, hf_hub_revision=None,
               sha256=json.loads((saved / "config.json").read_text())["sha256"])
    create_model("s2former_test", pretrained=True, num_classes=3, pretrained_cfg_overlay=cfg)
    (cached,) = (tmp_path / "hf-cache").rglob("snapshots/*/model.safetensors")
    _tamper(cached.resolve())
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        create_model("s2former_test", pretrained=True, num_classes=3, pretrained_cfg_overlay=cfg)


def test_an_explicit_checkpoint_tampered_in_place_is_refused_on_the_next_load(tmp_path) -> None:
    from hsizoo.hub.save import save_pretrained
    from hsizoo.hub.verify import CheckpointError
    from hsizoo.models._factory import create_model

    folder = save_pretrained(create_model("s2former_test", num_classes=3), tmp_path / "m")
    create_model(str(folder))
    _tamper(folder / "model.safetensors")
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        create_model(str(folder))


# ------------------------------------------------------------ 3. outputs never name inputs


@pytest.mark.parametrize("case", ["same spelling", "dot-dot spelling", "symlink", "hard link",
                                  "confidence is labels", "quicklook is eval labels",
                                  "out is wavelengths file", "save-model is model folder",
                                  "save-model holds the labels as config.json"])
def test_an_output_naming_an_input_is_refused_before_any_work(tmp_path, inputs, monkeypatch,
                                                              capsys, case) -> None:
    from hsizoo.hub.save import save_pretrained
    from hsizoo.models._factory import create_model

    _stop_before_training(monkeypatch)
    scene, labels = inputs
    folder = Path(scene).parent
    before = _files(folder)
    out = scene
    extra: list[str] = []
    want = "--out and the scene (SCENE) both name"
    if case == "dot-dot spelling":
        (folder / "x").mkdir()
        out = f"{folder}/x/../scene.tif"
    elif case == "symlink":
        out = str(tmp_path / "link.tif")
        os.symlink(scene, out)
    elif case == "hard link":
        out = str(tmp_path / "hard.tif")
        os.link(scene, out)
    elif case == "confidence is labels":
        out, extra = str(tmp_path / "m.tif"), ["--confidence", labels]
        want = "--confidence and LABELS both name"
    elif case == "quicklook is eval labels":
        np.save(folder / "ref.npy", np.ones((12, 10), int))
        out = str(tmp_path / "m.tif")
        extra = ["--eval-labels", str(folder / "ref.npy"), "--quicklook", str(folder / "ref.npy")]
        want = "--quicklook and --eval-labels both name"
    elif case == "out is wavelengths file":
        (folder / "wl.txt").write_text(" ".join(str(v) for v in make_wavelengths(6)))
        out, extra = str(folder / "wl.txt"), ["--wavelengths", str(folder / "wl.txt")]
        want = "--out and --wavelengths both name"
    elif case == "save-model is model folder":
        save_pretrained(create_model("s2former_test"), folder / "backbone")
        out = str(tmp_path / "m.tif")
        extra = ["--save-model", str(folder / "backbone")]
        want = "--save-model and the model folder (--model) both name"
    else:
        model = tmp_path / "model"
        model.mkdir()
        os.link(labels, model / "config.json")
        out, extra = str(tmp_path / "m.tif"), ["--save-model", str(model)]
        want = "--save-model and LABELS both name"
    before = _files(folder)
    argv = ["finetune", scene, labels, "--out", out, *extra, *BASE, "--overwrite"]
    if case == "save-model is model folder":
        argv[argv.index("s2former_test")] = str(folder / "backbone")
    assert main(argv) == 2
    line = _error_line(capsys.readouterr().err)
    assert want in line and "never writes over an input" in line, line
    assert _files(folder) == before


def test_predict_refuses_to_write_into_its_model_folder_or_over_its_scene(tmp_path, inputs,
                                                                          capsys) -> None:
    model = tmp_path / "model"
    assert main(["finetune", *inputs, "--out", str(tmp_path / "m.tif"), "--save-model",
                 str(model), *BASE]) == 0
    before = _files(model)
    assert main(["predict", str(model), inputs[0], "--out", str(model / "model.safetensors"),
                 "--overwrite", "--quiet"]) == 2
    assert "--out and the model folder (MODEL) both name" in _error_line(capsys.readouterr().err)
    assert main(["predict", str(model), inputs[0], "--out", inputs[0], "--overwrite",
                 "--quiet"]) == 2
    assert "--out and the scene (SCENE) both name" in _error_line(capsys.readouterr().err)
    assert _files(model) == before


def test_the_api_refuses_to_stream_a_map_over_its_scene(inputs) -> None:
    from hsizoo.models._factory import create_model
    from hsizoo.predict.engine import predict_scene
    from hsizoo.spectral.grid import band_stats

    scene, _ = inputs
    before = Path(scene).read_bytes()
    with pytest.raises(OutputError, match="out_path and the scene both name"):
        predict_scene(create_model("s2former_test", num_classes=3), scene,
                      band_stats(make_cube(12, 10, 6).astype(np.float32)),
                      out_path=Path(scene).parent / "." / "scene.tif", overwrite=True,
                      progress=False)
    assert Path(scene).read_bytes() == before


# ------------------------------------------------------------ 4. settings checked first


@pytest.mark.parametrize("command,extra,option", [
    ("finetune", ["--steps", "-1"], "--steps"),
    ("finetune", ["--time-budget", "-1"], "--time-budget"),
    ("finetune", ["--time-budget", "0"], "--time-budget"),
    ("finetune", ["--time-budget", "nan"], "--time-budget"),
    ("finetune", ["--seed", "-1"], "--seed"),
    ("finetune", ["--adapt-steps", "-5"], "--adapt-steps"),
    ("finetune", ["--seed", str(2**64)], "--seed"),
    ("predict", ["--window", "0"], "--window"),
    ("pretrain", ["--batch-size", "0"], "--batch-size"),
    ("pretrain", ["--mask-ratio", "1"], "--mask-ratio"),
    ("pretrain", ["--lr", "inf"], "--lr"),
    ("pretrain", ["--checkpoint-every", "0"], "--checkpoint-every"),
    ("info", ["--bands", "-3"], "--bands"),
])
def test_invalid_settings_are_refused_while_parsing(tmp_path, inputs, monkeypatch, capsys,
                                                    command, extra, option) -> None:
    import hsizoo.finetune.result as result
    import hsizoo.io

    _stop_before_training(monkeypatch)

    def no_work(*_a, **_k):
        raise AssertionError("work started although the arguments were invalid")

    monkeypatch.setattr(result, "load_finetuned", no_work)
    monkeypatch.setattr(hsizoo.io, "read_scene", no_work)
    scene, labels = inputs
    argv = {"finetune": ["finetune", scene, labels, "--out", str(tmp_path / "m.tif")],
            "predict": ["predict", str(tmp_path), scene, "--out", str(tmp_path / "m.tif")],
            "pretrain": ["pretrain", "--run-dir", str(tmp_path / "run")],
            "info": ["info", "s2former_test"]}[command]
    assert main([*argv, *extra]) == 2
    line = _error_line(capsys.readouterr().err)
    assert line.startswith(f"hsizoo {command}: error: argument {option}"), line
    assert not (tmp_path / "run").exists()



def test_the_recipe_refuses_a_seed_torch_cannot_take_before_reading_the_scene() -> None:
    import hsizoo

    with pytest.raises(ValueError, match=r"seed must be at most 2\*\*63 - 1"):
        hsizoo.finetune("/nonexistent/scene.tif", None, seed=2**70)


# ------------------------------------------------------------ 5. scenes smaller than a patch


def test_a_scene_smaller_than_the_patch_is_refused(tmp_path, capsys) -> None:
    import hsizoo
    from hsizoo.io import Scene

    cube = make_cube(3, 3, 6).astype(np.float32)
    labels = np.array([[1, 1, 2], [1, 2, 2], [1, 1, 2]])
    scene = Scene(cube=cube, wavelengths=make_wavelengths(6))
    with pytest.raises(ValueError, match=r"3 x 3 pixels, smaller than the 5 x 5 patch .*at least "
                                         r"5 x 5 pixels"):
        hsizoo.finetune(scene, labels, shots=None, model="s2former_test", pretrained=False,
                        steps=1, progress=False)
    path, label_file = _inputs(tmp_path, 3, 3)
    assert main(["finetune", path, label_file, "--all-labels", "--out", str(tmp_path / "m.tif"),
                 *BASE]) == 2
    assert "smaller than the 5 x 5 patch" in _error_line(capsys.readouterr().err)
    assert not (tmp_path / "m.tif").exists()
    # A scene as large as the patch is fine-tuned as usual.
    ft = hsizoo.finetune(Scene(cube=make_cube(5, 5, 6).astype(np.float32),
                               wavelengths=make_wavelengths(6)),
                         np.repeat([[1], [1], [2], [2], [2]], 5, axis=1), shots=None,
                         model="s2former_test", pretrained=False, steps=1, progress=False)
    assert ft.predict(progress=False).class_map.shape == (5, 5)


# ------------------------------------------------------------ 6. tracebacks turned into errors


def test_a_long_wavelength_list_is_a_list_not_a_file_name(tmp_path, inputs, monkeypatch,
                                                          capsys) -> None:
    seen: dict = {}
    _stop_before_training(monkeypatch, seen)
    wl = np.round(np.linspace(400.123456, 2500.654321, 224), 6)
    text = ",".join(f"{v:.6f}" for v in wl)
    assert len(text) > 255
    with pytest.raises(_Reached):
        main(["finetune", *inputs, "--out", str(tmp_path / "m.tif"), "--wavelengths", text,
              *BASE])
    np.testing.assert_allclose(seen["wavelengths"], wl, rtol=1e-9)
    (tmp_path / "wl.txt").write_text(" ".join(f"{v:.6f}" for v in wl[:6]) + "\n")
    with pytest.raises(_Reached):
        main(["finetune", *inputs, "--out", str(tmp_path / "m.tif"), "--wavelengths",
              str(tmp_path / "wl.txt"), *BASE])
    assert len(seen["wavelengths"]) == 6


def test_adapt_steps_reach_finetune_and_default_to_its_rule(tmp_path, inputs,
                                                            monkeypatch) -> None:
    seen: dict = {}
    _stop_before_training(monkeypatch, seen)
    with pytest.raises(_Reached):
        main(["finetune", *inputs, "--out", str(tmp_path / "m.tif"), *BASE])
    assert seen["adapt_steps"] is None  # finetune's own rule decides
    with pytest.raises(_Reached):
        main(["finetune", *inputs, "--out", str(tmp_path / "m.tif"), "--adapt-steps", "0", *BASE])
    assert seen["adapt_steps"] == 0


@pytest.mark.parametrize("text,want", [
    ("400,410,abc,430", "value 3, 'abc', is not a positive band centre"),
    ("400 410 nan", "value 3, 'nan'"),
    ("400,-5", "value 2, '-5'"),
    ("x" * 300, "neither a list of band centres in nm .* the file does not exist"),
    ("missing.txt", "neither a list .* the file does not exist"),
    (",", "holds no band centres"),
    ("", "the value is empty"),
])
def test_bad_wavelengths_are_one_clear_line(tmp_path, inputs, monkeypatch, capsys, text,
                                            want) -> None:
    import re

    _stop_before_training(monkeypatch)
    assert main(["finetune", *inputs, "--out", str(tmp_path / "m.tif"), "--wavelengths", text,
                 *BASE]) == 2
    line = _error_line(capsys.readouterr().err)
    assert "argument --wavelengths" in line and re.search(want, line), line


def test_a_wavelengths_folder_or_binary_file_is_one_clear_line(tmp_path, inputs, monkeypatch,
                                                               capsys) -> None:
    _stop_before_training(monkeypatch)
    (tmp_path / "bin").write_bytes(b"\xff\xfe\x00\x81")
    for arg, want in ((str(tmp_path), "the file is a folder"), (str(tmp_path / "bin"),
                                                                "cannot read the band centres")):
        assert main(["finetune", *inputs, "--out", str(tmp_path / "m.tif"), "--wavelengths",
                     arg, *BASE]) == 2
        assert want in _error_line(capsys.readouterr().err)


@pytest.mark.parametrize("stage", ["training", "confidence write"])
def test_ctrl_c_is_one_line_status_130_and_leaves_no_partial_file(tmp_path, inputs, monkeypatch,
                                                                  capsys, stage) -> None:
    from hsizoo.io.writers import ConfidenceMapWriter

    out, conf, before = _first_outputs(tmp_path)

    def interrupt(*_a, **_k):
        raise KeyboardInterrupt

    if stage == "training":
        import hsizoo.finetune

        monkeypatch.setattr(sys.modules["hsizoo.finetune"], "train_student", interrupt)
    else:  # the class map is finished and waits for the confidence map
        monkeypatch.setattr(ConfidenceMapWriter, "write", interrupt)
    assert main(["finetune", *inputs, "--out", str(out), "--confidence", str(conf), "--seed",
                 "2", "--overwrite", *BASE]) == 130  # hsizoo.cli.INTERRUPTED
    err = capsys.readouterr().err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert err.strip().splitlines() == [
        "hsizoo finetune: interrupted; nothing half-written was left (outputs appear only when "
        "complete, and earlier ones are unchanged)"]
    assert {p: p.read_bytes() for p in (out, conf)} == before
    assert _hidden(tmp_path / "out") == []


# ------------------------------------------------------------ 7. download names


@pytest.mark.parametrize("name,why", [
    ("../../etc", "that is a path, not a name"),
    ("..", "that is a path, not a name"),
    ("/etc/passwd", "that is a path, not a name"),
    ("", "the name is empty"),
    ("a/b/c", "exactly one '/'"),
    ("org/x..y", "'..' belongs to a path"),
    ("org/name@", "nothing follows '@'"),
    ("org/bad name", "alphanumeric"),
])
def test_download_refuses_what_is_no_checkpoint_name(name, why, capsys, monkeypatch) -> None:
    import hsizoo.hub.download as download

    def no_network(*_a, **_k):
        raise AssertionError("the Hub was asked about a name that cannot be one")

    monkeypatch.setattr(download, "try_hub", no_network)
    assert main(["download", name]) == 2
    line = _error_line(capsys.readouterr().err)
    assert f"{name!r} is not a checkpoint name" in line and why in line, line
    assert "hsizoo list --pretrained" in line and "s2former_tiny.ssl_simulated" in line
    assert f"hsizoo download {name}" not in line  # no advice to rerun the same command


def test_download_unknown_names_point_to_the_list(capsys, tmp_path) -> None:
    for name in ("s2former_nope", "s2former_tiny.nosuch"):
        assert main(["download", name, "--to", str(tmp_path)]) == 2
        assert "`hsizoo list --pretrained` lists them" in _error_line(capsys.readouterr().err)
    (tmp_path / "file").write_text("x")
    assert main(["download", "s2former_tiny.ssl_simulated", "--to", str(tmp_path / "file")]) == 2
    assert "--to" in _error_line(capsys.readouterr().err)
