"""Graph primitives of transduction: a k-NN graph of the scene's pixels and label propagation.

:func:`knn_graph` builds the symmetric, normalised graph (scipy's k-d tree and sparse matrices:
memory and time linear in pixels for a fixed k); :func:`propagation_seeds` and
:func:`propagate` run Zhou et al. (2003) over it; :func:`class_prior_em` re-estimates the class
proportions of the propagated scene. Shared by the spectral graph
(:mod:`.transduction`), the embedding view (:mod:`.views`), graph cross-validation and the
probes, so that none of them imports another for these.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["class_prior_em", "knn_graph", "propagate", "propagation_seeds"]


def knn_graph(features: np.ndarray, neighbours: int) -> Any:
    """Symmetric, normalised k-NN graph ``D^-1/2 W D^-1/2`` with Gaussian weights.

    Args:
        features: (N, d) features.
        neighbours: k.

    Returns:
        (N, N) scipy.sparse CSR matrix.
    """
    import scipy.sparse as sp
    from scipy.spatial import cKDTree

    n = features.shape[0]
    k = min(neighbours, n - 1)
    if k < 1:
        return sp.csr_matrix((n, n), dtype=np.float32)
    dist, idx = cKDTree(features).query(features, k=k + 1, workers=-1)
    dist, idx = dist[:, 1:], idx[:, 1:]
    # Bandwidth: the median distance to the k-th neighbour (scale-free).
    scale = float(np.median(dist[:, -1])) or 1.0
    w = np.exp(-(dist / scale) ** 2).astype(np.float32)
    adj = sp.csr_matrix((w.ravel(), (np.repeat(np.arange(n), k), idx.ravel())), shape=(n, n))
    adj = adj.maximum(adj.T)
    deg = np.asarray(adj.sum(1)).ravel()
    inv = sp.diags((1.0 / np.sqrt(np.maximum(deg, 1e-12))).astype(np.float32))
    return (inv @ adj @ inv).tocsr()


def propagation_seeds(index: np.ndarray, classes: np.ndarray, n: int, num_classes: int,
                      prior: np.ndarray | None = None, prior_weight: float = 0.0) -> np.ndarray:
    """Seed matrix Y: one-hot rows for the shots, optionally soft rows elsewhere.

    Args:
        index: (S,) indices of the shots among the N graph nodes.
        classes: (S,) class indices 0..K-1.
        n: N.
        num_classes: K.
        prior: Optional (N, K) probabilities seeding the other nodes.
        prior_weight: Their weight.

    Returns:
        (N, K) float32.
    """
    y = np.zeros((n, num_classes), np.float32)
    if prior is not None and prior_weight > 0:
        y += prior_weight * prior.astype(np.float32)
    y[index] = 0.0
    y[index, classes] = 1.0
    return y


def propagate(graph: Any, seeds: np.ndarray, alpha: float = 0.99, iterations: int = 100,
              class_mass: bool = True) -> np.ndarray:
    """Label propagation (Zhou et al. 2003), by default with class-mass normalisation.

    Args:
        graph: (N, N) normalised sparse graph from :func:`knn_graph`.
        seeds: (N, K) seed matrix.
        alpha: Weight of the graph against the seeds.
        iterations: Iterations.
        class_mass: Give every class column the same total mass before normalising the rows
            (right for a few one-hot seeds; wrong for seeds on every node, whose class sizes
            are information).

    Returns:
        (N, K) float32 class probabilities (rows sum to 1).
    """
    f = seeds.astype(np.float32).copy()
    base = (1.0 - alpha) * seeds.astype(np.float32)
    for _ in range(iterations):
        f = alpha * (graph @ f) + base
    f = np.maximum(f, 0.0)
    if class_mass:
        # Every class column carries the same total mass, so that a class with many
        # neighbours does not absorb the others.
        f /= np.maximum(f.sum(0, keepdims=True), 1e-12)
    total = f.sum(1, keepdims=True)
    empty = total[:, 0] <= 0
    f /= np.maximum(total, 1e-30)
    if empty.any():
        f[empty] = 1.0 / f.shape[1]
    return f


def class_prior_em(probs: np.ndarray, iterations: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Re-estimate the scene's class proportions from unlabelled posteriors (EM).

    Class-mass normalisation (:func:`propagate`) gives every class the same total mass: the
    posteriors it returns assume equal class proportions, which real scenes never have (on a
    crop scene one class may cover a hundred times the area of another). Saerens, Latinne &
    Decaestecker (2002), "Adjusting the outputs of a classifier to new a priori probabilities":
    alternately set the proportions to the mean posterior and re-weight the posteriors by the
    proportions over the uniform ones they assumed. Only the posteriors are used, no label.

    Args:
        probs: (N, K) posteriors under equal class proportions (rows sum to 1).
        iterations: EM iterations (0 returns ``probs`` and the uniform proportions).

    Returns:
        ((N, K) float32 re-weighted posteriors, (K,) estimated proportions).
    """
    p0 = np.asarray(probs, np.float64)
    if p0.ndim != 2 or p0.shape[1] < 1:
        raise ValueError(f"probs must be an (N, K) array, got shape {p0.shape}.")
    k = p0.shape[1]
    prior = np.full(k, 1.0 / k)

    def reweighted(pr: np.ndarray) -> np.ndarray:
        w = p0 * (pr * k)
        total = w.sum(1, keepdims=True)
        # A row whose mass the proportions remove entirely keeps its posteriors.
        return np.where(total > 0, w / np.maximum(total, 1e-300), p0)

    for _ in range(int(iterations)):
        prior = reweighted(prior).mean(0)
    return reweighted(prior).astype(np.float32), prior
