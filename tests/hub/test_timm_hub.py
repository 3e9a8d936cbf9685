"""timm's own Hub and data tools on hsizoo models, against the local Hub (tests/hub_server.py).

resolve_data_config reports the real normalisation; timm's push_to_hf_hub / save_for_hf and
``hsizoo push`` publish, and ``hf-hub:`` names load back through timm and hsizoo alike; a user's
own file goes through timm's overlay; offline ``hf-hub:`` fails clearly or uses a local copy;
revisions pinned to commits survive a moved branch. Nothing reaches the internet.
"""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from huggingface_hub import constants
from safetensors.torch import save_file

import hsizoo
from hsizoo.cli import main
from hsizoo.hub import shipped
from hsizoo.hub.load import load_pretrained
from hsizoo.hub.save import save_pretrained
from hsizoo.hub.verify import CheckpointError, CheckpointNotFoundError

WL = np.linspace(420.0, 2450.0, 24)


def _x(bands: int = WL.size, p: int = 5) -> torch.Tensor:
    return torch.randn(3, bands, p, p, generator=torch.Generator().manual_seed(1))


def _out(model: torch.nn.Module, x: torch.Tensor, wl=WL) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(x, wavelengths=wl)


def _random_test_model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return hsizoo.create_model("s2former_test", num_classes=4).eval()


# ------------------------------------------------------------------ 1. data config


@pytest.mark.parametrize("name", ["s2former_test", "hybridsn_test", *hsizoo.list_pretrained()])
def test_resolve_data_config_reports_per_band_standardised_input(name: str) -> None:
    model = hsizoo.create_model(name)
    cfg = timm.data.resolve_model_data_config(model)
    bands = cfg["input_size"][0]
    assert bands == model.in_chans and cfg["input_size"][1:] == (model.patch_size,) * 2
    # per-scene standardisation: the model sees mean 0 and std 1 in every band, not ImageNet RGB
    assert cfg["mean"] == (0.0,) * bands and cfg["std"] == (1.0,) * bands
    assert cfg["interpolation"] == "nearest" and cfg["crop_pct"] == 1.0
    assert "per-band standardisation of each scene" in model.pretrained_cfg["normalisation"]
    assert model.pretrained_cfg["fixed_input_size"] is True  # P x P is an architecture argument


@pytest.mark.parametrize("tag", hsizoo.list_pretrained())
def test_published_configs_carry_the_same_data_fields(tag: str) -> None:
    cfg = timm.models.get_pretrained_cfg(tag).to_dict()
    folder = shipped.shipped_folder(cfg["hf_hub_id"])
    block = json.loads((folder / "config.json").read_text())["pretrained_cfg"]
    bands = block["input_size"][0]
    assert block["mean"] == [0.0] * bands and block["std"] == [1.0] * bands
    assert block["interpolation"] == "nearest" and block["fixed_input_size"] is True


def test_an_old_config_without_mean_still_resolves_truthfully(tmp_path: Path) -> None:
    folder = save_pretrained(_random_test_model(0), tmp_path / "old")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["pretrained_cfg"].update(mean=[], std=[], interpolation="")  # as written before
    (folder / "config.json").write_text(json.dumps(cfg))
    model = timm.create_model(f"local-dir:{folder}", pretrained=True)
    data = timm.data.resolve_model_data_config(model)
    assert data["mean"] == (0.0,) * model.in_chans and data["interpolation"] == "nearest"


# ------------------------------------------------------------------ 2. timm's export and push


def test_timm_save_for_hf_round_trip(tmp_path: Path) -> None:
    model = _random_test_model(1)
    timm.models.save_for_hf(model, tmp_path / "out", safe_serialization=True)
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["model_args"]["embed_dim"] == 16  # every argument that rebuilds it
    for name in (f"local-dir:{tmp_path / 'out'}",):
        for create in (timm.create_model, hsizoo.create_model):
            back = create(name, pretrained=True)
            assert torch.equal(_out(model, _x()), _out(back, _x()))


def test_timm_push_to_hf_hub_then_hf_hub_names_through_timm_and_hsizoo(hub) -> None:
    model = _random_test_model(2)
    # Loaded from a published tag first: its pins (sha256 of *that* file) must not follow the
    # fine-tuned weights into the new repository.
    tiny = hsizoo.create_model("s2former_tiny.ssl_indianpines", pretrained=True, num_classes=3)
    with torch.no_grad():
        tiny.head.weight.add_(1.0)
    timm.models.push_to_hf_hub(model, "me/s2t", safe_serialization=True)
    timm.models.push_to_hf_hub(tiny, "me/tiny-ft", safe_serialization=True)
    assert set(hub.files("me/s2t")) == {"model.safetensors", "config.json", "README.md"}
    for create in (timm.create_model, hsizoo.create_model):
        assert torch.equal(_out(model, _x()), _out(create("hf-hub:me/s2t", pretrained=True), _x()))
        back = create("hf-hub:me/tiny-ft", pretrained=True)
        x = _x(WL.size, 7)
        assert torch.equal(_out(tiny, x), _out(back, x))
    assert any(p.endswith("/me/tiny-ft/resolve/main/model.safetensors") for _, p in hub.requests)


def test_hsizoo_push_cli_uploads_folder_and_records_commit(hub, tmp_path, monkeypatch, capsys) -> None:
    revisions = tmp_path / "revisions.json"
    monkeypatch.setattr(shipped, "REVISIONS_FILE", revisions)
    model = _random_test_model(3)
    folder = save_pretrained(model, tmp_path / "ck", config=dict(tag="mine", license="mit"))
    assert main(["push", str(folder), "me/mine", "--record-revision"]) == 0
    commit = hub.commit_hash("me/mine")
    assert f"commit {commit}" in capsys.readouterr().out
    assert json.loads(revisions.read_text()) == {"me/mine": commit}
    assert set(hub.files("me/mine")) == {"model.safetensors", "config.json", "README.md"}
    assert "library_name: timm" in (hub.repo_dir("me/mine") / "README.md").read_text()
    back = hsizoo.create_model(f"hf-hub:me/mine@{commit}", pretrained=True)
    assert torch.equal(_out(model, _x()), _out(back, _x()))
    # A model name: the weights are saved (safetensors + config + card) and uploaded.
    assert main(["push", "s2former_test", "me/untrained"]) == 2  # no weights to publish
    assert main(["push", str(tmp_path / "nowhere.bin"), "me/x"]) == 2


# ------------------------------------------------------------------ 3. the user's own file


def test_users_own_file_through_timms_overlay(tmp_path, caplog) -> None:
    torch.manual_seed(4)
    mine = hsizoo.create_model("s2former_tiny").eval()
    path = tmp_path / "my.safetensors"
    save_file(mine.state_dict(), str(path))
    with caplog.at_level(logging.WARNING, logger="hsizoo.hub.load"):
        loaded = timm.create_model("s2former_tiny", pretrained=True,
                                   pretrained_cfg_overlay=dict(file=str(path)))
    x = _x(WL.size, 7)
    assert torch.equal(_out(mine, x), _out(loaded, x))
    assert "unverified" in caplog.text and str(path) in caplog.text
    assert loaded.pretrained_cfg.get("sha256") is None  # the published pin is not this file's
    # A pin the user gives is still checked; a pickle is still refused before it is read.
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        timm.create_model("s2former_tiny", pretrained=True,
                          pretrained_cfg_overlay=dict(file=str(path), sha256="0" * 64))
    pth = tmp_path / "my.pth"
    torch.save(mine.state_dict(), pth)
    with pytest.raises(CheckpointError, match="pickle"):
        timm.create_model("s2former_tiny", pretrained=True, pretrained_cfg_overlay=dict(file=str(pth)))


# ------------------------------------------------------------------ 4. hf-hub offline


def test_hf_hub_offline_is_a_clear_hsizoo_error(hub, monkeypatch) -> None:
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(CheckpointNotFoundError) as e:
        hsizoo.create_model("hf-hub:me/never-cached", pretrained=True)
    msg = str(e.value)
    assert "HF_HUB_OFFLINE=1" in msg and "hsizoo download me/never-cached" in msg
    assert "local-dir:DIR" in msg and "LocalEntryNotFoundError" not in msg
    assert hub.requests == []  # offline means no request at all


def test_readme_hf_hub_example_works_offline_from_the_shipped_copy(hub, monkeypatch) -> None:
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    model = hsizoo.create_model("hf-hub:hsizoo/s2former_tiny.ssl_simulated", pretrained=True)
    ref = hsizoo.create_model("s2former_tiny.ssl_simulated", pretrained=True)
    x = _x(WL.size, 7)
    assert torch.equal(_out(model, x), _out(ref, x)) and hub.requests == []
    # A revision the shipped copy is not known to be is not served from it.
    with pytest.raises(CheckpointNotFoundError, match="not revision"):
        hsizoo.create_model("hf-hub:hsizoo/s2former_tiny.ssl_simulated@" + "1" * 40, pretrained=True)


def test_hf_hub_through_timm_offline_once_cached(hub, tmp_path, monkeypatch) -> None:
    model = _random_test_model(5)
    shutil.copytree(save_pretrained(model, tmp_path / "ck"), hub.repo_dir("me/cached"))
    assert main(["download", "me/cached"]) == 0  # fills the Hugging Face cache
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    n = len(hub.requests)
    for create in (timm.create_model, hsizoo.create_model):
        assert torch.equal(_out(model, _x()), _out(create("hf-hub:me/cached", pretrained=True), _x()))
    assert len(hub.requests) == n


# ------------------------------------------------------------------ 5. revisions are commits


def test_registry_revisions_are_commits_or_unset() -> None:
    recorded = json.loads(shipped.REVISIONS_FILE.read_text())
    for tag in hsizoo.list_pretrained():
        cfg = timm.models.get_pretrained_cfg(tag).to_dict()
        rev = cfg.get("hf_hub_revision")
        assert rev == recorded.get(cfg["hf_hub_id"])  # from revisions.json, never "main"
        assert rev is None or (len(rev) == 40 and int(rev, 16) >= 0)
        assert cfg["sha256"]  # with or without a commit, the published file is pinned
    with pytest.raises(ValueError, match="commit hash"):
        shipped.record_revision("me/x", "main", Path("/nonexistent/revisions.json"))


def test_a_moved_branch_does_not_change_what_a_pinned_revision_loads(hub, tmp_path) -> None:
    first, second = _random_test_model(6), _random_test_model(7)
    repo = "me/pinned"
    a = save_pretrained(first, tmp_path / "a", config=dict(tag="a", hf_hub_id=repo))
    b = save_pretrained(second, tmp_path / "b", config=dict(tag="b", hf_hub_id=repo))
    shutil.copytree(a, hub.repo_dir(repo))
    commit_a = hub.snapshot(repo)
    sha_a = json.loads((a / "config.json").read_text())["sha256"]
    shutil.rmtree(hub.repo_dir(repo))
    shutil.copytree(b, hub.repo_dir(repo))  # main moves on to other weights
    assert hub.snapshot(repo) != commit_a
    pinned = dict(architecture="s2former_test", tag="a", hf_hub_id=repo,
                  hf_hub_revision=commit_a, sha256=sha_a)
    model = hsizoo.create_model("s2former_test", num_classes=4)
    info = load_pretrained(model, pinned)
    assert info["source"] == "hub" and torch.equal(_out(first, _x()), _out(model, _x()))
    assert ("GET", f"/{repo}/resolve/{commit_a}/model.safetensors") in hub.requests
    at_a = hsizoo.create_model(f"hf-hub:{repo}@{commit_a}", pretrained=True)
    at_main = hsizoo.create_model(f"hf-hub:{repo}", pretrained=True)
    assert torch.equal(_out(first, _x()), _out(at_a, _x()))
    assert torch.equal(_out(second, _x()), _out(at_main, _x()))
    # Unpinned but sha256-pinned: the moved branch is refused, never silently loaded.
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_pretrained(hsizoo.create_model("s2former_test", num_classes=4),
                        {**pinned, "hf_hub_revision": None})


def test_timm_create_model_hf_hub_offline_uses_hsizoo_copy(hub, monkeypatch, caplog) -> None:
    """timm's own factory gets hsizoo's fallback for hsizoo's repositories (README's example),
    and only for them: another repository still fails the way timm fails."""
    import logging

    from huggingface_hub import errors as hf_errors

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with caplog.at_level(logging.WARNING, logger="hsizoo.hub.hf_names"):
        model = timm.create_model("hf-hub:hsizoo/s2former_tiny.ssl_simulated", pretrained=True)
    ref = hsizoo.create_model("s2former_tiny.ssl_simulated", pretrained=True)
    x = _x(WL.size, 7)
    assert torch.equal(_out(model, x), _out(ref, x)) and hub.requests == []
    assert "local copy" in caplog.text
    with pytest.raises(hf_errors.LocalEntryNotFoundError):
        timm.create_model("hf-hub:me/never-cached", pretrained=True)
    # A revision the shipped copy was not published as: a clear error, not the wrong weights.
    with pytest.raises(CheckpointNotFoundError) as e:
        timm.create_model("hf-hub:hsizoo/s2former_tiny.ssl_simulated@" + "a" * 40,
                          pretrained=True)
    msg = str(e.value)
    assert "Tried, in order" in msg and "a" * 40 in msg and "hsizoo download" in msg
    # The wrapper is installed once, whatever imports hsizoo.models again.
    from timm.models import _factory

    from hsizoo.hub.hf_names import install_timm_fallback

    fn = _factory.load_model_config_from_hf
    assert install_timm_fallback() and _factory.load_model_config_from_hf is fn
    assert not getattr(fn.__wrapped__, "_hsizoo_fallback", False)
