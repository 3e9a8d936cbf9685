"""The fused inference path (hsizoo.predict.fused) equals the model's own forward: every block
depth, with and without attention biases, partial spectral coverage, after the weights change,
and it leaves the model and its checkpoint keys untouched."""
from __future__ import annotations

import numpy as np
import pytest
import timm
import torch

import hsizoo  # noqa: F401  (registers the models)
from hsizoo.data.patches import prepare_cube
from hsizoo.predict.engine import SharedPredictor, predict_naive
from hsizoo.predict.fused import FusedS2Former, fusable


def _data(b: int = 12, lo: float = 450.0, hi: float = 2300.0, h: int = 9, w: int = 8,
          P: int = 5) -> tuple[torch.Tensor, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    cube = rng.normal(0.0, 1.0, size=(h, w, b)).astype(np.float32)
    rows, cols = np.nonzero(np.ones((h, w), bool))
    return prepare_cube(cube, None, P), rows, cols, np.linspace(lo, hi, b)


def _model(**kw) -> torch.nn.Module:
    torch.manual_seed(0)
    model = timm.create_model("s2former_test", num_classes=3, **kw).eval()
    with torch.no_grad():  # non-trivial norms and biases, so that folding them is tested
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith(".bias"):
                p.add_(0.3 * torch.randn_like(p))
    return model


@pytest.mark.parametrize("kw", [dict(depth=2), dict(depth=3, qkv_bias=False),
                                dict(depth=2, num_heads=4, center_size=1)])
@pytest.mark.parametrize("lo,hi", [(450.0, 2300.0), (430.0, 860.0)])  # most / few groups
def test_fused_equals_model(kw: dict, lo: float, hi: float) -> None:
    model = _model(**kw)
    padded, rows, cols, wl = _data(lo=lo, hi=hi)
    naive = predict_naive(model, padded, rows, cols, wl, batch_size=16)
    fused = SharedPredictor(model, wl, batch_size=7).predict_padded(padded, rows, cols)
    plain = SharedPredictor(model, wl, batch_size=7, fused=False).predict_padded(
        padded, rows, cols)
    torch.testing.assert_close(fused, naive, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(plain, naive, atol=1e-5, rtol=1e-5)
    feats = SharedPredictor(model, wl).predict_padded(padded, rows, cols, pre_logits=True)
    P = model.patch_size
    x = torch.stack([padded[:, r:r + P, c:c + P] for r, c in zip(rows, cols)])
    with torch.no_grad():
        ref = model.forward_head(model.forward_features(x, wl), pre_logits=True)
    torch.testing.assert_close(feats, ref, atol=1e-5, rtol=1e-5)


def test_only_covered_groups_are_computed() -> None:
    model = _model(depth=2)
    _, present = model.canonicalize(torch.zeros(1, 12, 5, 5), np.linspace(430.0, 860.0, 12))
    fz = FusedS2Former.from_model(model, present)
    covered = model.group_presence(present)
    assert 0 < int(covered.sum()) < model.num_groups
    assert fz.groups.tolist() == torch.nonzero(covered).flatten().tolist()


def test_fused_reads_the_current_weights_and_leaves_the_model_alone() -> None:
    model = _model(depth=2)
    keys = {k: v.clone() for k, v in model.state_dict().items()}
    padded, rows, cols, wl = _data()
    pred = SharedPredictor(model, wl)
    before = pred.predict_padded(padded, rows, cols)
    assert model.state_dict().keys() == keys.keys()
    assert all(torch.equal(v, keys[k]) for k, v in model.state_dict().items())
    with torch.no_grad():  # training changes the weights between two uses of one predictor
        model.blocks[-1].mlp_sp.fc2.weight.mul_(3.0)
        model.blocks[0].norm_se_kv.bias.add_(0.5)
    after = pred.predict_padded(padded, rows, cols)
    assert not torch.allclose(before, after, atol=1e-3)
    naive = predict_naive(model, padded, rows, cols, wl, batch_size=16)
    torch.testing.assert_close(after, naive, atol=1e-5, rtol=1e-5)


def test_unknown_blocks_fall_back_to_the_model() -> None:
    model = _model(depth=2)
    assert fusable(model)
    model.blocks[0].mlp_sp.norm = torch.nn.LayerNorm(model.blocks[0].mlp_sp.fc1.out_features)
    assert not fusable(model)
    padded, rows, cols, wl = _data()
    out = SharedPredictor(model, wl).predict_padded(padded, rows, cols)
    torch.testing.assert_close(out, predict_naive(model, padded, rows, cols, wl, batch_size=16),
                               atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("lo,hi,folded", [(430.0, 860.0, True), (450.0, 2300.0, False)])
def test_cross_attention_is_folded_onto_few_spectral_groups(lo: float, hi: float,
                                                            folded: bool) -> None:
    """Few covered groups (3 x 2 heads against D = 16): the cross-attentions run on the spectral
    side; many (12 x 2): the plain fused way. Both equal the model (test_fused_equals_model)."""
    model = _model(depth=2)
    _, present = model.canonicalize(torch.zeros(1, 12, 5, 5), np.linspace(lo, hi, 12))
    fz = FusedS2Former.from_model(model, present)
    assert all(("cross_fold" in blk.cross) is folded for blk in fz.blocks)
    padded, rows, cols, wl = _data(lo=lo, hi=hi)
    out = SharedPredictor(model, wl, batch_size=5).predict_padded(padded, rows, cols)
    naive = predict_naive(model, padded, rows, cols, wl, batch_size=16)
    torch.testing.assert_close(out, naive, atol=1e-5, rtol=1e-5)
