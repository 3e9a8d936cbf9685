"""The scene graph's settings chosen by cross-validation on the shots (hsizoo.method.graph_cv)
and the label_propagation_cv baseline."""
from __future__ import annotations

import numpy as np

from hsizoo.method.graph_cv import choose_graph_settings
from hsizoo.method.transduction import TransductionConfig
from hsizoo.data.splits import few_shot_split


def _interleaved(seed: int = 0, noise: float = 0.6):
    """Two classes in alternating 3-pixel stripes, told apart by their spectra."""
    rng = np.random.default_rng(seed)
    h, w, b = 30, 30, 8
    labels = ((np.arange(w) // 3) % 2 + 1)[None, :].repeat(h, 0)
    spectra = np.stack([np.linspace(0, 1, b), np.linspace(1, 0, b)])
    cube = spectra[labels - 1] + rng.normal(0, noise, (h, w, b))
    cube = (cube - cube.mean((0, 1))) / cube.std((0, 1))
    return cube.astype(np.float32), labels


def test_cv_replaces_a_setting_that_mixes_the_classes() -> None:
    """Smoothing the features over 3 px blurs 3-px stripes of two classes into one another: the
    held-out shots say so, and CV moves to the lighter smoothing."""
    cube, labels = _interleaved(noise=0.6)
    valid = np.ones(labels.shape, bool)
    train = few_shot_split(labels, 5, seed=0).train
    cfg = TransductionConfig(components=4, feature_sigma=3.0)
    chosen, rec = choose_graph_settings(cube, valid, train, 2, cfg)
    assert rec["folds"] == 5 and len(rec["candidates"]) == 12
    accs = {(c["position_scale"], c["feature_sigma"]): c["cv_accuracy"] for c in rec["candidates"]}
    assert rec["chosen"]["cv_accuracy"] == max(accs.values())
    assert chosen.feature_sigma == 1.0
    assert accs[(chosen.position_scale, 1.0)] > accs[(cfg.position_scale, 3.0)]
    assert chosen.components == 4  # the other settings are kept


def test_ties_keep_the_configured_values() -> None:
    cube, labels = _interleaved(noise=0.3)  # every feature_sigma=1 candidate gets all shots
    train = few_shot_split(labels, 5, seed=0).train
    cfg = TransductionConfig(components=4)
    chosen, rec = choose_graph_settings(cube, np.ones(labels.shape, bool), train, 2, cfg)
    assert rec["chosen"]["cv_accuracy"] == 1.0 and chosen == cfg


def test_one_shot_per_class_keeps_the_configured_graph() -> None:
    cube, labels = _interleaved()
    train = few_shot_split(labels, 1, seed=0).train
    cfg = TransductionConfig(components=4)
    chosen, rec = choose_graph_settings(cube, np.ones(labels.shape, bool), train, 2, cfg)
    assert chosen == cfg and rec["chosen"]["reason"] == "too few shots"


def test_finetune_records_the_graph_it_chose() -> None:
    from hsizoo.finetune import finetune
    from hsizoo.io import Scene

    cube, labels = _interleaved(noise=0.3)
    scene = Scene(cube=cube, wavelengths=np.linspace(450.0, 2300.0, cube.shape[-1]),
                  labels=labels)
    ft = finetune(scene, labels, shots=5, model="s2former_test", pretrained=False, steps=5,
                  batch_size=8, head_steps=5, progress=False, device="cpu",
                  transduction=TransductionConfig(components=4, cv_graph=True))
    rec = ft.history["graph_cv"]
    assert rec["folds"] == 5 and len(rec["candidates"]) == 12
    assert ft.history["transduction"]["cv_graph"] is True
