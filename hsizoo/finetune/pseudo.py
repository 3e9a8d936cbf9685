"""Stage 2 of fine-tuning, transduction: the scene graph and the pseudo-labels it gives.

Label propagation from the shots over a k-NN graph of every valid pixel (spectra and position)
gives the teacher's first pseudo-labels, class-balanced (:mod:`hsizoo.method.transduction`). At
each refresh the teacher's embeddings join the graph and the propagation, seeded by the shots and
the fused teacher/propagation probabilities, gives new ones. The final refinement of the map
runs over the same graph.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from hsizoo.finetune.prepare import Prepared
from hsizoo.method.transduction import (GraphRefiner, TransductionConfig, fuse, graph_features,
                                        knn_graph, propagate, propagate_from_shots,
                                        propagation_seeds, select_pseudo_labels,
                                        with_class_prior)

__all__ = ["PseudoLabels", "SceneGraph"]


class SceneGraph:
    """The transductive state of one fine-tuning run: graph, propagated probabilities, seeds."""

    def __init__(self, std_cube: np.ndarray, valid: np.ndarray, train: np.ndarray, K: int,
                 cfg: TransductionConfig, embeddings: np.ndarray | None = None) -> None:
        self.cv: dict[str, Any] | None = None
        if cfg.cv_graph:
            from hsizoo.method.graph_cv import choose_graph_settings

            cfg, self.cv = choose_graph_settings(std_cube, valid, train, K, cfg)
        self.cfg, self.valid, self.K = cfg, valid, K
        self.std_cube = std_cube
        lab = train[valid]
        self.shot_index = np.flatnonzero(lab > 0)
        self.shot_class = lab[self.shot_index] - 1
        self.view = None
        if cfg.embedding_view or cfg.view_refresh:
            if embeddings is None:
                raise ValueError("embedding_view and view_refresh need the backbone's "
                                 "embeddings of every valid pixel.")
            from hsizoo.method.views import EmbeddingView

            self.view = EmbeddingView(embeddings, cfg.neighbours, cfg.components, cfg.alpha,
                                      cfg.iterations)
        # The graph of spectra and position: first propagation and final refinement.
        self.graph, self.probs = propagate_from_shots(std_cube, valid, train, K, cfg,
                                                      view=self.view)

    def _propagate(self, graph: Any, prior: np.ndarray | None) -> np.ndarray:
        cfg = self.cfg
        seeds = propagation_seeds(self.shot_index, self.shot_class, graph.shape[0], self.K,
                                  prior, cfg.refresh_seed_weight)
        probs = propagate(graph, seeds, cfg.alpha, cfg.iterations)
        if cfg.view_refresh and self.view is not None:
            probs = self.view.combine(probs, seeds)
        return with_class_prior(probs, cfg)

    def refresh(self, embeddings: np.ndarray, teacher_probs: np.ndarray) -> None:
        """Re-propagate with the teacher's embeddings in the graph, seeded by the shots and the
        teacher's probabilities fused with the previous propagation's."""
        cfg = self.cfg
        graph = knn_graph(graph_features(self.std_cube, self.valid, cfg, embeddings,
                                         cfg.embed_weight), cfg.neighbours)
        self.probs = self._propagate(graph, fuse(teacher_probs, self.probs, 1.0))

    def refiner(self) -> GraphRefiner | None:
        """The final refinement of the student's map on this scene (None when switched off)."""
        cfg = self.cfg
        if cfg.refine_alpha <= 0:
            return None
        guide = None
        if cfg.refine_filter == "guided":
            from hsizoo.method.smoothing import principal_guide

            guide = principal_guide(self.std_cube, self.valid)
        mix = cfg.refine_graph_weight > 0
        return GraphRefiner(self.graph, self.shot_index, self.shot_class, cfg.refine_alpha,
                            cfg.iterations, cfg.refine_filter, guide, cfg.guided_radius,
                            cfg.guided_eps, self.probs if mix else None,
                            cfg.refine_graph_weight)


class PseudoLabels:
    """The current pseudo-labelled pixels (rows, cols, class), refreshed from probabilities.

    Their patches are gathered per batch: the whole scene's patches would take GBs on a large
    scene. Graph nodes and teacher outputs are in ``np.nonzero(valid)`` order.
    """

    def __init__(self, inputs: Prepared, cfg: TransductionConfig, graph: SceneGraph | None,
                 counts: list[int]) -> None:
        self.cfg = cfg
        self.graph = graph
        self.counts = counts
        self.rows, self.cols = np.nonzero(inputs.scene.valid)
        self.is_shot = inputs.train[self.rows, self.cols] > 0
        self.rc: tuple[np.ndarray, np.ndarray] | None = None
        self.y: torch.Tensor | None = None

    def set(self, probs: np.ndarray) -> None:
        """Select class-balanced, confident pseudo-labels from (N_valid, K) probabilities."""
        idx, cls = select_pseudo_labels(probs, self.is_shot, self.cfg.pseudo_fraction,
                                        self.cfg.pseudo_max_per_class)
        self.rc = (self.rows[idx], self.cols[idx])
        self.y = torch.as_tensor(cls, dtype=torch.long)
        self.counts.append(int(cls.size))

    def refresh(self, embeddings: np.ndarray, teacher_probs: np.ndarray) -> None:
        """New pseudo-labels after the teacher improved: through the graph when there is one,
        else the teacher's own probabilities."""
        if self.graph is not None:
            self.graph.refresh(embeddings, teacher_probs)
            self.set(self.graph.probs)
        else:
            self.set(teacher_probs)

    @property
    def available(self) -> bool:
        return self.rc is not None and self.rc[0].size > 0
