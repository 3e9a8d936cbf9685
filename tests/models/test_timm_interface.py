"""timm's interface on hsizoo models: features_only / forward_intermediates / feature_info, the
pretrained_cfg (input_size), and `hf-hub:` loading through timm against the local Hub server."""
from __future__ import annotations

import json
import shutil

import pytest
import timm
import torch

import hsizoo
from hsizoo.models._factory import create_model
from hsizoo.hub.save import save_pretrained
from hsizoo.hub.shipped import WEIGHTS_DIR
from hsizoo.spectral.sensors import get_sensor

WL = get_sensor("enmap").wavelengths
TAG = "s2former_tiny.ssl_simulated"


def _x(model: torch.nn.Module, n: int = 2) -> torch.Tensor:
    p = model.patch_size
    return torch.randn(n, WL.size, p, p, generator=torch.Generator().manual_seed(3))



# ----------------------------------------------------------------------- features_only

@pytest.mark.parametrize("name", ["s2former_test", "s2former_tiny", "hybridsn_test"])
def test_features_only_gives_per_level_maps_described_by_feature_info(name: str) -> None:
    model = timm.create_model(name, features_only=True).eval()
    base = timm.create_model(name).eval()
    depth = len(base.blocks)
    info = model.feature_info
    # S2Former: the embedding (stem), then every block; HybridSN: its four convolutions.
    stem = ["pixel_embed"] if name.startswith("s2former") else []
    assert info.module_name() == stem + [f"blocks.{i}" for i in range(depth)]
    assert info.channels() == [d["num_chs"] for d in base.feature_info]
    with torch.no_grad():
        feats = model(_x(base), WL)
    assert len(feats) == len(info.channels()) >= 3  # timm's minimum of feature levels
    assert [f.shape[1] for f in feats] == info.channels()
    assert all(f.ndim == 4 and f.shape[0] == 2 for f in feats)
    assert "num_classes" not in model.pretrained_cfg  # timm's feature pretrained_cfg


def test_features_only_out_indices_prunes_and_matches_the_full_model() -> None:
    full = create_model("s2former_tiny.ssl_simulated", pretrained=True).eval()
    feats = create_model("s2former_tiny.ssl_simulated", pretrained=True, features_only=True,
                         out_indices=(1,)).eval()  # level 1: block 0 (level 0 is the stem)
    assert len(feats.model.blocks) == 1 and feats.feature_info.module_name() == ["blocks.0"]
    stem = create_model("s2former_tiny.ssl_simulated", pretrained=True, features_only=True,
                        out_indices=(0,)).eval()
    assert len(stem.model.blocks) == 0 and stem.feature_info.module_name() == ["pixel_embed"]
    x = _x(full)
    with torch.no_grad():
        (f0,) = feats(x, WL)
        (s0,) = stem(x, WL)
        final, inter = full.forward_intermediates(x, WL)
        assert torch.equal(final, full.forward_features(x, WL))
        sp, _, _ = full._embed(x, WL)  # the embedded spatial tokens, before any block
    assert len(inter) == len(full.blocks) + 1
    assert f0.shape == (2, full.embed_dim, full.patch_size, full.patch_size)
    assert torch.allclose(f0, inter[1], atol=1e-6)
    assert torch.allclose(s0, inter[0], atol=1e-6)
    assert torch.allclose(s0.flatten(2).transpose(1, 2), sp, atol=1e-6)
    # Pretrained weights were loaded before wrapping: the features are not those of a fresh model.
    fresh = create_model("s2former_tiny", features_only=True, out_indices=(1,)).eval()
    with torch.no_grad():
        assert not torch.allclose(fresh(x, WL)[0], f0)


def test_forward_intermediates_formats_and_spectral_tokens() -> None:
    model = create_model("s2former_test").eval()
    x = _x(model)
    with torch.no_grad():
        nlc = model.forward_intermediates(x, WL, indices=1, output_fmt="NLC",
                                          intermediates_only=True)
        both = model.forward_intermediates(x, WL, indices=[-1], norm=True,
                                           return_spectral_tokens=True, intermediates_only=True)
        fmap = model.forward_features(x, WL)  # (B, P, P, 2D)
    n_sp, D = model.patch_size ** 2, model.embed_dim
    assert nlc[0].shape == (2, n_sp, D)
    sp_map, se = both[0]
    # With the final norms, the last block's intermediates are what forward_features' map is
    # made of: each pixel's spatial token, then the mean spectral token.
    assert torch.allclose(sp_map.permute(0, 2, 3, 1), fmap[..., :D], atol=1e-6)
    assert torch.allclose(se.mean(1)[:, None, None].expand(-1, 5, 5, -1), fmap[..., D:], atol=1e-6)
    with pytest.raises(ValueError, match="output_fmt"):
        model.forward_intermediates(x, WL, output_fmt="NHWC")
    with pytest.raises(AssertionError, match="out of range"):
        model.forward_intermediates(x, WL, indices=[5])


# ----------------------------------------------------------------------- pretrained_cfg

def test_pretrained_cfg_input_size_names_real_bands() -> None:
    from hsizoo.hub.cfg import grid_band_count

    for name in hsizoo.list_models():
        cfg = timm.models.get_pretrained_cfg(name).to_dict()
        bands, p, q = cfg["input_size"]
        model = timm.create_model(name)
        assert p == q == model.patch_size, name
        want = get_sensor(cfg["sensor"]).num_bands if cfg.get("sensor") else grid_band_count()
        assert bands == want and bands > 0, name
    assert timm.models.get_pretrained_cfg("s2former_tiny.ssl_indianpines").input_size == (200, 7, 7)
    assert timm.models.get_pretrained_cfg(TAG).input_size == (211, 7, 7)
    # timm's data config reads it (in_chans = bands).
    data = timm.data.resolve_data_config(model=timm.create_model(TAG))
    assert data["input_size"] == (211, 7, 7)


def test_config_json_carries_a_pretrained_cfg_timm_accepts(tmp_path) -> None:
    model = create_model("s2former_test", num_classes=3)
    folder = save_pretrained(model, tmp_path / "m", config=dict(
        tag="unit", hf_hub_id="x/y", class_names=["a", "b", "c"]))
    cfg = json.loads((folder / "config.json").read_text())
    pc = cfg["pretrained_cfg"]
    timm.models.PretrainedCfg(**pc)  # only timm's fields
    assert pc["architecture"] == "s2former_test" and pc["tag"] == "unit"
    assert pc["num_classes"] == 3 and pc["label_names"] == ["a", "b", "c"]
    assert pc["input_size"] == [211, 5, 5] and "hf_hub_id" not in pc
    # hsizoo's own fields stay.
    assert cfg["architecture"] == "s2former_test" and cfg["model_args"]["num_classes"] == 3
    for tag in hsizoo.list_pretrained():
        shipped = json.loads((WEIGHTS_DIR / tag / "config.json").read_text())
        timm.models.PretrainedCfg(**shipped["pretrained_cfg"])
        assert shipped["pretrained_cfg"]["architecture"] == tag.split(".")[0]


# ----------------------------------------------------------------------- hf-hub: through timm

def _state_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_timm_hf_hub_loads_a_checkpoint_from_the_hub(hub, tmp_path) -> None:
    repo = "hsizoo-test/s2former_test.unit"
    model = create_model("s2former_test", num_classes=4).eval()
    shutil.copytree(save_pretrained(model, tmp_path / "saved", config=dict(tag="unit", hf_hub_id=repo)),
                    hub.repo_dir(repo))
    loaded = timm.create_model(f"hf-hub:{repo}", pretrained=True).eval()
    assert type(loaded).__name__ == "S2Former" and loaded.num_classes == 4
    assert _state_equal(loaded, model)
    gets = [p for m, p in hub.requests if m == "GET"]
    assert any(p.endswith(f"{repo}/resolve/main/config.json") for p in gets)
    assert any(p.endswith(f"{repo}/resolve/main/model.safetensors") for p in gets)
    x = _x(model)
    with torch.no_grad():
        assert torch.equal(loaded(x, WL), model(x, WL))


def test_timm_hf_hub_of_a_published_tag_uses_the_shipped_copy_of_that_version(hub, tmp_path) -> None:
    hub_id = timm.models.get_pretrained_cfg(TAG).to_dict()["hf_hub_id"]
    shutil.copytree(WEIGHTS_DIR / TAG, hub.repo_dir(hub_id))
    loaded = timm.create_model(f"hf-hub:{hub_id}", pretrained=True)
    assert _state_equal(loaded, create_model(TAG, pretrained=True))
    gets = [p for m, p in hub.requests if m == "GET"]
    assert any(p.endswith("/config.json") for p in gets)
    assert not any(p.endswith("/model.safetensors") for p in gets)  # same sha256: shipped copy

    # A newer version on the Hub is what hf-hub: means: it is downloaded, not the shipped one.
    newer = save_pretrained(create_model("s2former_tiny"), tmp_path / "newer",
                            config=dict(tag="ssl_simulated", hf_hub_id=hub_id))
    shutil.rmtree(hub.repo_dir(hub_id))
    shutil.copytree(newer, hub.repo_dir(hub_id))
    point_cache = tmp_path / "cache2"
    from huggingface_hub import constants

    constants.HF_HUB_CACHE = str(point_cache)  # restored by the fixture's monkeypatch
    fresh = timm.create_model(f"hf-hub:{hub_id}", pretrained=True)
    assert _state_equal(fresh, create_model(str(newer)))
    assert not _state_equal(fresh, loaded)


def test_saved_input_size_names_the_training_sensors_bands(tmp_path) -> None:
    import json

    import hsizoo
    from hsizoo.hub.save import save_pretrained
    from hsizoo.spectral.sensors import get_sensor

    model = hsizoo.create_model("s2former_test")
    folder = save_pretrained(model, tmp_path / "m", config={"sensor": "aviris_indian_pines"})
    size = json.loads((folder / "config.json").read_text())["pretrained_cfg"]["input_size"]
    assert size == [len(get_sensor("aviris_indian_pines").wavelengths), 5, 5]
    other = save_pretrained(model, tmp_path / "n")
    assert json.loads((other / "config.json").read_text())["pretrained_cfg"]["input_size"][0] \
        != size[0]
