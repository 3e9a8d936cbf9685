"""Published checkpoints shipped in the package (hsizoo/weights/): found first, offline, verified,
used only for their own repository and version; the Hub stays the path for everything else."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import timm

import hsizoo
from hsizoo.hub import shipped as _weights
from hsizoo.models._factory import create_model
from hsizoo.io.atomic import file_sha256
from hsizoo.hub.load import locate_checkpoint, resolve
from hsizoo.hub.save import save_pretrained
from hsizoo.hub.verify import CheckpointError, CheckpointNotFoundError

REPO = "hsizoo-test/s2former_test.shipped"



@pytest.fixture
def shipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A package weights folder holding one saved s2former_test for REPO."""
    weights = tmp_path / "weights"
    model = create_model("s2former_test")
    save_pretrained(model, weights / REPO.split("/")[1],
                    config=dict(tag="shipped", hf_hub_id=REPO))
    monkeypatch.setattr(_weights, "WEIGHTS_DIR", weights)
    return weights / REPO.split("/")[1]


def _cfg(folder: Path, **kw) -> dict:
    sha = json.loads((folder / "config.json").read_text())["sha256"]
    return dict(architecture="s2former_test", tag="shipped", hf_hub_id=REPO, sha256=sha, **kw)


@pytest.mark.parametrize("tag", hsizoo.list_pretrained())
def test_every_published_tag_is_found_in_the_package_offline(tag, tmp_path, monkeypatch) -> None:
    from huggingface_hub import constants

    monkeypatch.delenv("HSIZOO_HUB_MIRROR", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    cfg = timm.models.get_pretrained_cfg(tag).to_dict()
    found = resolve(cfg)
    assert found.source == "shipped"
    assert found.path == _weights.WEIGHTS_DIR / tag / "model.safetensors"
    assert found.sha256 == cfg["sha256"]
    assert locate_checkpoint(cfg) == f"shipped with hsizoo {found.path}"
    assert _weights.shipped_folders()[cfg["hf_hub_id"]] == found.path.parent


def test_shipped_copy_is_used_before_the_hub(shipped, hub) -> None:
    shutil.copytree(shipped, hub.repo_dir(REPO))
    found = resolve(_cfg(shipped))
    assert found.source == "shipped" and found.path == shipped / "model.safetensors"
    assert hub.requests == []


def test_a_newer_version_on_the_hub_is_downloaded_not_the_shipped_one(shipped, hub, tmp_path) -> None:
    newer = save_pretrained(create_model("s2former_test"), tmp_path / "newer",
                            config=dict(tag="shipped", hf_hub_id=REPO))
    shutil.copytree(newer, hub.repo_dir(REPO))
    found = resolve(_cfg(newer))  # the pin names the newer file
    assert found.source == "hub" and tmp_path / "hf-cache" in found.path.parents
    assert found.sha256 == file_sha256(newer / "model.safetensors")
    assert any("another version" in t and str(shipped) in t for t in found.tried)


def test_shipped_copy_serves_only_the_repository_it_records(shipped, hub) -> None:
    cfg = _cfg(shipped)
    cfg["hf_hub_id"] = "someone-else/s2former_test.shipped"
    with pytest.raises(CheckpointNotFoundError) as err:
        resolve(cfg)
    assert "not among the published checkpoints" in str(err.value)
    assert "repository not found" in str(err.value)


def test_corrupt_shipped_copy_is_refused_and_the_hub_tried(shipped, hub) -> None:
    cfg = _cfg(shipped)
    (shipped / "model.safetensors").write_bytes(b"truncated")
    with pytest.raises(CheckpointError, match="checksum mismatch") as err:
        resolve(cfg)
    msg = str(err.value)
    assert "reinstall hsizoo" in msg and f"Hugging Face Hub {REPO}" in msg


def test_not_found_error_names_repository_cache_and_the_command(hub, tmp_path) -> None:
    from huggingface_hub import constants

    cfg = dict(architecture="s2former_test", tag="gone", hf_hub_id="hsizoo-test/gone")
    with pytest.raises(CheckpointNotFoundError) as err:
        resolve(cfg)
    msg = str(err.value)
    assert "`hsizoo download s2former_test.gone --to DIR`" in msg
    assert "`hsizoo download s2former_test.gone`" in msg
    assert "HSIZOO_HUB_MIRROR=DIR" in msg and "checkpoint_path=DIR/gone" in msg
    assert constants.HF_HUB_CACHE in msg and "repository hsizoo-test/gone" in msg
    assert hub.endpoint in msg
