"""Dataset catalogue: entries, missing-file errors, verified atomic downloads from a local server."""
from __future__ import annotations

import dataclasses
import hashlib
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest_io import write_mat_v5

from hsizoo.data import catalogue, download as datasets
from hsizoo.data.catalogue import (
    DatasetInfo,
    FileInfo,
    get_dataset_info,
    list_datasets,
)
from hsizoo.data.download import load_dataset, verify_file

SHARED_HSI = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "hsi"


def test_catalogue_entries_are_consistent():
    names = list_datasets()
    assert {"indian_pines", "indian_pines_220", "pavia_university", "pavia_centre", "salinas",
            "salinas_a", "ksc", "botswana"} <= set(names)
    from hsizoo.spectral.sensors import list_sensors

    for name in names:
        info = get_dataset_info(name)
        assert len(info.class_colors) == info.num_classes == len(set(info.class_names))
        for f in info.files:
            assert f.url.startswith("http://www.ehu.eus/ccwintco/uploads/")
            assert f.url.endswith("/" + f.name)
            # MediaWiki stores uploads under md5(name)[0]/md5(name)[:2]/name
            h = hashlib.md5(f.name.encode()).hexdigest()
            assert f.url.endswith(f"/{h[0]}/{h[:2]}/{f.name}")
            assert f.sha256 is None or len(f.sha256) == 64
        if name != "indian_pines_220":
            assert info.sensor in list_sensors()
    ip = get_dataset_info("Indian-Pines")
    assert ip.shape == (145, 145, 200) and ip.num_classes == 16
    assert ip.cube.sha256.startswith("ec2f8808") and ip.cube.size == 5_953_527
    assert get_dataset_info("salinas_a").label_remap == {1: 1, 10: 2, 11: 3, 12: 4, 13: 5, 14: 6}
    with pytest.raises(KeyError, match="indian_pines"):
        get_dataset_info("nope")


def test_missing_files_error_names_files_folder_and_address(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_dataset("pavia_university", root=tmp_path)
    msg = str(err.value)
    assert "PaviaU.mat" in msg and "PaviaU_gt.mat" in msg and str(tmp_path) in msg
    assert "http://www.ehu.eus/ccwintco/uploads/e/ee/PaviaU.mat" in msg
    assert "download=True" in msg


def test_default_root_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("HSIZOO_DATA_DIR", str(tmp_path))
    assert datasets.default_root() == tmp_path
    monkeypatch.delenv("HSIZOO_DATA_DIR")
    assert datasets.default_root() == Path.home() / ".cache" / "hsizoo" / "data"


# --- downloads against a local server -----------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    truncate: set[str] = set()
    requests: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        name = self.path.rsplit("/", 1)[-1]
        self.requests.append(name)
        if name not in self.files:
            self.send_error(404, "Not Found")
            return
        body = self.files[name]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if name in self.truncate:
            self.wfile.write(body[: len(body) // 2])  # then drop the connection
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args) -> None:  # keep test output quiet
        pass


@pytest.fixture
def server():
    handler = type("H", (_Handler,), {"files": {}, "truncate": set(), "requests": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{httpd.server_address[1]}/mirror"
    httpd.shutdown()
    httpd.server_close()


def _tiny_dataset(tmp_path: Path, handler, monkeypatch) -> tuple[np.ndarray, np.ndarray]:
    """Serve a tiny two-file dataset and patch it into the catalogue as 'tiny'."""
    rng = np.random.default_rng(0)
    cube = rng.integers(100, 4000, size=(6, 5, 103)).astype(np.uint16)
    gt = rng.integers(0, 4, size=(6, 5)).astype(np.uint8)
    gen = tmp_path / "gen"
    gen.mkdir()
    raw = {"Tiny.mat": write_mat_v5(gen / "Tiny.mat", {"tiny": cube}).read_bytes(),
           "Tiny_gt.mat": write_mat_v5(gen / "Tiny_gt.mat", {"tiny_gt": gt}).read_bytes()}
    handler.files.update(raw)

    def fi(name: str, var: str) -> FileInfo:
        return FileInfo(name, f"http://invalid.example/{name}", var, len(raw[name]),
                        hashlib.sha256(raw[name]).hexdigest())

    info = DatasetInfo("tiny", "Tiny", fi("Tiny.mat", "tiny"), fi("Tiny_gt.mat", "tiny_gt"),
                       (6, 5, 103), "rosis", ("a", "b", "c"), ((1, 2, 3),) * 3)
    monkeypatch.setitem(catalogue._CATALOGUE, "tiny", info)
    return cube, gt


def test_download_verifies_and_loads(tmp_path, server, monkeypatch):
    handler, url = server
    cube, gt = _tiny_dataset(tmp_path, handler, monkeypatch)
    root = tmp_path / "data"
    scene = load_dataset("tiny", root=root, download=True, base_url=url, progress=False)
    np.testing.assert_array_equal(scene.cube, cube.astype(np.float32))
    np.testing.assert_array_equal(scene.labels, gt)
    assert scene.class_names == ["a", "b", "c"] and scene.wavelengths.size == 103
    assert scene.meta["verified"] == {"Tiny.mat": True, "Tiny_gt.mat": True}
    assert sorted(p.name for p in root.iterdir()) == ["Tiny.mat", "Tiny_gt.mat"]
    # present files are not fetched again
    handler.requests.clear()
    load_dataset("tiny", root=root, download=True, base_url=url, progress=False)
    assert handler.requests == []


def test_download_url_from_env(tmp_path, server, monkeypatch):
    handler, url = server
    _tiny_dataset(tmp_path, handler, monkeypatch)
    monkeypatch.setenv("HSIZOO_DATASET_URL", url)
    load_dataset("tiny", root=tmp_path / "data", download=True, progress=False)
    assert sorted(handler.requests) == ["Tiny.mat", "Tiny_gt.mat"]


def test_corrupted_download_leaves_nothing(tmp_path, server, monkeypatch):
    handler, url = server
    _tiny_dataset(tmp_path, handler, monkeypatch)
    body = bytearray(handler.files["Tiny.mat"])
    body[200] ^= 0xFF  # same size, different bytes
    handler.files["Tiny.mat"] = bytes(body)
    root = tmp_path / "data"
    with pytest.raises(ValueError, match="sha256"):
        load_dataset("tiny", root=root, download=True, base_url=url, progress=False)
    assert not (root / "Tiny.mat").exists()
    assert [p.name for p in root.iterdir() if p.name.startswith(".") or "part" in p.name] == []


def test_truncated_transfer_leaves_nothing(tmp_path, server, monkeypatch):
    handler, url = server
    _tiny_dataset(tmp_path, handler, monkeypatch)
    handler.truncate.add("Tiny.mat")
    root = tmp_path / "data"
    with pytest.raises(OSError, match="broke off"):
        load_dataset("tiny", root=root, download=True, base_url=url, progress=False)
    assert not (root / "Tiny.mat").exists()
    assert [p.name for p in root.iterdir() if p.name.startswith(".") or "part" in p.name] == []


def test_http_404(tmp_path, server, monkeypatch):
    handler, url = server
    _tiny_dataset(tmp_path, handler, monkeypatch)
    del handler.files["Tiny_gt.mat"]
    root = tmp_path / "data"
    with pytest.raises(OSError, match="404"):
        load_dataset("tiny", root=root, download=True, base_url=url, progress=False)
    assert not (root / "Tiny_gt.mat").exists()
    assert [p.name for p in root.iterdir() if p.name.startswith(".") or "part" in p.name] == []


def test_local_file_verification(tmp_path, server, monkeypatch):
    handler, url = server
    _tiny_dataset(tmp_path, handler, monkeypatch)
    root = tmp_path / "data"
    load_dataset("tiny", root=root, download=True, base_url=url, progress=False)
    path = root / "Tiny_gt.mat"
    good = path.read_bytes()
    path.write_bytes(good[:-3])
    with pytest.raises(ValueError, match="truncated"):
        load_dataset("tiny", root=root)
    path.write_bytes(good[:-3] + b"xyz")
    with pytest.raises(ValueError, match="sha256"):
        load_dataset("tiny", root=root)
    info = dataclasses.replace(get_dataset_info("tiny").gt, sha256=None, size=None)
    with pytest.warns(UserWarning, match="cannot verify"):
        assert verify_file(path, info) is False


@pytest.mark.integration
def test_real_indian_pines():
    if not (SHARED_HSI / "Indian_pines_corrected.mat").is_file():
        pytest.skip(f"real Indian Pines not found in {SHARED_HSI}")
    scene = load_dataset("indian_pines", root=SHARED_HSI)
    assert scene.cube.shape == (145, 145, 200) and scene.wavelengths.size == 200
    assert len(scene.class_names) == 16 and scene.class_names[0] == "Alfalfa"
    assert int((scene.labels > 0).sum()) == 10_249
    assert np.bincount(scene.labels.ravel(), minlength=17)[1:].tolist() == [
        46, 1428, 830, 237, 483, 730, 28, 478, 20, 972, 2455, 593, 205, 1265, 386, 93]
    assert scene.meta["verified"] == {"Indian_pines_corrected.mat": True,
                                      "Indian_pines_gt.mat": True}
    assert scene.cube.min() == 955 and scene.cube.max() == 9604
