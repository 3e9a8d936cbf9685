"""The embedding view of the first propagation (hsizoo.method.views) and its switch in finetune."""
from __future__ import annotations

import numpy as np
import pytest

from hsizoo.method.transduction import propagate, propagation_seeds
from hsizoo.method.views import combine_views, embedding_graph, propagate_views


def test_combine_views_is_a_normalised_product_that_falls_back_on_the_spectra() -> None:
    a = np.array([[0.6, 0.4], [0.5, 0.5], [1.0, 0.0]], np.float32)
    b = np.array([[0.2, 0.8], [0.9, 0.1], [0.0, 1.0]], np.float32)
    out = combine_views(a, b)
    np.testing.assert_allclose(out[0], [0.12 / 0.44, 0.32 / 0.44], rtol=1e-6)
    np.testing.assert_allclose(out[1], [0.9, 0.1], rtol=1e-6)
    np.testing.assert_array_equal(out[2], a[2])  # the views disagree completely: keep the spectra
    np.testing.assert_allclose(out.sum(1), 1.0, rtol=1e-6)


def test_the_embedding_view_corrects_what_the_spectra_graph_gets_wrong() -> None:
    """Two classes whose spectra overlap but whose embeddings separate them: the combined
    propagation is right where the spectral one alone errs, and never worse."""
    rng = np.random.default_rng(0)
    n = 400
    y = np.repeat([0, 1], n // 2)
    spectral = rng.normal(0, 1, (n, 6)) + y[:, None] * 0.3  # weakly separated
    emb = rng.normal(0, 1, (n, 16)) + y[:, None] * 3.0      # well separated
    from hsizoo.method.transduction import knn_graph

    shots = np.array([0, 1, n // 2, n // 2 + 1])
    seeds = propagation_seeds(shots, y[shots], n, 2)
    p_spec = propagate(knn_graph(spectral.astype(np.float32), 10), seeds)
    both = propagate_views(p_spec, emb, seeds)
    acc_spec = (p_spec.argmax(1) == y).mean()
    acc_both = (both.argmax(1) == y).mean()
    assert acc_spec < 0.8 and acc_both > 0.95


def test_embedding_graph_checks_its_input() -> None:
    g = embedding_graph(np.random.default_rng(1).normal(size=(50, 4)), 5, components=30)
    assert g.shape == (50, 50)  # fewer dimensions than components: all of them
    with pytest.raises(ValueError, match="finite"):
        embedding_graph(np.full((10, 3), np.nan))
    with pytest.raises(ValueError, match="graph nodes"):
        propagate_views(np.full((5, 2), 0.5), np.zeros((4, 3)), np.zeros((5, 2)))


def test_finetune_switch_needs_and_uses_the_backbones_embeddings() -> None:
    from hsizoo.finetune import TransductionConfig, finetune
    from hsizoo.finetune.pseudo import SceneGraph
    from scenes import three_class_scene

    scene = three_class_scene()
    train = np.zeros_like(scene.labels)
    train[0, 0], train[-1, -1], train[0, -1] = 1, 2, 3
    with pytest.raises(ValueError, match="embeddings"):
        SceneGraph(scene.cube, scene.valid, train, 3, TransductionConfig(embedding_view=True))
    ft = finetune(scene, scene.labels, shots=3, model="s2former_test", pretrained=False,
                  steps=5, batch_size=16, head_steps=5, progress=False,
                  transduction=TransductionConfig(embedding_view=True))
    assert ft.history["transduction"]["embedding_view"] is True
    assert ft.history["pseudo_counts"][0] > 0


def test_harness_baseline_label_propagation_views_runs_on_the_shots_alone() -> None:
    import types

    from hsizoo.bench.baselines import _label_propagation_views
    from hsizoo.bench.methods import BASELINES, METHODS
    from hsizoo.data.splits import few_shot_split
    from scenes import three_class_scene

    scene = three_class_scene()
    sp = few_shot_split(scene.labels, 3, 0)
    opts = types.SimpleNamespace(checkpoints={"indomain": "s2former_test"})  # random init
    predict, info = _label_propagation_views(scene, sp.train, 0, opts)
    rows, cols = np.nonzero(sp.test)
    acc = (predict(rows, cols) == sp.test[rows, cols]).mean()
    assert acc > 0.5 and info["components"] == 30  # three classes: chance is 1/3
    # it needs the in-domain checkpoint and is not a no-network baseline
    assert METHODS["label_propagation_views"].checkpoint == "indomain"
    assert "label_propagation_views" not in BASELINES


def test_view_refresh_joins_each_refresh_and_only_when_asked() -> None:
    from hsizoo.finetune.pseudo import SceneGraph
    from hsizoo.method.transduction import TransductionConfig
    from scenes import three_class_scene

    scene = three_class_scene()
    train = np.zeros_like(scene.labels)
    train[0, 0], train[-1, -1], train[0, -1] = 1, 2, 3
    n = int(scene.valid.sum())
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(n, 8))
    teacher = rng.dirichlet(np.ones(3), size=n).astype(np.float32)
    with pytest.raises(ValueError, match="embeddings"):
        SceneGraph(scene.cube, scene.valid, train, 3, TransductionConfig(view_refresh=True))
    runs = {}
    for name, cfg in {"off": TransductionConfig(embedding_view=True),
                      "on": TransductionConfig(embedding_view=True, view_refresh=True)}.items():
        g = SceneGraph(scene.cube, scene.valid, train, 3, cfg, emb)
        first = g.probs.copy()
        g.refresh(emb, teacher)
        runs[name] = (first, g.probs)
    np.testing.assert_array_equal(runs["off"][0], runs["on"][0])  # same first propagation
    assert not np.allclose(runs["off"][1], runs["on"][1])          # the refresh differs
    np.testing.assert_allclose(runs["on"][1].sum(1), 1.0, atol=1e-5)
