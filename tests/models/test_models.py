"""Every registered model: forward/backward across sensors, head reset, timm interface."""
from __future__ import annotations

import numpy as np
import pytest
import timm
import torch

import hsizoo
from hsizoo.models._factory import list_models
from hsizoo.spectral.sensors import get_sensor

MODELS = list_models()
SENSORS = {
    "aviris_indian_pines": 200,  # AVIRIS, water bands removed
    "rosis": 103,                # ROSIS (Pavia University)
    "sentinel2_msi": 13,         # a 13-band multispectral set
}


def _patches(model: torch.nn.Module, bands: int, n: int = 4) -> torch.Tensor:
    return torch.randn(n, bands, model.patch_size, model.patch_size)


def test_registry_lists_the_family() -> None:
    assert {"s2former_test", "s2former_tiny", "s2former_small", "s2former_base"} <= set(MODELS)
    # The registry is shared with timm's: hsizoo's names are timm's names.
    assert set(MODELS) <= set(timm.list_models())


# Every model on AVIRIS; every sensor on the test variant (larger variants cost minutes each).
CASES = [(m, "aviris_indian_pines") for m in MODELS] + [
    ("s2former_test", s) for s in SENSORS if s != "aviris_indian_pines"]


@pytest.mark.parametrize("name,sensor", CASES)
def test_forward_backward_reaches_every_parameter(name: str, sensor: str) -> None:
    model = hsizoo.create_model(name, num_classes=5)
    wl = get_sensor(sensor).wavelengths
    assert len(wl) == SENSORS[sensor]
    x = _patches(model, len(wl))
    logits = model(x, wl)
    assert logits.shape == (4, 5) and torch.isfinite(logits).all()
    loss = logits.square().sum()
    if hasattr(model, "mask_token_sp"):
        # Masked forward so that the pretraining mask tokens of S2Former are exercised too.
        sp_mask = torch.zeros(4, model.patch_size ** 2, dtype=torch.bool)
        sp_mask[:, :3] = True
        se_mask = torch.zeros(4, model.num_groups, dtype=torch.bool)
        se_mask[:, 2] = True
        sp, se, _ = model.forward_tokens(x, wl, spatial_mask=sp_mask, spectral_mask=se_mask)
        loss = loss + sp.square().mean() + se.square().mean()
    loss.backward()
    frozen = [k for k, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert frozen == [], f"parameters without gradient: {frozen}"


@pytest.mark.parametrize("name", MODELS)
def test_timm_interface_and_head_reset(name: str) -> None:
    model = timm.create_model(name, num_classes=16, sensor="aviris_indian_pines")
    x = _patches(model, 200, n=3)
    feats = model.forward_features(x)
    assert feats.shape[0] == 3 and torch.isfinite(feats).all()
    pre = model.forward_head(feats, pre_logits=True)
    assert pre.shape == (3, model.head_hidden_size)
    assert model.get_classifier().out_features == 16
    model.reset_classifier(7)
    assert model(x).shape == (3, 7) and model.num_classes == 7
    assert model.model_args["num_classes"] == 7
    model.reset_classifier(0)
    assert model(x).shape == (3, model.head_hidden_size)


def test_uncovered_groups_do_not_change_pooled_features() -> None:
    """Spectral tokens of groups a sensor lacks are filled from covered ones, not pooled as junk."""
    model = hsizoo.create_model("s2former_test").eval()
    wl = get_sensor("sentinel2_msi").wavelengths
    x = _patches(model, len(wl))
    sp, se, gp = model.forward_tokens(x, wl)
    assert not bool(gp.all())
    pooled = model.forward_head(model.forward_features(x, wl), pre_logits=True)
    expected = torch.cat([sp[:, sp.shape[1] // 2], se[:, gp].mean(1)], dim=-1)
    torch.testing.assert_close(pooled, expected)


def test_missing_wavelengths_are_refused_with_guidance() -> None:
    model = hsizoo.create_model("s2former_test")
    with pytest.raises(ValueError, match="sensor="):
        model(_patches(model, 200))
    with pytest.raises(ValueError, match="200 bands"):
        model(_patches(model, 200), wavelengths=np.linspace(400, 2500, 199))


def test_same_sensor_same_output_whatever_band_subset_order() -> None:
    """Spectral identity is data: the output depends on wavelengths, not on band count alone."""
    model = hsizoo.create_model("s2former_test").eval()
    wl = np.linspace(400, 2500, 211)
    x = torch.randn(2, 211, model.patch_size, model.patch_size)
    # A sensor sampled exactly on the grid and the same data with a shifted wavelength differ.
    out_a = model(x, wl)
    out_b = model(x, wl + 30.0)
    assert not torch.allclose(out_a, out_b)


def test_wrong_patch_size_is_a_clear_error() -> None:
    model = hsizoo.create_model("s2former_test", sensor="aviris_indian_pines")
    with pytest.raises(ValueError, match="Expected patches"):
        model(torch.randn(2, 200, 9, 9))


@pytest.mark.parametrize("name", MODELS)
def test_save_pretrained_round_trip_gives_identical_outputs(name: str, tmp_path) -> None:
    model = hsizoo.create_model(name, num_classes=4).eval()
    wl = get_sensor("rosis").wavelengths
    x = _patches(model, len(wl), n=2)
    hsizoo.save_pretrained(model, tmp_path / "ckpt")
    assert {"model.safetensors", "config.json", "README.md"} <= {
        p.name for p in (tmp_path / "ckpt").iterdir()}
    loaded = hsizoo.create_model(str(tmp_path / "ckpt")).eval()
    assert type(loaded) is type(model) and loaded.model_args == model.model_args
    with torch.inference_mode():
        torch.testing.assert_close(loaded(x, wl), model(x, wl), rtol=0, atol=0)


def test_timm_layer_decay_and_grad_checkpointing() -> None:
    """group_matcher feeds timm's layer-wise decay; checkpointing keeps the gradients."""
    import torch
    from timm.optim import create_optimizer_v2

    import hsizoo

    m = hsizoo.create_model("s2former_test", num_classes=3, sensor="aviris_indian_pines")
    opt = create_optimizer_v2(m, "adamw", lr=1e-3, layer_decay=0.5)
    scales = sorted({round(g["lr_scale"], 4) for g in opt.param_groups})
    # stem, one group per block (two), then the norms and head at full rate.
    assert scales == [0.125, 0.25, 0.5, 1.0]
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(m.parameters()))
    x = torch.randn(3, 200, m.patch_size, m.patch_size)
    grads = []
    for enable in (False, True):
        m.zero_grad()
        m.set_grad_checkpointing(enable)
        m(x).sum().backward()
        grads.append([p.grad.clone() for p in m.parameters() if p.grad is not None])
    assert len(grads[0]) == len(grads[1]) > 0
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(*grads))
