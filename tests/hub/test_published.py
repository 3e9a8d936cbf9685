"""The published checkpoints: every registered pretrained tag ships in hsizoo/weights/ (package
data), loads offline from there, its sha256 matches the registry, and its card is the one
generated from its config."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import timm
import torch
from huggingface_hub import ModelCard

import hsizoo
from hsizoo.hub.card import render_model_card
from hsizoo.spectral.sensors import get_sensor

REPO = Path(__file__).resolve().parents[2]
TAGS = hsizoo.list_pretrained()


def test_at_least_an_in_domain_and_a_sensor_agnostic_checkpoint() -> None:
    assert any(t.endswith(".ssl_indianpines") for t in TAGS)
    assert any(t.endswith(".ssl_simulated") for t in TAGS)


def _folder(tag: str) -> Path:
    cfg = timm.models.get_pretrained_cfg(tag).to_dict()
    return REPO / "hsizoo" / "weights" / cfg["hf_hub_id"].rsplit("/", 1)[-1]


@pytest.mark.parametrize("tag", TAGS)
def test_published_folder_matches_registry_and_card(tag: str) -> None:
    cfg = timm.models.get_pretrained_cfg(tag).to_dict()
    folder = _folder(tag)
    weights = folder / "model.safetensors"
    assert weights.stat().st_size < 50 * 2**20  # modest weights files
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == cfg["sha256"]
    config = json.loads((folder / "config.json").read_text())
    assert config["architecture"] == tag.split(".")[0]
    # the card is generated from the config, not written by hand: the same metadata (compared
    # parsed, as YAML may quote a value either way) and the same text
    card, generated = ModelCard((folder / "README.md").read_text()), ModelCard(render_model_card(config))
    assert card.data.to_dict() == generated.data.to_dict() and card.text == generated.text
    tr = config["training"]
    assert tr["steps"] > 0 and tr["final_loss"] > 0 and tr["wall_time_s"] > 0
    assert (folder / config["loss_curve"]).is_file()


@pytest.mark.parametrize("tag", TAGS)
def test_published_weights_load_offline_and_differ_from_random(tag: str, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HSIZOO_HUB_MIRROR", raising=False)
    model = hsizoo.create_model(tag, pretrained=True, num_classes=5).eval()
    torch.manual_seed(0)
    fresh = hsizoo.create_model(tag.split(".")[0], num_classes=5).eval()
    trained = {k: v for k, v in model.state_dict().items() if not k.startswith("head")}
    assert any(not torch.equal(v, fresh.state_dict()[k]) for k, v in trained.items())
    wl = get_sensor("enmap").wavelengths
    x = torch.randn(3, wl.size, model.patch_size, model.patch_size)
    with torch.no_grad():
        out = model(x, wl)
    assert out.shape == (3, 5) and torch.isfinite(out).all()
