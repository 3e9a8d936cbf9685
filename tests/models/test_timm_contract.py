"""timm's model contract, checked directly on every registered model (what timm's own
tests/test_models.py checks in test_model_default_cfgs and test_model_forward_features):
forward_features is the unpooled map, forward_head pools it, reset_classifier(0, "") keeps it,
and features_only gives at least three levels whose sizes match their reductions."""
from __future__ import annotations

import math

import pytest
import timm
import torch

import hsizoo
from hsizoo.models._factory import list_models
from hsizoo.spectral.sensors import get_sensor

MODELS = list_models()
WL = get_sensor("aviris_indian_pines").wavelengths


def _x(model: torch.nn.Module, n: int = 2) -> torch.Tensor:
    p = model.patch_size
    return torch.randn(n, WL.size, p, p, generator=torch.Generator().manual_seed(0))


def _spatial_channel_axes(model: torch.nn.Module) -> tuple[tuple[int, int], int]:
    fmt = getattr(model, "output_fmt", "NCHW")  # what timm's tests read
    return ((1, 2), 3) if fmt == "NHWC" else ((2, 3), 1)


@pytest.mark.parametrize("name", MODELS)
def test_forward_features_is_the_unpooled_map_and_forward_head_pools_it(name: str) -> None:
    model = hsizoo.create_model(name, num_classes=5).eval()
    x = _x(model)
    (h, w), c = _spatial_channel_axes(model)
    pool_size = model.pretrained_cfg["pool_size"]
    with torch.no_grad():
        fmap = model.forward_features(x, WL)
        pre = model.forward_head(fmap, pre_logits=True)
        logits = model(x, WL)
        assert fmap.ndim == 4 and (fmap.shape[h], fmap.shape[w]) == tuple(pool_size)
        assert fmap.shape[c] == model.num_features
        assert pre.shape == (2, model.head_hidden_size)
        torch.testing.assert_close(logits, model.get_classifier()(pre), rtol=0, atol=0)

        model.reset_classifier(0)  # the pooling stays: pooled features
        torch.testing.assert_close(model(x, WL), pre, rtol=0, atol=0)
        model.reset_classifier(0, "")  # no pooling: forward_features' map itself
        torch.testing.assert_close(model(x, WL), fmap, rtol=0, atol=0)
        model.reset_classifier(3)  # still unpooled: a classifier per pixel of the map
        per_pixel = model(x, WL)
        assert per_pixel.ndim == 4 and per_pixel.shape[c] == 3
        assert (per_pixel.shape[h], per_pixel.shape[w]) == tuple(pool_size)
        assert model.model_args["global_pool"] == ""  # rebuilds as it is

        built = hsizoo.create_model(name, num_classes=0, global_pool="").eval()
        built.load_state_dict(model.state_dict(), strict=False)  # the same body, no head
        torch.testing.assert_close(built(x, WL), fmap, rtol=0, atol=0)
    assert "global_pool" not in hsizoo.create_model(name).model_args  # the default is implied


@pytest.mark.parametrize("name", ["s2former_test", "hybridsn_test"])
def test_unknown_global_pool_is_refused_with_the_choices(name: str) -> None:
    with pytest.raises(ValueError, match="global_pool = one of"):
        hsizoo.create_model(name, global_pool="avg")
    model = hsizoo.create_model(name)
    with pytest.raises(ValueError, match="got 'max'"):
        model.reset_classifier(2, "max")
    assert model.num_classes == 0  # refused before anything changed


def test_s2former_map_holds_each_pixels_spatial_token_and_the_mean_spectral_token() -> None:
    model = hsizoo.create_model("s2former_test").eval()
    x, P, D = _x(model, n=3), model.patch_size, model.embed_dim
    wl = get_sensor("sentinel2_msi").wavelengths  # covers only some spectral groups
    x = torch.randn(3, wl.size, P, P, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        fmap = model.forward_features(x, wl)
        sp, se, gp = model.forward_tokens(x, wl)
        pre = model.forward_head(fmap, pre_logits=True)
    assert not bool(gp.all())
    assert fmap.shape == (3, P, P, 2 * D) and model.num_features == 2 * D
    torch.testing.assert_close(fmap[..., :D], sp.unflatten(1, (P, P)), rtol=0, atol=0)
    mean_se = se[:, gp].mean(1)  # over the covered groups only
    torch.testing.assert_close(fmap[..., D:], mean_se[:, None, None].expand(-1, P, P, -1))
    # The "centre" pooling reads the centre pixel; pool_tokens gives it from the tokens.
    torch.testing.assert_close(pre, fmap[:, P // 2, P // 2], rtol=0, atol=0)
    torch.testing.assert_close(pre, model.pool_tokens(sp, se, gp), rtol=0, atol=0)
    torch.testing.assert_close(fmap, model.features_from_tokens(sp, se, gp), rtol=0, atol=0)


@pytest.mark.parametrize("name", MODELS)
def test_features_only_has_three_levels_whose_sizes_match_their_reductions(name: str) -> None:
    feats = timm.create_model(name, features_only=True).eval()
    base = timm.create_model(name)
    info = feats.feature_info
    assert len(info.channels()) >= 3
    P = base.patch_size
    with torch.no_grad():
        maps = feats(_x(base, n=1), WL)
    assert [m.shape[1] for m in maps] == info.channels()
    for m, r in zip(maps, info.reduction()):
        side = m.shape[-1]
        # timm's FeatureInfo: sizes follow input / reduction (the bounds timm's test applies).
        assert side <= math.ceil(P / r) + 1 and side > P / (2 * r), (name, side, r)
        assert m.shape[-2] == side


def test_hybridsn_reductions_are_the_input_side_over_each_valid_convolution_map() -> None:
    for P, want in ((9, [1, 1, 3, 9]), (11, [1, 1, 2, 3])):
        model = hsizoo.create_model("hybridsn_test", patch_size=P).eval()
        sides = [P - 2 * (i + 1) for i in range(4)]
        assert [d["reduction"] for d in model.feature_info] == want
        assert all(P // r >= s for r, s in zip(want, sides))  # no level claims fewer pixels
        with torch.no_grad():
            inter = model.forward_intermediates(
                torch.randn(1, WL.size, P, P), WL, intermediates_only=True)
        assert [t.shape[-1] for t in inter] == sides
