"""A second view of the scene for the first propagation: the pretrained backbone's embeddings.

The scene graph of :mod:`hsizoo.method.transduction` lives on spectra and position. The graph
probe (``benchmarks/probe.py``, issue 19) showed that the self-supervised embeddings *joined* to
that graph add nothing: they know the spatial context that the position term already gives. Used
as a *separate view* they do add something. Label propagation from the shots over a k-NN graph of
the embeddings alone (their principal components, standardised; no smoothing, no position) errs
elsewhere than the spectra graph does, and the normalised product of the two propagations
(:func:`combine_views`, a product of experts) is better than either.

Chosen on simulated scenes (scratch runs, label propagation only, 5 shots, 30 principal
components, 10-NN; no setting was tuned): crop-field scenes of the Indian Pines kind (3 scenes x
3 draws) +2.2 OA points with ``s2former_tiny.ssl_indianpines`` embeddings (9 of 9 better) and
+1.1 with ``s2former_tiny.ssl_simulated`` (3 x 5 draws, 11 of 15); the simulated Salinas and
Pavia layouts +2.1 (6 of 6). The sum of the two propagations did about as well; the product won
on the crop-field scenes, which are the ones that look like the real scene's problem. Checked
once on the real Indian Pines: see README ("a second view").
"""
from __future__ import annotations

from typing import Any

import numpy as np

from hsizoo.method.graph import knn_graph, propagate
from hsizoo.method.pca import principal_components

__all__ = ["EmbeddingView", "combine_views", "embedding_graph", "propagate_views"]


def embedding_graph(embeddings: np.ndarray, neighbours: int = 10, components: int = 30) -> Any:
    """k-NN graph of the embeddings alone: standardised, ``components`` principal components.

    Args:
        embeddings: (N_valid, D) pooled embeddings of every valid pixel (graph-node order).
        neighbours: k.
        components: Principal components kept (fewer when D is smaller).

    Returns:
        (N, N) normalised sparse graph (:func:`hsizoo.method.graph.knn_graph`).
    """
    x = np.asarray(embeddings, np.float64)
    if x.ndim != 2 or not np.isfinite(x).all():
        raise ValueError(f"embeddings must be a finite (N, D) array, got shape {x.shape}.")
    x = (x - x.mean(0)) / np.maximum(x.std(0), 1e-6)
    z = principal_components(x, min(int(components), x.shape[1]), dtype=np.float32)
    return knn_graph(z, neighbours)


def combine_views(spectral: np.ndarray, embedded: np.ndarray) -> np.ndarray:
    """Normalised product of two (N, K) probability maps; a row whose product vanishes keeps the
    spectral view's probabilities."""
    prod = np.asarray(spectral, np.float64) * np.asarray(embedded, np.float64)
    total = prod.sum(1, keepdims=True)
    out = np.where(total > 0, prod / np.maximum(total, 1e-300), spectral)
    return out.astype(np.float32)


class EmbeddingView:
    """The embedding graph of one scene, built once and used at each propagation that the view
    joins (the first one and, with ``TransductionConfig.view_refresh``, each refresh)."""

    def __init__(self, embeddings: np.ndarray, neighbours: int = 10, components: int = 30,
                 alpha: float = 0.99, iterations: int = 100) -> None:
        self.graph = embedding_graph(embeddings, neighbours, components)
        self.alpha, self.iterations = alpha, iterations

    def combine(self, spectral_probs: np.ndarray, seeds: np.ndarray) -> np.ndarray:
        """``spectral_probs`` times the propagation of the same ``seeds`` over this graph."""
        if self.graph.shape[0] != spectral_probs.shape[0]:
            raise ValueError(f"{self.graph.shape[0]} embeddings for {spectral_probs.shape[0]} "
                             "graph nodes.")
        return combine_views(spectral_probs, propagate(self.graph, seeds, self.alpha,
                                                       self.iterations))


def propagate_views(spectral_probs: np.ndarray, embeddings: np.ndarray, seeds: np.ndarray,
                    alpha: float = 0.99, iterations: int = 100, neighbours: int = 10,
                    components: int = 30) -> np.ndarray:
    """The spectra graph's propagation combined with one over :func:`embedding_graph`.

    Args:
        spectral_probs: (N, K) propagation from the shots over the scene graph.
        embeddings: (N, D) embeddings of the same nodes.
        seeds: (N, K) seed matrix of that propagation (the shots, one-hot).
        alpha, iterations: Propagation settings (as the scene graph's).
        neighbours, components: Of the embedding graph.

    Returns:
        (N, K) float32 probabilities.
    """
    if embeddings.shape[0] != spectral_probs.shape[0]:
        raise ValueError(f"{embeddings.shape[0]} embeddings for {spectral_probs.shape[0]} "
                         "graph nodes.")
    return EmbeddingView(embeddings, neighbours, components, alpha,
                         iterations).combine(spectral_probs, seeds)
