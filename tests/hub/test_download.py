"""`hsizoo download`: a checkpoint into a folder or the Hugging Face cache for offline machines,
from the copy shipped with hsizoo or from a (local) Hub, verified by sha256."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import timm
import torch

from hsizoo.cli import main
from hsizoo.models._factory import create_model
from hsizoo.hub.load import load_pretrained, resolve
from hsizoo.hub.save import save_pretrained
from hsizoo.hub.shipped import WEIGHTS_DIR

TAG = "s2former_tiny.ssl_simulated"
HUB_ID = timm.models.get_pretrained_cfg(TAG).to_dict()["hf_hub_id"]



def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_download_help_lists_the_destinations(capsys) -> None:
    assert main(["download", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--to DIR" in out and "HSIZOO_HUB_MIRROR" in out and "--from" in out
    assert main(["--help"]) == 0
    assert "download" in capsys.readouterr().out


def test_download_to_folder_copies_the_shipped_checkpoint_offline(hub, tmp_path, capsys,
                                                                 monkeypatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    out_dir = tmp_path / "airgap"
    assert main(["download", TAG, "--to", str(out_dir)]) == 0
    printed = capsys.readouterr().out
    folder = out_dir / TAG
    assert _files(folder) == _files(WEIGHTS_DIR / TAG)
    assert "from the copy shipped with hsizoo" in printed and f"HSIZOO_HUB_MIRROR={out_dir}" in printed
    assert hub.requests == []
    # The folder is what the offline machine loads: as a mirror, or explicitly.
    monkeypatch.setenv("HSIZOO_HUB_MIRROR", str(out_dir))
    cfg = timm.models.get_pretrained_cfg(TAG).to_dict()
    found = resolve(cfg)
    assert found.source == "mirror" and found.path == folder / "model.safetensors"
    ref = create_model(TAG, pretrained=True)
    assert _same_weights(create_model(str(folder)), ref)
    assert _same_weights(create_model(TAG, checkpoint_path=folder), ref)
    # A second download does not overwrite silently.
    assert main(["download", TAG, "--to", str(out_dir)]) == 2
    assert "already holds a checkpoint" in capsys.readouterr().err
    assert main(["download", TAG, "--to", str(out_dir), "--overwrite"]) == 0


def test_download_to_folder_from_the_local_hub(hub, tmp_path, capsys) -> None:
    shutil.copytree(WEIGHTS_DIR / TAG, hub.repo_dir(HUB_ID))
    assert main(["download", TAG, "--to", str(tmp_path / "dl"), "--from", "hub"]) == 0
    assert f"from the Hub ({HUB_ID})" in capsys.readouterr().out
    assert _files(tmp_path / "dl" / TAG) == _files(WEIGHTS_DIR / TAG)
    gets = {p for m, p in hub.requests if m == "GET"}
    assert any(p.endswith(f"{HUB_ID}/resolve/main/model.safetensors") for p in gets)
    assert any(p.endswith("/loss_curve.png") for p in gets)  # the card's linked files come too


def test_download_into_the_cache_then_load_offline(hub, tmp_path, capsys, monkeypatch) -> None:
    from huggingface_hub import constants

    repo = "hsizoo-test/s2former_test.download"
    model = create_model("s2former_test", num_classes=3)
    saved = save_pretrained(model, tmp_path / "saved", config=dict(tag="download", hf_hub_id=repo))
    shutil.copytree(saved, hub.repo_dir(repo))
    assert main(["download", repo]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "hf-cache") in out and "HF_HUB_OFFLINE=1" in out

    hub.requests.clear()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    sha = json.loads((saved / "config.json").read_text())["sha256"]
    loaded = create_model("s2former_test", num_classes=3)
    info = load_pretrained(loaded, dict(hf_hub_id=repo, sha256=sha, architecture="s2former_test"))
    assert info["source"] == "hub" and str(tmp_path / "hf-cache") in info["path"]
    assert _same_weights(loaded, model)
    assert hub.requests == []


def test_download_refuses_a_tampered_hub_file(hub, tmp_path, capsys) -> None:
    shutil.copytree(WEIGHTS_DIR / TAG, hub.repo_dir(HUB_ID))
    hub.wrong_bytes["model.safetensors"] = b"x" * (WEIGHTS_DIR / TAG / "model.safetensors").stat().st_size
    assert main(["download", TAG, "--to", str(tmp_path / "dl"), "--from", "hub"]) == 2
    err = capsys.readouterr().err
    assert "checksum mismatch" in err and HUB_ID in err
    assert not (tmp_path / "dl" / TAG / "model.safetensors").exists()


def test_download_errors_say_what_to_do(hub, tmp_path, capsys) -> None:
    assert main(["download", "s2former_nope.x", "--to", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Unknown model 's2former_nope.x'" in err and "published checkpoints are" in err
    assert TAG in err
    assert main(["download", "s2former_tiny.untrained", "--to", str(tmp_path)]) == 2
    assert "has no published weights" in capsys.readouterr().err
    assert main(["download", "hsizoo-test/absent"]) == 2
    err = capsys.readouterr().err
    assert "repository not found" in err and "hsizoo-test/absent" in err
    assert "`hsizoo download hsizoo-test/absent --to DIR`" in err
    assert main(["download", TAG, "--from", "package"]) == 2
    assert "filled from the Hub only" in capsys.readouterr().err
