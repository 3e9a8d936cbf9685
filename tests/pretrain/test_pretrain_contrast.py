"""Tests of the view-agreement (InfoNCE) term of pretraining: views, determinism, sharding, the
loss itself, and that it leaves the reconstruction-only recipe unchanged when off."""
from __future__ import annotations

import importlib
import math
from pathlib import Path

import pytest
import torch

pt = importlib.import_module("hsizoo.pretrain")
SPEC = "simulated:enmap:24x24:1"
RECIPE = dict(model="s2former_test", batch_size=8, lr=3e-3, seed=3)


@pytest.fixture(scope="module")
def scene():
    return pt.load_scene_spec(SPEC)


@pytest.fixture(scope="module")
def data(scene):
    enc = pt.build_objective(pt.PretrainConfig(model="s2former_test")).encoder
    return pt.PretrainData([scene], enc)


def test_views_are_reproducible_sharded_and_leave_other_draws_unchanged(data) -> None:
    plain = data.sample(5, 0, 8, 0.7, 0.4)[0]
    a = data.sample(5, 0, 8, 0.7, 0.4, view_offset=2)[0]
    b = data.sample(5, 0, 8, 0.7, 0.4, view_offset=2)[0]
    assert plain.views is None
    assert a.views.shape == (2,) + tuple(a.xc.shape)
    assert torch.equal(a.views, b.views)
    # Turning the views on does not change the patches and masks of the recipe without them.
    assert torch.equal(a.xc, plain.xc) and torch.equal(a.spatial_mask, plain.spatial_mask)
    assert torch.equal(a.spectral_mask, plain.spectral_mask)
    # Two processes with half the batch draw the same views as one process.
    r0 = data.sample(5, 0, 4, 0.7, 0.4, rank=0, world_size=2, view_offset=2)[0]
    r1 = data.sample(5, 0, 4, 0.7, 0.4, rank=1, world_size=2, view_offset=2)[0]
    torch.testing.assert_close(torch.cat([r0.views, r1.views], 1), a.views)
    # The views are augmented (not copies of the patch) and differ from each other.
    assert not torch.allclose(a.views[0], a.xc) and not torch.allclose(a.views[0], a.views[1])
    # Uncovered grid points stay zero in the views.
    missing = ~a.present
    if missing.any():
        assert a.views[:, :, missing].abs().max() == 0


def test_offset_zero_views_are_the_same_pixel_up_to_augmentation(data) -> None:
    from hsizoo.pretrain.data import _dihedral

    sb = data.sample(3, 0, 8, 0.7, 0.4, view_offset=0)[0]
    # With offset 0 both views are the same patch: dihedral transforms keep the centre pixel in
    # place, so the centre spectra agree up to gain, offset and noise (correlation near 1).
    c = sb.xc.shape[-1] // 2
    va, vb = sb.views[0][:, :, c, c], sb.views[1][:, :, c, c]
    pres = sb.present

    def z(v):
        v = v[:, pres]
        return (v - v.mean(1, keepdim=True)) / v.std(1, keepdim=True)

    corr = (z(va) * z(vb)).mean(1)
    assert (corr > 0.9).all()
    assert _dihedral(sb.xc, torch.zeros(8, dtype=torch.long).numpy()).equal(sb.xc)


def test_contrast_term_is_logged_weighted_and_trains_the_encoder(data) -> None:
    torch.manual_seed(0)
    model = pt.build_objective(pt.PretrainConfig(model="s2former_test", contrast_weight=0.7))
    batches = data.sample(1, 0, 8, 0.7, 0.4, view_offset=2)
    out = model(batches)
    assert {"contrast", "rec_spatial", "loss"} <= out.keys()
    # InfoNCE over 8 pairs at initialisation: about log(8), never negative.
    assert 0 < float(out["contrast"].detach()) < 3 * math.log(8)
    expected = out["rec_spatial"] + out["rec_spectral"] + 0.5 * out["fdc"] + 0.7 * out["contrast"]
    torch.testing.assert_close(out["loss"], expected)
    model.zero_grad()
    out["contrast"].backward()
    assert model.encoder.blocks[0].parameters().__next__().grad.abs().sum() > 0
    # Without views the term cannot be computed, and says why.
    with pytest.raises(ValueError, match="view_offset"):
        model(data.sample(1, 0, 8, 0.7, 0.4))


def test_contrast_off_builds_no_projector_and_export_drops_it(tmp_path: Path, scene) -> None:
    import hsizoo
    from safetensors.torch import load_file

    assert not hasattr(pt.build_objective(pt.PretrainConfig(model="s2former_test")), "decoder_proj")
    res = pt.pretrain([scene], tmp_path / "run", steps=4, progress=False, contrast_weight=1.0,
                      **RECIPE)
    recs = pt.read_log(tmp_path / "run")
    assert all("contrast" in r and r["contrast"] > 0 for r in recs)
    folder = pt.export_pretrained(tmp_path / "run", tmp_path / "out", tag="cl")
    assert not [k for k in load_file(str(folder / "model.safetensors")) if "decoder" in k]
    m = hsizoo.create_model(folder)
    for k, v in res.encoder.state_dict().items():
        assert torch.equal(m.state_dict()[k], v), k


def test_bad_contrast_options_are_refused() -> None:
    for bad in (dict(contrast_weight=-1.0), dict(contrast_temperature=0.0),
                dict(view_offset=-1), dict(projector_dim=0)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            pt.PretrainConfig(**bad)
