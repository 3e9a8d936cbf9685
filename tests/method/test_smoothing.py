"""Spatial regularisation of probability maps: the Gaussian and the edge-preserving guided
filter (hsizoo.method.smoothing)."""
from __future__ import annotations

import numpy as np

from hsizoo.method.smoothing import guided_filter, principal_guide, smooth_probabilities


def _stripe_scene(h: int = 24, w: int = 24):
    """Class 0 everywhere but a 2-pixel vertical stripe of class 1; the guide sees the stripe."""
    labels = np.zeros((h, w), int)
    labels[:, 11:13] = 1
    guide = np.where(labels == 1, 1.0, 0.0)
    rng = np.random.default_rng(0)
    probs = np.where(labels[..., None] == np.arange(2), 0.8, 0.2) + rng.normal(0, 0.05, (h, w, 2))
    probs = np.clip(probs, 0.01, None)
    return labels, guide, (probs / probs.sum(-1, keepdims=True)).astype(np.float32)


def test_guided_filter_keeps_a_thin_structure_the_gaussian_erases() -> None:
    labels, guide, probs = _stripe_scene()
    valid = np.ones(labels.shape, bool)
    gf = guided_filter(probs, guide, valid, radius=4, eps=1e-3)
    assert (gf.argmax(-1) == labels).all()
    gauss = smooth_probabilities(probs, valid, 3.0)
    assert (gauss.argmax(-1)[:, 11:13] == 0).all()  # the stripe is averaged away


def test_guided_filter_removes_isolated_errors_and_is_a_distribution() -> None:
    h, w = 20, 20
    probs = np.tile(np.array([0.7, 0.2, 0.1], np.float32), (h, w, 1))
    probs[5, 5] = [0.1, 0.8, 0.1]  # an isolated error in a flat region
    valid = np.ones((h, w), bool)
    valid[0, :] = False
    guide = np.full((h, w), 0.5)
    out = guided_filter(probs, guide, valid, radius=3, eps=1e-2)
    assert out.dtype == np.float32
    assert out[5, 5].argmax() == 0
    np.testing.assert_allclose(out[valid].sum(-1), 1.0, atol=1e-5)
    assert (out[~valid] == 0).all() and (out >= 0).all()
    assert guided_filter(probs, guide, valid, radius=0) is probs


def test_principal_guide_follows_the_main_spectral_contrast() -> None:
    rng = np.random.default_rng(1)
    labels = np.zeros((16, 16), int)
    labels[:, 8:] = 1
    spectra = np.stack([np.linspace(1, 2, 30), np.linspace(2, 1, 30)])
    cube = spectra[labels] + rng.normal(0, 0.02, (16, 16, 30))
    valid = np.ones((16, 16), bool)
    valid[0, 0] = False
    g = principal_guide(cube, valid)
    assert g.shape == (16, 16) and g.min() >= 0 and g.max() <= 1 and g[0, 0] == 0
    left, right = g[1:, :8].mean(), g[1:, 8:].mean()
    assert abs(left - right) > 0.8  # the two halves sit at opposite ends of the guide


def test_finetune_applies_the_guided_filter_before_the_graph_refinement() -> None:
    from hsizoo.finetune import TransductionConfig, finetune
    from hsizoo.predict.engine import predict_scene
    from scenes import three_class_scene

    scene = three_class_scene()
    labels = scene.labels
    fast = dict(model="s2former_test", pretrained=False, steps=10, batch_size=16, head_steps=20,
                progress=False, device="cpu", seed=0)
    ft = finetune(scene, labels, shots=3, transduction=TransductionConfig(
        refine_filter="guided", guided_radius=3, guided_eps=1e-2), **fast)
    res = ft.predict(progress=False)
    assert res.meta["spatial_filter"] == "guided"
    raw = predict_scene(ft.model, scene, ft.stats, None, ft.class_names, smooth_sigma=0,
                        progress=False).probabilities
    valid = scene.valid
    want = np.zeros_like(raw)
    want[valid] = ft.refiner(guided_filter(raw, ft.refiner.guide, valid, 3, 1e-2)[valid])
    np.testing.assert_allclose(res.probabilities, want, atol=1e-6)
    # The default keeps the Gaussian, applied by the prediction itself.
    ft2 = finetune(scene, labels, shots=3, **fast)
    assert ft2.refiner.spatial == "gaussian" and ft2.refiner.guide is None
    assert ft2.predict(progress=False).meta["spatial_filter"] == "gaussian"
