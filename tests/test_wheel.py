"""The distribution carries the published checkpoints: a wheel installed outside the checkout
loads every published tag with no network (issue 12). One test reads what setuptools would put
in the wheel (instant); the other builds it, installs it into a fresh venv and loads offline."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sysconfig
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
import timm

import hsizoo
from hsizoo.hub.shipped import WEIGHTS_DIR

REPO_ROOT = Path(__file__).resolve().parents[1]
TAGS = hsizoo.list_pretrained()


def _source_copy(dest: Path) -> Path:
    """What a source distribution holds, copied away from the checkout (builds write files)."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, dest / name)
    shutil.copytree(REPO_ROOT / "hsizoo", dest / "hsizoo",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))
    return dest


def _published_files() -> set[str]:
    """Package-relative paths of every file of every published tag's folder."""
    out: set[str] = set()
    for tag in TAGS:
        folder = WEIGHTS_DIR / timm.models.get_pretrained_cfg(tag).to_dict()["hf_hub_id"].rsplit("/", 1)[-1]
        names = {p.name for p in folder.iterdir() if p.is_file()}
        assert {"model.safetensors", "config.json", "README.md"} <= names, folder
        out |= {f"weights/{folder.name}/{n}" for n in names}
    return out


@pytest.mark.filterwarnings("ignore:.*project.license.*")  # setuptools on the license table
def test_package_data_declares_every_published_checkpoint(tmp_path, monkeypatch) -> None:
    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution

    src = _source_copy(tmp_path / "src")
    monkeypatch.chdir(src)
    dist = Distribution()
    dist.script_name = "setup.py"
    apply_configuration(dist, "pyproject.toml")
    build_py = dist.get_command_obj("build_py")
    build_py.ensure_finalized()
    shipped = {str(Path(src_dir, n).relative_to("hsizoo"))
               for _pkg, src_dir, _build, names in build_py.data_files for n in names}
    want = _published_files()
    assert want and want <= shipped, sorted(want - shipped)


def _venv_over_this_environment(venv: Path) -> Path:
    """A new virtual environment that sees the packages of the environment running the tests.

    ``python -m venv --system-site-packages`` would see the *base* interpreter's packages, not
    this environment's: on a machine whose base Python has none of hsizoo's dependencies the
    wheel could not even import timm. So the new environment is isolated, and a ``.pth`` file
    appends this environment's site-packages folders to its path, after its own: the wheel
    installed there comes first, and the ``.pth`` files of those folders (this checkout's
    editable install among them) are not run.
    """
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    ask = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    purelib = subprocess.run([str(py), "-c", ask], check=True, capture_output=True,
                             text=True).stdout.strip()
    ours = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (Path(purelib) / "_hsizoo_test_parent_env.pth").write_text(
        "".join(f"{p}\n" for p in ours if Path(p).is_dir()))
    return py


# About 15 s on two cores (pip wheel, venv, pip install --no-index, one subprocess): in the default
# suite, since this is the check that the distribution is usable; nothing touches the network.
def test_wheel_installed_outside_the_checkout_loads_every_tag_offline(tmp_path) -> None:
    src = _source_copy(tmp_path / "src")
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--no-index", "-q", "-w", str(wheels), str(src)], check=True, cwd=tmp_path)
    (wheel,) = wheels.glob("hsizoo-*.whl")
    with zipfile.ZipFile(wheel) as z:
        in_wheel = {n.removeprefix("hsizoo/") for n in z.namelist() if n.startswith("hsizoo/")}
    assert _published_files() <= in_wheel

    venv = tmp_path / "venv"
    py = _venv_over_this_environment(venv)
    # --force-reinstall: this environment's editable hsizoo must not count as "already satisfied".
    subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "--no-index", "--force-reinstall",
                    "-q", str(wheel)], check=True, cwd=tmp_path)

    work = tmp_path / "elsewhere"
    work.mkdir()
    script = textwrap.dedent("""
        import json, sys
        import timm
        import hsizoo
        from hsizoo.hub.load import resolve
        out = {"file": hsizoo.__file__, "timm": timm.__file__, "loaded": {}}
        for tag in hsizoo.list_pretrained():
            model = hsizoo.create_model(tag, pretrained=True)
            found = resolve(timm.models.get_pretrained_cfg(tag).to_dict())
            out["loaded"][tag] = [found.source, str(found.path), found.sha256,
                                  sum(p.numel() for p in model.parameters())]
        print(json.dumps(out))
    """)
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "HSIZOO_HUB_MIRROR", "HF_ENDPOINT")}
    env.update(HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(tmp_path / "empty-cache"),
               HF_HOME=str(tmp_path / "hf-home"), OMP_NUM_THREADS="1")
    run = subprocess.run([str(py), "-c", script], cwd=work, env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    site = Path(out["file"]).resolve()
    assert venv.resolve() in site.parents and REPO_ROOT not in site.parents
    # The dependencies are this suite's own, not whatever the base interpreter happens to hold.
    assert Path(out["timm"]).resolve() == Path(timm.__file__).resolve()
    assert sorted(out["loaded"]) == TAGS
    for tag, (source, path, sha, params) in out["loaded"].items():
        assert source == "shipped" and venv.resolve() in Path(path).resolve().parents
        assert sha == timm.models.get_pretrained_cfg(tag).to_dict()["sha256"]
        assert params > 0

    # The console script of the installed wheel works there too.
    dl = subprocess.run([str(venv / "bin" / "hsizoo"), "download", TAGS[0], "--to", "airgap"],
                        cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert dl.returncode == 0, dl.stderr[-3000:]
    assert json.loads((work / "airgap" / TAGS[0] / "config.json").read_text())["sha256"] == \
        out["loaded"][TAGS[0]][2]
