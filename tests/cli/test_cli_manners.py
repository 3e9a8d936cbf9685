"""The command line's manners: --version, -q, --json, quiet logs, a light --help, a resume hint
that works when followed."""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest_io import make_wavelengths, write_geotiff

from hsizoo.cli import main
from hsizoo.runtime import progress

REPO = Path(__file__).resolve().parents[2]


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def _python(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), env_path()])}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=120)


def env_path() -> str:
    return os.environ.get("PYTHONPATH", "")


def test_help_and_version_import_neither_torch_nor_timm() -> None:
    res = _python("import sys, contextlib, io\n"
                  "from hsizoo.cli import main\n"
                  "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
                  "    assert main(['--help']) == 0 and main(['--version']) == 0\n"
                  "print(sorted(m for m in ('torch', 'timm') if m in sys.modules))\n"
                  "print(out.getvalue().splitlines()[-1])")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == "[]"
    assert re.fullmatch(r"hsizoo \d+\.\d+\.\d+\S* \(Python [\d.]+; torch \S+, timm \S+, "
                        r"rasterio \S+\)", lines[1])


def test_import_hsizoo_registers_models_when_timm_comes() -> None:
    # timm after hsizoo, and timm before hsizoo: the registry has the models either way
    for order in ("import hsizoo, timm", "import timm, hsizoo"):
        res = _python(f"{order}; print(timm.is_model('s2former_tiny'))")
        assert res.stdout.strip() == "True", res.stderr
    res = _python("import hsizoo, sys; print('torch' in sys.modules)")
    assert res.stdout.strip() == "False", res.stderr


def test_quiet_before_or_after_the_command_and_json_list() -> None:
    try:
        for argv in (["-q", "list", "--json"], ["list", "-q", "--json"]):
            code, out, err = _run(*argv)
            assert code == 0 and err == ""
            assert progress.is_quiet()
            progress.set_quiet(False)
            models = json.loads(out)["models"]  # stdout is exactly one JSON object
            assert "s2former_tiny" in {m["name"] for m in models}
        code, out, _ = _run("list")
        assert code == 0 and not progress.is_quiet()
    finally:
        progress.set_quiet(False)


def test_progress_bars_are_quiet_off_terminal_and_off_with_q(monkeypatch) -> None:
    err = io.StringIO()  # not a terminal, like a log file
    monkeypatch.setattr(sys, "stderr", err)
    bar = progress.progress_bar(total=10_000, desc="x", file=err)
    for i in range(10_000):
        bar.update(1)
        bar.set_postfix(loss=i)  # tqdm would redraw on each of these
    bar.close()
    off_tty = len(err.getvalue())
    assert bar.mininterval >= progress.OFF_TTY_INTERVAL
    assert off_tty < 400  # a start and an end line, not one redraw per 0.1 s
    progress.set_quiet(True)
    try:
        err2 = io.StringIO()
        quiet = progress.progress_bar(total=10, file=err2)
        quiet.update(10)
        quiet.close()
        assert quiet.disable and err2.getvalue() == ""
    finally:
        progress.set_quiet(False)


@pytest.fixture
def tiny_task(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(1, 3), 8)[None, :].repeat(12, 0)
    cube = (labels[..., None] * 500 + rng.integers(0, 300, (12, 16, 4))).astype("int16")
    tags = [{"wavelength": str(v)} for v in make_wavelengths(4)]
    scene = write_geotiff(tmp_path / "scene.tif", cube, band_tags=tags)
    lab = tmp_path / "labels.npy"
    np.save(lab, labels)
    return scene, lab


def test_finetune_and_predict_json_is_one_object_on_stdout(tiny_task, tmp_path: Path) -> None:
    scene, labels = tiny_task
    code, out, err = _run("finetune", str(scene), str(labels), "--shots", "3", "--steps", "2",
                          "--model", "s2former_test", "--no-pretrained", "--out",
                          str(tmp_path / "map.tif"), "--save-model", str(tmp_path / "ft"),
                          "--eval-labels", str(labels), "--json", "-q")
    assert code == 0, err
    res = json.loads(out)
    assert res["command"] == "finetune" and res["outputs"] == {"map": str(tmp_path / "map.tif")}
    assert 0 <= res["evaluation"]["oa"] <= 1 and res["model_folder"] == str(tmp_path / "ft")
    assert "it/s" not in err and "%|" not in err  # -q: no progress bars
    code, out, err = _run("predict", str(tmp_path / "ft"), str(scene), "--out",
                          str(tmp_path / "again.tif"), "--json", "--quiet")
    assert code == 0, err
    res = json.loads(out)
    assert res["outputs"]["map"] == str(tmp_path / "again.tif") and res["seconds"] > 0


def test_pretrain_resume_hint_works_when_followed(tmp_path: Path) -> None:
    run = tmp_path / "run dir"  # a space: the hint must quote it
    common = ["--model", "s2former_test", "--batch-size", "4", "--steps", "3", "-q"]
    code, out, err = _run("pretrain", "simulated:rosis:12x12:0", "--run-dir", str(run),
                          "--until-step", "1", *common)
    assert code == 0, err
    hint = re.search(r"continue with: (hsizoo pretrain .*?--resume)", err)
    assert hint, err
    argv = shlex.split(hint.group(1))
    assert argv[:2] == ["hsizoo", "pretrain"]
    code, out, err = _run(*argv[1:], "-q")
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["step"] == 3
