"""Pretrained weights: save, publish, resolve (file, mirror, Hub cache, Hub) and verified loading.

The Hub is a local server (tests/hub_server.py) that huggingface_hub talks to for real; nothing
here reaches the internet.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from hub_server import HubServer
from safetensors.torch import load_file, save_file

from hsizoo.hub.card import render_model_card
from hsizoo.models._factory import create_model
from hsizoo.io.atomic import file_sha256
from hsizoo.hub.load import load_pretrained, locate_checkpoint, resolve_checkpoint
from hsizoo.hub.save import push_to_hub, save_pretrained, verify_folder
from hsizoo.hub.verify import CheckpointError, CheckpointNotFoundError

REPO = "hsizoo-test/s2former_test.unit"
WL = np.linspace(420.0, 2450.0, 24)  # 24 bands


@pytest.fixture
def x() -> torch.Tensor:
    return torch.randn(3, WL.size, 5, 5, generator=torch.Generator().manual_seed(1))


@pytest.fixture
def saved(tmp_path: Path) -> tuple[torch.nn.Module, Path]:
    """An s2former_test with a 4-class head, saved with save_pretrained."""
    model = create_model("s2former_test", num_classes=4).eval()
    folder = save_pretrained(model, tmp_path / "saved", config=dict(
        tag="unit", hf_hub_id=REPO, sensor="aviris_indian_pines", license="apache-2.0"))
    return model, folder



def _publish(server: HubServer, folder: Path, repo_id: str = REPO) -> str:
    shutil.copytree(folder, server.repo_dir(repo_id))
    return server.commit_hash(repo_id)


def _hub_overlay(folder: Path, revision: str | None, repo_id: str = REPO) -> dict:
    sha = json.loads((folder / "config.json").read_text())["sha256"]
    return dict(hf_hub_id=repo_id, sha256=sha, hf_hub_revision=revision)


def _out(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(x, wavelengths=WL)


def test_download_from_local_hub_gives_identical_model(saved, hub, x, tmp_path) -> None:
    model, folder = saved
    commit = _publish(hub, folder)
    loaded = create_model("s2former_test", pretrained=True, num_classes=4,
                          pretrained_cfg_overlay=_hub_overlay(folder, commit))
    assert torch.equal(_out(model, x), _out(loaded, x))
    got = [r for r in hub.requests if "/resolve/" in r[1]]
    assert ("HEAD", f"/{REPO}/resolve/{commit}/model.safetensors") in got
    assert ("GET", f"/{REPO}/resolve/{commit}/model.safetensors") in got
    # It landed in the Hugging Face cache of this test, config.json beside it.
    path = resolve_checkpoint(dict(_hub_overlay(folder, commit)))
    assert tmp_path / "hf-cache" in path.parents
    assert (path.parent / "config.json").is_file()


def test_tampered_download_is_refused_with_checksum_error(saved, hub) -> None:
    _, folder = saved
    _publish(hub, folder)
    served = hub.repo_dir(REPO) / "model.safetensors"
    data = bytearray(served.read_bytes())
    data[-3:] = bytes(b ^ 0xFF for b in data[-3:])  # flip bytes inside the last tensor
    served.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum mismatch") as err:
        create_model("s2former_test", pretrained=True, num_classes=4,
                     pretrained_cfg_overlay=_hub_overlay(folder, None))
    msg = str(err.value)
    assert file_sha256(folder / "model.safetensors") in msg
    assert "tampered" in msg and "model.safetensors" in msg
    assert not isinstance(err.value, CheckpointNotFoundError)


def test_missing_repository_names_every_place_tried(hub, tmp_path, monkeypatch) -> None:
    mirror = tmp_path / "mirror"
    monkeypatch.setenv("HSIZOO_HUB_MIRROR", str(mirror))
    cfg = dict(architecture="s2former_test", tag="gone", hf_hub_id="hsizoo-test/gone")
    with pytest.raises(CheckpointNotFoundError) as err:
        resolve_checkpoint(cfg)
    msg = str(err.value)
    assert str(mirror / "hsizoo-test" / "gone" / "model.safetensors") in msg
    assert str(mirror / "gone" / "model.safetensors") in msg
    assert "repository not found" in msg and hub.endpoint in msg
    assert "HSIZOO_HUB_MIRROR" in msg and "checkpoint_path=" in msg
    assert isinstance(err.value, FileNotFoundError)


def test_offline_mode_uses_warm_cache_and_fails_clearly_when_cold(saved, hub, x, tmp_path,
                                                                  monkeypatch) -> None:
    from huggingface_hub import constants

    model, folder = saved
    _publish(hub, folder)
    overlay = _hub_overlay(folder, None)  # unpinned: "main" is resolved through the cache refs
    create_model("s2former_test", pretrained=True, num_classes=4, pretrained_cfg_overlay=overlay)
    hub.requests.clear()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    loaded = create_model("s2former_test", pretrained=True, num_classes=4,
                          pretrained_cfg_overlay=overlay)
    assert torch.equal(_out(model, x), _out(loaded, x))
    assert hub.requests == []  # offline means no request at all
    assert locate_checkpoint(overlay).startswith("Hugging Face cache ")

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "cold-cache"))
    with pytest.raises(CheckpointNotFoundError, match=r"offline \(HF_HUB_OFFLINE=1\)"):
        resolve_checkpoint(overlay)
    assert hub.requests == []
    assert locate_checkpoint(overlay).startswith("unavailable: offline")


def test_mirror_folder_is_used_before_the_hub(saved, hub, x, tmp_path, monkeypatch) -> None:
    model, folder = saved
    cfg = dict(_hub_overlay(folder, None), architecture="s2former_test")
    assert locate_checkpoint(cfg).startswith("would download " + hub.endpoint)
    # Repository-name layout in the second mirror folder; the first does not exist.
    mirror = tmp_path / "mirror"
    shutil.copytree(folder, mirror / "s2former_test.unit")
    monkeypatch.setenv("HSIZOO_HUB_MIRROR", f"{tmp_path / 'absent'}{__import__('os').pathsep}{mirror}")
    loaded = create_model("s2former_test", pretrained=True, num_classes=4,
                          pretrained_cfg_overlay=cfg)
    assert torch.equal(_out(model, x), _out(loaded, x))
    assert hub.requests == []
    info = load_pretrained(loaded, cfg)
    assert info["source"] == "mirror"
    assert info["path"] == str(mirror / "s2former_test.unit" / "model.safetensors")
    # org/repo layout wins over the bare name in the same mirror.
    shutil.copytree(folder, mirror / "hsizoo-test" / "s2former_test.unit")
    assert resolve_checkpoint(cfg) == mirror / "hsizoo-test" / "s2former_test.unit" / "model.safetensors"


def test_corrupt_mirror_copy_falls_through_to_the_hub(saved, hub, tmp_path, monkeypatch) -> None:
    _, folder = saved
    _publish(hub, folder)
    mirror = tmp_path / "mirror"
    shutil.copytree(folder, mirror / REPO)
    (mirror / REPO / "model.safetensors").write_bytes(b"not a checkpoint")
    monkeypatch.setenv("HSIZOO_HUB_MIRROR", str(mirror))
    path = resolve_checkpoint(_hub_overlay(folder, None))
    assert tmp_path / "hf-cache" in path.parents


def test_explicit_folder_and_file(saved, x, tmp_path) -> None:
    model, folder = saved
    from_folder = create_model(folder)
    assert from_folder.architecture == "s2former_test" and from_folder.num_classes == 4
    assert torch.equal(_out(model, x), _out(from_folder, x))
    from_file = create_model("s2former_test", checkpoint_path=folder / "model.safetensors",
                             num_classes=4)
    assert torch.equal(_out(model, x), _out(from_file, x))
    with pytest.raises(CheckpointNotFoundError, match="does not exist"):
        create_model("s2former_test", checkpoint_path=tmp_path / "nowhere" / "model.safetensors")


def test_corrupt_file_without_checksum_is_a_clear_error(tmp_path) -> None:
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{garbage")
    with pytest.raises(CheckpointError, match="not a valid safetensors file"):
        create_model("s2former_test", checkpoint_path=bad)


def test_pickles_are_refused_without_unpickling(saved, tmp_path, monkeypatch) -> None:
    model, _ = saved
    pth = tmp_path / "weights.pth"
    torch.save(model.state_dict(), pth)

    def _no_load(*args, **kwargs):
        raise AssertionError("torch.load must never be called")

    monkeypatch.setattr(torch, "load", _no_load)
    with pytest.raises(CheckpointError, match="pickle"):
        create_model("s2former_test", checkpoint_path=pth, num_classes=4)
    (tmp_path / "pkl").mkdir()
    shutil.copy(pth, tmp_path / "pkl" / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="pickle"):
        verify_folder(tmp_path / "pkl")


def test_ssl_backbone_into_classifier_replaces_exactly_the_head(tmp_path) -> None:
    backbone = create_model("s2former_test", num_classes=0)  # head = Identity, no head keys
    folder = save_pretrained(backbone, tmp_path / "ssl")
    clf = create_model("s2former_test", num_classes=16)
    info = load_pretrained(clf, dict(file=str(folder)))
    assert info["head_replaced"] and info["dropped_keys"] == []
    assert set(info["missing_keys"]) == {"head.weight", "head.bias"}
    for k, v in backbone.state_dict().items():
        assert torch.equal(clf.state_dict()[k], v), k

    # A 4-class checkpoint into a 16-class model: its head is dropped, the rest loaded.
    four = save_pretrained(create_model("s2former_test", num_classes=4), tmp_path / "four")
    info = load_pretrained(clf, dict(file=str(four)))
    assert info["dropped_keys"] == ["head.bias", "head.weight"]
    # Same head shape: loaded strictly, head kept.
    info = load_pretrained(create_model("s2former_test", num_classes=4), dict(file=str(four)))
    assert not info["head_replaced"] and info["missing_keys"] == []


def test_unexpected_or_missing_keys_are_refused(tmp_path) -> None:
    model = create_model("s2former_test", num_classes=3)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    extra = dict(state, **{"extra.weight": torch.zeros(2)})
    save_file(extra, tmp_path / "extra.safetensors")
    with pytest.raises(CheckpointError, match="extra.weight"):
        load_pretrained(create_model("s2former_test", num_classes=3),
                        dict(file=str(tmp_path / "extra.safetensors")))
    # Extra key while the head is being replaced: still refused, with the key named.
    with pytest.raises(CheckpointError, match="extra.weight"):
        load_pretrained(create_model("s2former_test", num_classes=7),
                        dict(file=str(tmp_path / "extra.safetensors")))
    missing = {k: v for k, v in state.items() if k != "pos_embed"}
    save_file(missing, tmp_path / "missing.safetensors")
    with pytest.raises(CheckpointError, match="pos_embed"):
        load_pretrained(create_model("s2former_test", num_classes=3),
                        dict(file=str(tmp_path / "missing.safetensors")))
    # Another architecture's weights: a shape error that names the saved arguments.
    small = save_pretrained(create_model("s2former_tiny"), tmp_path / "tiny")
    with pytest.raises(CheckpointError, match="shape mismatch") as err:
        load_pretrained(create_model("s2former_test"), dict(file=str(small)))
    assert "architecture='s2former_tiny'" in str(err.value)


def test_save_pretrained_writes_a_hub_repository(saved) -> None:
    model, folder = saved
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["architecture"] == "s2former_test"
    assert cfg["model_args"] == model.model_args and cfg["num_classes"] == 4
    assert cfg["grid"] == [400.0, 2500.0, 10.0]
    assert cfg["sha256"] == file_sha256(folder / "model.safetensors")
    assert cfg["sensor"] == "aviris_indian_pines" and cfg["hsizoo_version"] and cfg["torch_version"]
    state = load_file(str(folder / "model.safetensors"))
    assert state.keys() == model.state_dict().keys()
    assert verify_folder(folder)["sha256"] == cfg["sha256"]


def test_save_pretrained_refuses_to_overwrite_and_keeps_extra_files(saved) -> None:
    model, folder = saved
    (folder / "loss_curve.png").write_bytes(b"\x89PNG fake")
    with pytest.raises(FileExistsError, match="overwrite=True") as err:
        save_pretrained(model, folder)
    assert str(folder) in str(err.value)
    other = create_model("s2former_test", num_classes=4)
    save_pretrained(other, folder, overwrite=True, config=dict(loss_curve="loss_curve.png"))
    assert (folder / "loss_curve.png").read_bytes() == b"\x89PNG fake"
    assert not list(folder.glob(".*.tmp"))  # no temp files left behind
    assert json.loads((folder / "config.json").read_text())["sha256"] == file_sha256(
        folder / "model.safetensors")
    assert "![Training loss curve](loss_curve.png)" in (folder / "README.md").read_text()


def test_model_card_is_rendered_from_config_fields() -> None:
    import yaml

    cfg = dict(architecture="s2former_base", tag="ssl-ip", hf_hub_id="hsizoo/s2former_base.ssl-ip",
               hf_hub_revision="0123456789abcdef0123456789abcdef01234567", license="cc-by-4.0",
               datasets=["indian_pines"], model_args=dict(embed_dim=128, depth=6), num_classes=0,
               grid=[400.0, 2500.0, 10.0], sha256="ab" * 32,
               training=dict(steps=1234, wall_time_s=567.8, hardware="2 CPU cores", final_loss=0.0421),
               results=[dict(dataset="indian_pines", shots=10, OA=0.8123)],
               loss_curve="loss.png", class_names=["corn", "grass"])
    card = render_model_card(cfg)
    front = yaml.safe_load(card.split("---")[1])
    # library_name: the Hub's timm integration (config.json is timm's format); no head: a
    # feature extractor, not an image classifier.
    assert front["library_name"] == "timm" and front["license"] == "cc-by-4.0"
    assert front["pipeline_tag"] == "image-feature-extraction"
    assert {"hyperspectral", "remote-sensing", "self-supervised", "hsizoo"} <= set(front["tags"])
    assert "image-classification" not in front["tags"]
    assert front["datasets"] == ["indian_pines"]
    for needle in ('hsizoo.create_model("s2former_base.ssl-ip", pretrained=True)',
                   'timm.create_model("s2former_base.ssl-ip"', "1234", "567.8", "2 CPU cores",
                   "0.0421", "| dataset | shots | OA |", "0.8123", "![Training loss curve](loss.png)",
                   "2601.18088", "400-2500 nm every 10 nm (211 points)", "ab" * 32,
                   "0123456789abcdef0123456789abcdef01234567", '"embed_dim": 128', "1. corn"):
        assert needle in card, needle
    assert "## Results" not in render_model_card(dict(architecture="s2former_test"))


def test_model_card_metadata_model_index_from_stored_results() -> None:
    import yaml

    probe = [{"scene": "indian_pines", "shots": 5, "seeds": 10, "linear": 65.0, "lp": 68.4}]
    results = [{"dataset": "indian_pines", "method": "daft", "shots": 5, "seeds": 10,
                "OA (%)": "80.0 ± 3.9", "AA (%)": "87.2 ± 2.1", "kappa": "0.775 ± 0.043"}]
    card = render_model_card(dict(architecture="s2former_tiny", tag="x", num_classes=16,
                                  probe=probe, results=results,
                                  pretrain_config=dict(scenes=["indian_pines", "simulated:enmap:a:1"])))
    front = yaml.safe_load(card.split("---")[1])
    assert front["pipeline_tag"] == "image-classification" and "image-classification" in front["tags"]
    assert front["datasets"] == ["indian_pines"]  # simulated scenes name no dataset
    assert front["metrics"] == ["accuracy", "cohen_kappa"]
    (entry,) = front["model-index"]
    assert entry["name"] == "s2former_tiny.x"
    (res,) = entry["results"]
    assert res["dataset"]["name"] == "indian_pines" and res["dataset"]["config"] == "5-shot"
    got = {(m["type"], m["value"]) for m in res["metrics"]}
    assert got == {("accuracy", 65.0), ("accuracy", 80.0), ("cohen_kappa", 0.775)}
    assert "model-index" not in render_model_card(dict(architecture="s2former_test"))


def test_push_to_hub_uploads_to_local_server_and_round_trips(saved, hub, x) -> None:
    model, folder = saved
    url = push_to_hub(folder, REPO, token="hf_test_token")
    commit = hub.commit_hash(REPO)
    assert url == f"{hub.endpoint}/{REPO}/commit/{commit}"
    assert sorted(hub.files(REPO)) == ["README.md", "config.json", "model.safetensors"]
    assert ("POST", "/api/repos/create") in hub.requests
    assert (hub.repo_dir(REPO) / "model.safetensors").read_bytes() == (
        folder / "model.safetensors").read_bytes()
    loaded = create_model("s2former_test", pretrained=True, num_classes=4,
                          pretrained_cfg_overlay=_hub_overlay(folder, commit))
    assert torch.equal(_out(model, x), _out(loaded, x))


def test_push_to_hub_refuses_inconsistent_folders(saved, hub, tmp_path) -> None:
    _, folder = saved
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    cfg = json.loads((broken / "config.json").read_text())
    cfg["sha256"] = "0" * 64
    (broken / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        push_to_hub(broken, REPO, token="hf_test_token")
    (broken / "config.json").unlink()
    with pytest.raises(CheckpointError, match="missing"):
        push_to_hub(broken, REPO, token="hf_test_token")
    assert not [r for r in hub.requests if r[0] == "POST"]


def test_two_processes_fetching_the_same_weights_both_load_them(saved, hub, x, tmp_path) -> None:
    """Two processes downloading one checkpoint into one cold cache at the same time: both load
    the right weights, and the cache holds one verified copy."""
    import subprocess
    import sys

    model, folder = saved
    overlay = _hub_overlay(folder, _publish(hub, folder))
    script = f"""
import json, numpy as np, torch
from hsizoo.models._factory import create_model
m = create_model("s2former_test", pretrained=True, num_classes=4,
                 pretrained_cfg_overlay={overlay!r}).eval()
x = torch.randn(3, 24, 5, 5, generator=torch.Generator().manual_seed(1))
with torch.no_grad():
    y = m(x, wavelengths=np.linspace(420.0, 2450.0, 24))
print(json.dumps(y.flatten().tolist()))
"""
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outs]
    want = _out(model, x).flatten().numpy()
    for out, _ in outs:
        np.testing.assert_allclose(json.loads(out.splitlines()[-1]), want, atol=1e-6)
    copies = [p for p in (tmp_path / "hf-cache").rglob("model.safetensors") if p.is_file()]
    assert copies and {file_sha256(p) for p in copies} == {overlay["sha256"]}
    blobs = [p for p in (tmp_path / "hf-cache").rglob("blobs/*") if p.is_file()]
    assert len(blobs) == 2  # model.safetensors and config.json, each once
