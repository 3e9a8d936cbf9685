"""Faults a careful user meets (issue 13): full disks, killed processes, bad output locations.

Outputs are written by one atomic writer (hsizoo.io.atomic); every output location is checked
before the work starts and again at the swap. Disk-full cases inject the write failure.
Rerun with ``python -m pytest -q tests/test_reliability.py``.
"""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest_io import CRS, make_cube, make_wavelengths, transform, write_geotiff

from hsizoo.io import atomic, open_class_map_writer, read_scene, save_quicklook, write_class_map
from hsizoo.io.atomic import OutputConflictError, OutputError, check_output, write_atomic

NAMES = ["water", "trees", "asphalt"]
RASTER_SUFFIXES = (".tif", ".tiff", ".png", ".img", ".dat", ".hdr", ".safetensors", ".json")


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def _full_disk(path):
    return SimpleNamespace(total=10 * 2**30, used=10 * 2**30, free=0)


def _no_space(*_a, **_k):
    raise OSError(errno.ENOSPC, "No space left on device")


# ------------------------------------------------------------------ 1. one atomic writer


def test_a_killed_predict_leaves_no_file_that_opens_as_a_map(tmp_path) -> None:
    """The partial map is hidden and does not end in .tif: nothing a user opens looks finished."""
    out = open_class_map_writer(tmp_path / "map.tif", 20, 20, crs=CRS, transform=transform(),
                                class_names=NAMES)
    out.write((0, 0), np.ones((20, 20), dtype=np.uint8))
    out._ds.close()  # as far as a process killed here gets: the data is on disk, no rename
    names = [p.name for p in tmp_path.iterdir()]
    assert len(names) == 1 and names[0].startswith(".map.tif.hsizoo-partial-")
    assert not names[0].lower().endswith(RASTER_SUFFIXES)
    assert list(tmp_path.glob("*.tif")) == [] and not (tmp_path / "map.tif").exists()
    out.abort()
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_partial(tmp_path) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("previous")

    def half_then_full(p: Path) -> None:
        p.write_bytes(b"half")
        _no_space()

    with pytest.raises(OutputError, match="unchanged.*free space"):
        write_atomic(target, half_then_full, overwrite=True)
    assert target.read_text() == "previous" and _hidden(tmp_path) == []


def test_a_short_write_is_caught_by_its_size(tmp_path, monkeypatch) -> None:
    """A write that reports success but leaves fewer bytes (what a full disk can do to buffered
    writers) is caught before the rename."""
    target = tmp_path / "blob.bin"
    target.write_bytes(b"old")
    real = atomic.fsync_path

    def truncate_then_sync(p: Path) -> None:
        if p.is_file():
            os.truncate(p, 3)
        real(p)

    monkeypatch.setattr(atomic, "fsync_path", truncate_then_sync)
    with pytest.raises(OutputError, match="3 bytes of 10"):
        write_atomic(target, b"0123456789", overwrite=True)
    assert target.read_bytes() == b"old" and _hidden(tmp_path) == []


@pytest.fixture
def scene(tmp_path):
    (tmp_path / "scene").mkdir()
    cube = make_cube(12, 10, 6).astype(np.float32)
    return read_scene(write_geotiff(tmp_path / "scene" / "s.tif", cube,
                                    descriptions=[f"{w} nm" for w in make_wavelengths(6)]))


def test_a_full_disk_during_the_quicklook_is_a_clear_error_and_keeps_the_old_png(
        tmp_path, scene, monkeypatch) -> None:
    from matplotlib.figure import Figure

    png = tmp_path / "q.png"
    save_quicklook(png, scene, np.ones(scene.shape[:2], int))
    before = png.read_bytes()

    def savefig_then_full(self, fname, **kw):
        Path(fname).write_bytes(b"\x89PNG\r\n\x1a\n half")
        _no_space()

    monkeypatch.setattr(Figure, "savefig", savefig_then_full)
    with pytest.raises(OutputError, match=r"Writing .*q\.png failed.*No space left.*unchanged"):
        save_quicklook(png, scene, np.ones(scene.shape[:2], int) * 2)
    assert png.read_bytes() == before and _hidden(tmp_path) == []


def _saved_model(folder: Path, num_classes: int):
    from hsizoo.hub.save import save_pretrained
    from hsizoo.models._factory import create_model

    model = create_model("s2former_test", num_classes=num_classes).eval()
    save_pretrained(model, folder, config={"loss_curve": "loss_curve.png"})
    return model


def test_a_save_killed_between_weights_and_config_leaves_the_old_model_loadable(tmp_path) -> None:
    """The new model is written as a hidden sibling folder and swapped in whole: a process
    killed after writing the weights (here with os._exit, no cleanup) changes nothing."""
    from hsizoo.hub.save import verify_folder

    folder = tmp_path / "model"
    _saved_model(folder, 3)
    (folder / "loss_curve.png").write_bytes(b"\x89PNG curve")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    script = textwrap.dedent(f"""
        import os
        import hsizoo.hub.card as card
        from hsizoo.hub.save import save_pretrained
        from hsizoo.models._factory import create_model

        def killed(cfg):  # after model.safetensors and config.json are written
            os._exit(9)

        card.render_model_card = killed
        save_pretrained(create_model("s2former_test", num_classes=5), {str(folder)!r},
                        overwrite=True)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert proc.returncode == 9, proc.stderr
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert verify_folder(folder)["num_classes"] == 3
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "model"]
    assert all(n.startswith(".model.hsizoo-partial-") for n in leftovers) and leftovers


def test_a_model_folder_is_replaced_as_a_whole_and_keeps_other_files(tmp_path) -> None:
    from hsizoo.io.atomic import file_sha256
    from hsizoo.hub.save import save_pretrained, verify_folder
    from hsizoo.models._factory import create_model

    folder = tmp_path / "model"
    _saved_model(folder, 3)
    (folder / "loss_curve.png").write_bytes(b"curve")
    inode = folder.stat().st_ino
    save_pretrained(create_model("s2former_test", num_classes=5), folder, overwrite=True)
    assert folder.stat().st_ino != inode  # a new folder was swapped in, not files rewritten
    cfg = verify_folder(folder)
    assert cfg["num_classes"] == 5 and cfg["sha256"] == file_sha256(folder / "model.safetensors")
    assert (folder / "loss_curve.png").read_bytes() == b"curve"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_a_folder_swap_without_renameat2_replaces_the_whole_folder(tmp_path,
                                                                    monkeypatch) -> None:
    """Where the kernel cannot exchange two folders in one step, two renames do it."""
    monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    target = tmp_path / "f"
    target.mkdir()
    (target / "old.txt").write_text("old")
    (target / "keep.txt").write_text("keep")
    with atomic.atomic_folder(target, may_replace=lambda f: True) as new:
        (new / "old.txt").write_text("new")
    assert (target / "old.txt").read_text() == "new"
    assert (target / "keep.txt").read_text() == "keep"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_model_folders_and_quicklooks_honour_the_umask(tmp_path, scene) -> None:
    old = os.umask(0o027)
    try:
        _saved_model(tmp_path / "m", 3)
        save_quicklook(tmp_path / "q.png", scene)
    finally:
        os.umask(old)
    assert (tmp_path / "m").stat().st_mode & 0o777 == 0o750
    assert (tmp_path / "m" / "config.json").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "q.png").stat().st_mode & 0o777 == 0o640


# ------------------------------------------------------------------ 2. outputs checked first


def test_output_locations_are_checked_with_clear_messages(tmp_path, monkeypatch) -> None:
    (tmp_path / "old.tif").write_bytes(b"x")
    (tmp_path / "adir").mkdir()
    with pytest.raises(OutputError, match="already exists; pass --overwrite"):
        check_output(tmp_path / "old.tif", overwrite=False, option="--out")
    assert check_output(tmp_path / "old.tif", overwrite=True) == tmp_path / "old.tif"
    with pytest.raises(IsADirectoryError, match="is a folder, not a file"):
        check_output(tmp_path / "adir", overwrite=True)
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        check_output(tmp_path / "old.tif", overwrite=True, folder=True)
    with pytest.raises(FileNotFoundError, match="does not exist .*create it first"):
        check_output(tmp_path / "nope" / "m.tif", overwrite=False)
    assert check_output(tmp_path / "a" / "b", overwrite=False, folder=True, create_parents=True)

    def read_only(folder):
        raise PermissionError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(atomic, "_probe", read_only)
    with pytest.raises(OutputError, match="not writable .*Read-only file system"):
        check_output(tmp_path / "m.tif", overwrite=False)


def test_too_little_free_space_is_refused_before_the_work(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(atomic.shutil, "disk_usage", _full_disk)
    with pytest.raises(OutputError, match=r"Not enough free space .*needs about 51\.0 MB and "
                                          r".* has 0\.0 MB free; free some space"):
        check_output(tmp_path / "m.tif", overwrite=False, estimated_bytes=50 * 2**20)
    with pytest.raises(OutputError, match="Not enough free space"):
        write_class_map(tmp_path / "m.tif", np.ones((4000, 4000), int), crs=None,
                        transform=None, class_names=NAMES)
    assert list(tmp_path.iterdir()) == []


def _cli_files(tmp_path: Path) -> tuple[str, str]:
    cube = make_cube(12, 10, 6).astype(np.float32)
    scene = write_geotiff(tmp_path / "scene.tif", cube,
                          descriptions=[f"{w} nm" for w in make_wavelengths(6)])
    labels = np.zeros((12, 10), dtype=np.int64)
    labels[:6], labels[6:] = 1, 2
    np.save(tmp_path / "labels.npy", labels)
    return str(scene), str(tmp_path / "labels.npy")


@pytest.mark.parametrize("case", ["read-only folder", "out is a folder", "model is a file",
                                  "no space", "same file twice"])
def test_cli_finetune_refuses_bad_outputs_before_training(tmp_path, monkeypatch, capsys,
                                                          case) -> None:
    import re

    import hsizoo.finetune  # noqa: F401 (the package whose finetune is replaced)
    from hsizoo.cli import main

    def training(*_a, **_k):
        raise AssertionError("training started before the outputs were checked")

    monkeypatch.setattr(sys.modules["hsizoo.finetune"], "finetune", training)
    scene, labels = _cli_files(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    argv = ["finetune", scene, labels, "--out", str(out / "map.tif"), "--model", "s2former_test",
            "--quiet", "--overwrite"]
    if case == "read-only folder":
        monkeypatch.setattr(atomic, "_probe", lambda f: (_ for _ in ()).throw(
            PermissionError(errno.EACCES, "Permission denied")))
        want = "--out .*not writable"
    elif case == "out is a folder":
        argv[argv.index("--out") + 1] = str(out)
        want = "--out .* is a folder, not a file"
    elif case == "model is a file":
        (tmp_path / "model.bin").write_bytes(b"x")
        argv += ["--save-model", str(tmp_path / "model.bin")]
        want = "is a file, not a folder"
    elif case == "no space":
        monkeypatch.setattr(atomic.shutil, "disk_usage", _full_disk)
        want = "Not enough free space for --out"
    else:
        argv += ["--confidence", str(out / "map.tif")]
        want = "--confidence and --out both name"
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "hsizoo finetune: error:" in err and "Traceback" not in err
    assert re.search(want, err), err


def test_cli_predict_checks_outputs_before_loading_the_model(tmp_path, monkeypatch,
                                                             capsys) -> None:
    import hsizoo.finetune.result as result
    from hsizoo.cli import main

    def load(*_a, **_k):
        raise AssertionError("the model was loaded before the outputs were checked")

    monkeypatch.setattr(result, "load_finetuned", load)
    scene, _ = _cli_files(tmp_path)
    (tmp_path / "adir").mkdir()
    assert main(["predict", str(tmp_path), scene, "--out", str(tmp_path / "adir"),
                 "--overwrite", "--quiet"]) == 2
    assert "--out" in capsys.readouterr().err


def test_a_map_that_appears_during_the_run_is_not_replaced(tmp_path) -> None:
    """Another process creates the target while the map is written: it is left untouched and
    the new map is kept under a clearly named file that the error names."""
    import rasterio

    target = tmp_path / "map.tif"
    with pytest.raises(OutputConflictError, match=r"appeared while .*map\.hsizoo-new\.tif"):
        with open_class_map_writer(target, 8, 8, crs=CRS, transform=transform(),
                                   class_names=NAMES) as out:
            out.write((0, 0), np.full((8, 8), 2, dtype=np.uint8))
            target.write_bytes(b"another process's file")
    assert target.read_bytes() == b"another process's file"
    with rasterio.open(tmp_path / "map.hsizoo-new.tif") as ds:
        assert (ds.read(1) == 2).all()
    assert _hidden(tmp_path) == []
    # With overwrite the newcomer is replaced, as asked.
    with open_class_map_writer(tmp_path / "b.tif", 8, 8, crs=CRS, transform=transform(),
                               class_names=NAMES, overwrite=True) as out:
        out.write((0, 0), np.full((8, 8), 3, dtype=np.uint8))
        (tmp_path / "b.tif").write_bytes(b"x")
    with rasterio.open(tmp_path / "b.tif") as ds:
        assert (ds.read(1) == 3).all()


def test_a_model_folder_filled_during_the_save_is_not_replaced(tmp_path, monkeypatch) -> None:
    from hsizoo.hub import card as _card
    from hsizoo.hub.save import save_pretrained
    from hsizoo.models._factory import create_model

    folder = tmp_path / "model"
    real = _card.render_model_card

    def meanwhile(cfg):  # another process saves a model into the same folder
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps({"theirs": True}))
        return real(cfg)

    monkeypatch.setattr(_card, "render_model_card", meanwhile)
    with pytest.raises(OutputConflictError, match="filled by another process"):
        save_pretrained(create_model("s2former_test", num_classes=3), folder)
    assert [p.name for p in folder.iterdir()] == ["config.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


# ------------------------------------------------------------------ 3. Hub faults

HUB_REPO = "hsizoo-test/s2former_test.faults"



def _published(hub, tmp_path: Path):
    """A 3-class s2former_test saved and published; returns (model, its pretrained config)."""
    import shutil

    folder = tmp_path / "saved"
    model = _saved_model(folder, 3)
    shutil.copytree(folder, hub.repo_dir(HUB_REPO))
    sha = json.loads((folder / "config.json").read_text())["sha256"]
    return model, dict(hf_hub_id=HUB_REPO, sha256=sha, hf_hub_revision=None)


def _same_weights(a, b) -> bool:
    import torch

    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                  b.state_dict().values()))


def test_a_download_refused_for_wrong_bytes_leaves_the_cache_and_a_retry_succeeds(
        hub, tmp_path) -> None:
    from hsizoo.models._factory import create_model
    from hsizoo.hub.verify import CheckpointError

    model, cfg = _published(hub, tmp_path)
    good = (hub.repo_dir(HUB_REPO) / "model.safetensors").read_bytes()
    bad = bytearray(good)
    bad[-3:] = bytes(b ^ 0xFF for b in bad[-3:])
    hub.wrong_bytes["model.safetensors"] = bytes(bad)  # same size and headers, other bytes
    with pytest.raises(CheckpointError, match="checksum mismatch") as err:
        create_model("s2former_test", pretrained=True, num_classes=3, pretrained_cfg_overlay=cfg)
    assert "removed from the Hugging Face cache" in str(err.value)
    assert list((tmp_path / "hf-cache").rglob("model.safetensors")) == []
    assert [p for p in (tmp_path / "hf-cache").rglob("blobs/*") if p.stat().st_size == len(good)
            ] == []
    hub.wrong_bytes.clear()  # the server is healthy again: the retry downloads afresh
    loaded = create_model("s2former_test", pretrained=True, num_classes=3,
                          pretrained_cfg_overlay=cfg)
    assert _same_weights(model, loaded)


def test_a_connection_dropped_mid_body_is_one_clear_error(hub, tmp_path, monkeypatch) -> None:
    import huggingface_hub.file_download as fd

    from hsizoo.models._factory import create_model
    from hsizoo.hub.verify import CheckpointError

    model, cfg = _published(hub, tmp_path)
    monkeypatch.setattr(fd.time, "sleep", lambda s: None)  # huggingface_hub's retry pauses
    hub.drop_after["model.safetensors"] = 100
    with pytest.raises(CheckpointError) as err:
        create_model("s2former_test", pretrained=True, num_classes=3, pretrained_cfg_overlay=cfg)
    msg = str(err.value)
    assert HUB_REPO in msg and str(tmp_path / "hf-cache") in msg
    assert f"({HUB_REPO}) could not be downloaded. Tried, in order:" in msg
    assert "connection broke off" in msg and "RemoteProtocolError" in msg
    assert "retry" in msg and "\n  - " in msg  # one message listing every place tried
    assert sum(1 for r in hub.requests if r[0] == "GET" and r[1].endswith("model.safetensors")) > 1
    hub.drop_after.clear()
    loaded = create_model("s2former_test", pretrained=True, num_classes=3,
                          pretrained_cfg_overlay=cfg)
    assert _same_weights(model, loaded)


# ------------------------------------------------------------------ 4. readers


def _tags(values, unit):
    return [{"wavelength": f"{v:.6f}", "wavelength_units": unit} for v in values]


@pytest.mark.parametrize("unit,convert", [
    ("Nanometers", lambda nm: nm), ("Micrometers", lambda nm: nm / 1000),
    ("um", lambda nm: nm / 1000), ("Wavenumber", lambda nm: 1e7 / nm),
    ("cm-1", lambda nm: 1e7 / nm)])
def test_wavelength_units_are_converted_to_nm(tmp_path, unit, convert) -> None:
    wl = make_wavelengths(6)
    path = write_geotiff(tmp_path / "s.tif", make_cube(), band_tags=_tags(convert(wl), unit))
    np.testing.assert_allclose(read_scene(path).wavelengths, wl, rtol=1e-6)


def test_an_envi_header_in_wavenumbers_is_read_in_nm(tmp_path) -> None:
    from conftest_io import write_envi

    wl = make_wavelengths(6)
    hdr, _ = write_envi(tmp_path / "scene", make_cube(), 1e7 / wl[::-1], units="Wavenumber")
    # The bands were stored by increasing wavenumber, i.e. decreasing wavelength: refused with
    # the reason, not read as 10,000-22,000 nm.
    with pytest.raises(ValueError, match="strictly increasing.*Sort the bands"):
        read_scene(hdr)
    hdr, _ = write_envi(tmp_path / "ok", make_cube(), 1e7 / wl, units="Wavenumber")
    # the header keeps 6 significant digits of each wavenumber: 0.01 nm here
    np.testing.assert_allclose(read_scene(hdr).wavelengths, wl, atol=0.01)


@pytest.mark.parametrize("unit", ["Index", "GHz", "furlongs"])
def test_an_unknown_wavelength_unit_is_refused_listing_the_known_ones(tmp_path, unit) -> None:
    wl = make_wavelengths(6)
    path = write_geotiff(tmp_path / "s.tif", make_cube(), band_tags=_tags(wl, unit))
    with pytest.raises(ValueError, match=rf"unit '{unit}' is not one hsizoo knows \(Nanometers "
                                         r"\(nm\), Micrometers .*Wavenumber.*wavelengths="):
        read_scene(path)
    # Wavelengths given by the caller win over the file's metadata, unit and all.
    np.testing.assert_array_equal(read_scene(path, wavelengths=wl).wavelengths, wl)


def test_nm_labelled_micrometres_are_refused_as_not_physical(tmp_path) -> None:
    path = write_geotiff(tmp_path / "s.tif", make_cube(),
                         band_tags=_tags(make_wavelengths(6), "Micrometers"))
    with pytest.raises(ValueError, match="not physical band centres"):
        read_scene(path)


def test_a_wavelength_list_of_the_wrong_length_says_so(tmp_path) -> None:
    from conftest_io import envi_list, write_mat_v5

    wl = make_wavelengths(6)
    path = write_geotiff(tmp_path / "s.tif", make_cube(), envi={
        "wavelength": envi_list(wl[:5]), "wavelength_units": "Nanometers"})
    with pytest.raises(ValueError, match=r"wavelength list in .*s\.tif \(ENVI metadata domain\) "
                                         r"has 5 values but the file has 6 bands"):
        read_scene(path)
    with pytest.warns(UserWarning, match="has 5 values.*using the sensor preset"):
        with pytest.raises(ValueError, match="preset"):  # the preset has 200 bands, not 6
            read_scene(path, sensor="aviris_indian_pines")
    mat = write_mat_v5(tmp_path / "s.mat", {"cube": make_cube().astype(np.float32),
                                           "wavelength": wl[:4]})
    with pytest.raises(ValueError, match="variable 'wavelength'.* has 4 values but the file has "
                                         "6 bands"):
        read_scene(mat)


def test_a_bands_first_cube_gets_a_hint_about_axis_order(tmp_path) -> None:
    from conftest_io import write_mat_v5

    from hsizoo.finetune.inputs import as_scene
    from hsizoo.io import Scene

    wl = make_wavelengths(6)
    bhw = np.moveaxis(make_cube(40, 50, 6).astype(np.float32), 2, 0)  # (6, 40, 50)
    hint = r"shape \(6, 40, 50\): its first axis looks like the bands.*np\.moveaxis\(cube, 0, -1\)"
    with pytest.raises(ValueError, match=hint):
        as_scene(bhw, wl, None)
    with pytest.raises(ValueError, match=hint):
        as_scene(bhw, None, None)  # no band count known: the first axis is much the smallest
    with pytest.raises(ValueError, match=hint):
        Scene(cube=bhw, wavelengths=wl)
    with pytest.raises(ValueError, match=hint):
        read_scene(write_mat_v5(tmp_path / "b.mat", {"cube": bhw, "wavelength": wl}))
    # An (H, W, B) cube with the wrong wavelengths gets no such hint.
    with pytest.raises(ValueError) as err:
        as_scene(np.moveaxis(bhw, 0, -1), wl[:5], None)
    assert "moveaxis" not in str(err.value)


def test_predict_keeps_a_map_created_meanwhile_and_leaves_no_partial_file(tmp_path,
                                                                          monkeypatch) -> None:
    """A streamed prediction whose --out appears during the run: the newcomer is kept, the new
    map is saved beside it, and the confidence map's partial file is not left behind."""
    import rasterio
    import timm

    import hsizoo  # noqa: F401 (registers the models)
    from hsizoo.predict.engine import SharedPredictor, predict_scene
    from hsizoo.spectral.grid import band_stats

    cube = make_cube(12, 10, 6).astype(np.float32)
    src = write_geotiff(tmp_path / "scene.tif", cube,
                        descriptions=[f"{w} nm" for w in make_wavelengths(6)])
    out, conf = tmp_path / "map.tif", tmp_path / "conf.tif"
    real = SharedPredictor.predict_padded

    def meanwhile(self, *a, **k):
        if not out.exists():
            out.write_bytes(b"another process's map")
        return real(self, *a, **k)

    monkeypatch.setattr(SharedPredictor, "predict_padded", meanwhile)
    model = timm.create_model("s2former_test", num_classes=3).eval()
    with pytest.raises(OutputConflictError, match=r"map\.hsizoo-new\.tif"):
        predict_scene(model, str(src), band_stats(cube), out_path=out, confidence_path=conf,
                      window_size=8, progress=False)
    assert out.read_bytes() == b"another process's map"
    with rasterio.open(tmp_path / "map.hsizoo-new.tif") as ds:
        assert ds.read(1).shape == (12, 10) and set(np.unique(ds.read(1))) <= {1, 2, 3}
    assert _hidden(tmp_path) == [] and not conf.exists()


def test_a_killed_writers_partial_is_removed_by_the_next_write_once_stale(tmp_path) -> None:
    """SIGKILL leaves a hidden partial; the next write of that target removes it once its
    writer is gone and it has not changed for an hour, and leaves everything else alone."""
    target = tmp_path / "notes.txt"
    script = textwrap.dedent(f"""
        import os, signal
        from hsizoo.io.atomic import AtomicFile
        f = AtomicFile({str(target)!r}, overwrite=False)
        open(f.tmp, "wb").write(b"half")
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    (leftover,) = tmp_path.iterdir()
    assert leftover.name.startswith(".notes.txt.hsizoo-partial-")
    mine = tmp_path / f".notes.txt.hsizoo-partial-{os.getpid()}-0000abcd"  # a live writer's
    legacy = tmp_path / ".notes.txt.hsizoo-partial-0000abcd"  # no process id: not ours to judge
    other = tmp_path / ".other.txt.hsizoo-partial-999999999-0000abcd"  # another target's
    for p in (mine, legacy, other):
        p.write_bytes(b"x")
    write_atomic(target, b"first", overwrite=False)  # the leftover is recent: kept
    assert leftover.exists()
    old = time.time() - 2 * 3600
    for p in (leftover, mine, legacy, other):
        os.utime(p, (old, old))
    write_atomic(target, b"second", overwrite=True)
    assert not leftover.exists() and target.read_bytes() == b"second"
    assert mine.exists() and legacy.exists() and other.exists()
