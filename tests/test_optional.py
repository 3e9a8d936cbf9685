"""Optional dependencies missing: the error names the extra that installs them."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from hsizoo._optional import MissingExtraError, require
from scenes import three_class_scene


def _uninstall(monkeypatch: pytest.MonkeyPatch, package: str) -> None:
    """Make ``package`` and its submodules unimportable, as if not installed."""
    for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, package, None)


def test_require_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    _uninstall(monkeypatch, "matplotlib")
    with pytest.raises(MissingExtraError, match=r'Plotting needs .*matplotlib.*hsizoo\[plot\]'):
        require("matplotlib.pyplot", "Plotting")
    assert require("json", "x").dumps(1) == "1"


def test_quicklook_without_matplotlib(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from hsizoo.io import save_quicklook

    scene = three_class_scene()
    _uninstall(monkeypatch, "matplotlib")
    with pytest.raises(MissingExtraError, match=r"quicklook PNG .*hsizoo\[plot\]"):
        save_quicklook(tmp_path / "q.png", scene, scene.labels)
    assert not list(tmp_path.iterdir())


def test_mat73_without_h5py(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import h5py

    from hsizoo.io import read_scene

    path = tmp_path / "cube.mat"
    with h5py.File(path, "w") as f:  # MATLAB v7.3 files are HDF5
        f["cube"] = np.zeros((3, 4, 5), np.float32)
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(MissingExtraError, match=r"v7.3 .*hsizoo\[matlab\]"):
        read_scene(path, wavelengths=[500, 600, 700])


def test_simulation_without_earthlib(monkeypatch: pytest.MonkeyPatch) -> None:
    from hsizoo.data.spectral_library import _earthlib_data_dir

    monkeypatch.setitem(sys.modules, "earthlib", None)
    with pytest.raises(MissingExtraError, match=r"hsizoo\[simulate\]"):
        _earthlib_data_dir()


def test_cli_reports_a_missing_extra_in_one_line(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path, capsys) -> None:
    from hsizoo.cli import main

    import h5py

    path = tmp_path / "cube.mat"
    with h5py.File(path, "w") as f:
        f["cube"] = np.zeros((3, 4, 5), np.float32)
    monkeypatch.setitem(sys.modules, "h5py", None)
    labels = tmp_path / "l.npy"
    np.save(labels, np.ones((4, 3), int))
    code = main(["finetune", str(path), str(labels), "--out", str(tmp_path / "m.tif"), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "hsizoo[matlab]" in err and "Traceback" not in err
