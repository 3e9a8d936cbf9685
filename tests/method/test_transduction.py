"""Transduction: k-NN graph, label propagation, pseudo-labels and fusion (hsizoo.finetune)."""
from __future__ import annotations

import numpy as np
import pytest

from hsizoo.method.transduction import (GraphRefiner, TransductionConfig, fuse,
                                          graph_features, knn_graph, propagate,
                                          propagation_seeds, refine, select_pseudo_labels)


def _two_fields(h: int = 24, w: int = 30, bands: int = 8, seed: int = 0, border: int | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Left half (or ``border`` columns) class 1, the rest class 2; the spectra differ a little,
    noise is large."""
    rng = np.random.default_rng(seed)
    labels = np.ones((h, w), np.int64)
    labels[:, w // 2 if border is None else border:] = 2
    means = np.stack([np.linspace(0, 1, bands), np.linspace(1, 0, bands)]) * 0.6
    cube = means[labels - 1] + rng.normal(0, 1.0, (h, w, bands))
    return cube.astype(np.float32), labels


def test_graph_is_symmetric_normalised_and_sparse():
    cube, _ = _two_fields()
    valid = np.ones(cube.shape[:2], bool)
    feats = graph_features(cube, valid, TransductionConfig(components=4))
    assert feats.shape == (valid.sum(), 4 + 2)
    g = knn_graph(feats, 6)
    assert g.shape == (valid.sum(), valid.sum())
    assert abs(g - g.T).max() < 1e-6
    assert g.diagonal().max() == 0
    # At most 2k entries per node on average once symmetrised: memory linear in pixels.
    assert g.nnz <= 2 * 6 * valid.sum()
    assert np.diff(g.indptr).min() >= 6


def test_propagation_beats_nearest_shot_on_noisy_fields():
    """Two shots, one per field; the noise makes each pixel alone ambiguous, the graph does not."""
    cube, labels = _two_fields()
    valid = np.ones(labels.shape, bool)
    cfg = TransductionConfig(components=4)
    g = knn_graph(graph_features(cube, valid, cfg), cfg.neighbours)
    shots = np.array([5 * labels.shape[1] + 3, 5 * labels.shape[1] + 25])  # row 5, cols 3 / 25
    probs = propagate(g, propagation_seeds(shots, labels.ravel()[shots] - 1, valid.sum(), 2),
                      cfg.alpha, cfg.iterations)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    acc = (probs.argmax(1) + 1 == labels.ravel()).mean()
    # Per-pixel nearest shot in the spectra alone, for comparison.
    x = cube.reshape(-1, cube.shape[-1])
    d = ((x[:, None, :] - x[shots][None]) ** 2).sum(-1)
    acc_nn = (d.argmin(1) + 1 == labels.ravel()).mean()
    assert acc > 0.95
    assert acc > acc_nn + 0.1


def test_invalid_pixels_are_not_nodes_and_do_not_leak():
    cube, labels = _two_fields()
    valid = np.ones(labels.shape, bool)
    valid[:, 10:14] = False
    cube[~valid] = 1e6  # nodata values must not reach the features
    feats = graph_features(cube, valid, TransductionConfig(components=4))
    assert feats.shape[0] == valid.sum()
    assert np.isfinite(feats).all() and np.abs(feats).max() < 1e3


def test_embeddings_join_the_features():
    cube, _ = _two_fields()
    valid = np.ones(cube.shape[:2], bool)
    emb = np.random.default_rng(1).normal(size=(valid.sum(), 5))
    f = graph_features(cube, valid, TransductionConfig(components=4), emb, 1.0)
    assert f.shape[1] == 4 + 2 + 2  # embeddings reduced to components // 2
    f0 = graph_features(cube, valid, TransductionConfig(components=4, position_scale=0))
    assert f0.shape[1] == 4


def test_pseudo_labels_are_class_balanced_confident_and_exclude_shots():
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.8, 0.2], [0.3, 0.7], [0.1, 0.9], [0.45, 0.55]])
    exclude = np.array([True, False, False, False, False, False])
    idx, cls = select_pseudo_labels(probs, exclude, fraction=0.5, max_per_class=None)
    assert 0 not in idx
    # Class 0 candidates 1 (0.6) and 2 (0.8): keeps 2. Class 1: 3 (0.7), 4 (0.9), 5: keeps 4, 3.
    assert dict(zip(idx.tolist(), cls.tolist())) == {2: 0, 4: 1, 3: 1}
    idx, _ = select_pseudo_labels(probs, exclude, fraction=1.0, max_per_class=1)
    assert sorted(idx.tolist()) == [2, 4]


def test_fuse_is_a_product_of_experts():
    a = np.array([[0.7, 0.3], [0.5, 0.5]])
    b = np.array([[0.2, 0.8], [0.9, 0.1]])
    np.testing.assert_allclose(fuse(a, b, 0.0), a, atol=1e-6)
    f = fuse(a, b, 1.0)
    expect = a * b / (a * b).sum(1, keepdims=True)
    np.testing.assert_allclose(f, expect, atol=1e-5)


def test_refine_cleans_a_noisy_map_and_keeps_a_clean_one():
    cube, labels = _two_fields()
    valid = np.ones(labels.shape, bool)
    cfg = TransductionConfig(components=4)
    g = knn_graph(graph_features(cube, valid, cfg), cfg.neighbours)
    truth = labels.ravel() - 1
    rng = np.random.default_rng(3)
    noisy = np.full((truth.size, 2), 0.3, np.float32)
    noisy[np.arange(truth.size), truth] = 0.7
    flip = rng.random(truth.size) < 0.25  # a quarter of the pixels confidently wrong
    noisy[flip] = noisy[flip][:, ::-1]
    none = np.zeros(0, np.int64)
    out = refine(g, noisy, none, none, 0.99)
    assert (noisy.argmax(1) == truth).mean() < 0.8
    assert (out.argmax(1) == truth).mean() > 0.95
    np.testing.assert_allclose(out.sum(1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(refine(g, noisy, none, none, 0.0), noisy)
    # A clean map stays clean but for the column of pixels along the field boundary.
    clean = np.eye(2, dtype=np.float32)[truth]
    assert (refine(g, clean, none, none, 0.99).argmax(1) == truth).mean() > 0.95
    r = GraphRefiner(g, np.array([0]), np.array([1]), 0.99)
    assert r(clean).shape == clean.shape


@pytest.mark.parametrize("bad", [dict(alpha=1.0), dict(pseudo_fraction=2.0), dict(neighbours=0),
                                 dict(refine_alpha=1.0), dict(embed_weight=-1.0),
                                 dict(prior_iterations=-1), dict(prior_iterations=2.5),
                                 dict(refine_graph_weight=1.5), dict(refine_graph_weight=-0.1)])
def test_config_refuses_bad_values(bad):
    with pytest.raises(ValueError):
        TransductionConfig(**bad)


def test_principal_components_in_blocks_equal_one_pass() -> None:
    from hsizoo.method.pca import principal_components

    rng = np.random.default_rng(0)
    x = (rng.normal(size=(1000, 12)) @ rng.normal(size=(12, 12)) + 5.0).astype(np.float32)
    # The one-pass reference: centre, covariance, eigenvectors, projection, all in float64.
    c = x.astype(np.float64) - x.astype(np.float64).mean(0)
    _, vecs = np.linalg.eigh(c.T @ c / (len(x) - 1))
    ref = c @ vecs[:, ::-1][:, :4]
    for block in (1, 7, 1000, 5000):
        out = principal_components(x, 4, block_rows=block)
        assert out.shape == (1000, 4) and out.dtype == np.float64
        np.testing.assert_allclose(np.abs(out), np.abs(ref), rtol=1e-6, atol=1e-6)
    assert principal_components(x, 4, dtype=np.float32).dtype == np.float32


def _imbalanced_posteriors(n: int = 20000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Posteriors under equal class proportions of three overlapping 1-D Gaussian classes whose
    true proportions are 0.7 / 0.2 / 0.1."""
    rng = np.random.default_rng(seed)
    truth = rng.choice(3, size=n, p=[0.7, 0.2, 0.1])
    x = rng.normal(np.array([0.0, 2.0, 4.0])[truth], 1.0)
    lik = np.exp(-0.5 * (x[:, None] - np.array([0.0, 2.0, 4.0])[None]) ** 2)
    return lik / lik.sum(1, keepdims=True), truth


def test_class_prior_em_recovers_the_proportions_and_helps_the_majority():
    from hsizoo.method.graph import class_prior_em

    p0, truth = _imbalanced_posteriors()
    p, prior = class_prior_em(p0, 30)
    np.testing.assert_allclose(prior, [0.7, 0.2, 0.1], atol=0.03)
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-5)
    # Overall accuracy rises (the majority class's overlap is no longer given away).
    assert (p.argmax(1) == truth).mean() > (p0.argmax(1) == truth).mean() + 0.02
    same, uniform = class_prior_em(p0, 0)
    np.testing.assert_allclose(same, p0, rtol=1e-6)
    np.testing.assert_allclose(uniform, 1 / 3)
    with pytest.raises(ValueError, match="N, K"):
        class_prior_em(np.ones(5), 3)


def test_scene_graph_applies_the_class_prior_to_its_propagations():
    from hsizoo.finetune.pseudo import SceneGraph
    from hsizoo.method.graph import class_prior_em

    cube, labels = _two_fields(border=8, seed=1)  # class 2 covers nearly three quarters
    valid = np.ones(labels.shape, bool)
    train = np.zeros_like(labels)
    train[5, 2], train[5, 20] = 1, 2
    plain = SceneGraph(cube, valid, train, 2, TransductionConfig(components=4))
    em = SceneGraph(cube, valid, train, 2, TransductionConfig(components=4, prior_iterations=5))
    np.testing.assert_allclose(em.probs, class_prior_em(plain.probs, 5)[0], atol=1e-6)
    assert (em.probs.argmax(1) + 1 == labels.ravel()).mean() \
        >= (plain.probs.argmax(1) + 1 == labels.ravel()).mean()
    em.refresh(np.zeros((valid.sum(), 4), np.float32), plain.probs)
    np.testing.assert_allclose(em.probs.sum(1), 1.0, rtol=1e-5)


def test_refinement_seeded_by_the_student_and_the_graph():
    from hsizoo.finetune.pseudo import SceneGraph

    cube, labels = _two_fields()
    valid = np.ones(labels.shape, bool)
    train = np.zeros_like(labels)
    train[5, 3], train[5, 25] = 1, 2
    n = int(valid.sum())
    student = np.full((n, 2), 0.5, np.float32)
    student[:, 0] = 0.7  # a student that calls everything class 1, not very sure of it
    student[:, 1] = 0.3
    plain = SceneGraph(cube, valid, train, 2, TransductionConfig(components=4)).refiner()
    assert plain.graph_probs is None
    sg = SceneGraph(cube, valid, train, 2, TransductionConfig(components=4,
                                                              refine_graph_weight=0.5))
    mixed = sg.refiner()
    np.testing.assert_array_equal(mixed.graph_probs, sg.probs)
    # The mixture is what the refinement is seeded with.
    np.testing.assert_allclose(mixed(student), plain(0.5 * student + 0.5 * sg.probs), atol=1e-6)
    # The graph corrects the student's right half; the student alone is not corrected as much.
    truth = labels.ravel() - 1
    assert (mixed(student).argmax(1) == truth).mean() > (plain(student).argmax(1) == truth).mean()
    with pytest.raises(ValueError, match="graph posteriors"):
        mixed(student[:10])
