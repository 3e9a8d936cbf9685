"""The scene graph's settings chosen by cross-validation on the shots, per scene and split.

How much a pixel's position should count against its spectrum in the graph (``position_scale``)
and how much the spectral features are smoothed first (``feature_sigma``) depend on the scene:
on the simulated tuning scenes a weaker position term helped some layouts and not others. The
labelled shots are the only labels a user has, so they choose: fold j leaves out the j-th shot
of every class, label propagation from the other shots predicts them, and the candidate with the
most held-out shots right wins (ties go to the configured values). No other label is read.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

import numpy as np

from hsizoo.method.transduction import TransductionConfig, propagate_from_shots

__all__ = ["CV_FEATURE_SIGMAS", "CV_POSITION_SCALES", "choose_graph_settings"]

#: Candidates of the cross-validation (the defaults of TransductionConfig are among them).
CV_POSITION_SCALES: tuple[float, ...] = (5.0, 10.0, 20.0, 40.0, 80.0, 160.0)
CV_FEATURE_SIGMAS: tuple[float, ...] = (1.0, 3.0)


def _folds(train: np.ndarray, seed: int, max_folds: int) -> tuple[np.ndarray, np.ndarray,
                                                                    np.ndarray, int]:
    """Shots as (rows, cols, fold index); fold j holds the j-th shot (random order) of each
    class, so every fold holds out at most one shot per class."""
    r, c = np.nonzero(train)
    order = np.random.default_rng(seed).permutation(r.size)
    r, c = r[order], c[order]
    cls = train[r, c]
    fold = np.zeros(r.size, int)
    for k in np.unique(cls):
        idx = np.flatnonzero(cls == k)
        fold[idx] = np.arange(idx.size)
    counts = np.bincount(cls)[1:]
    n = int(min(max_folds, counts[counts > 0].min())) if counts.any() else 0
    return r, c, fold, n


def choose_graph_settings(std_cube: np.ndarray, valid: np.ndarray, train: np.ndarray,
                          num_classes: int, cfg: TransductionConfig, seed: int = 0,
                          position_scales: Sequence[float] = CV_POSITION_SCALES,
                          feature_sigmas: Sequence[float] = CV_FEATURE_SIGMAS,
                          max_folds: int = 5) -> tuple[TransductionConfig, dict[str, Any]]:
    """The config with ``position_scale`` and ``feature_sigma`` chosen by leave-shots-out CV.

    Args:
        std_cube: (H, W, B) standardised cube.
        valid: (H, W) bool.
        train: (H, W) shots, 0 = unlabelled, 1..K.
        num_classes: K.
        cfg: The configuration to start from (its other settings are kept).
        seed: Seed of the assignment of shots to folds.
        position_scales: Candidate position scales.
        feature_sigmas: Candidate feature smoothings.
        max_folds: Folds at most (at most the smallest class's shot count; with one shot per
            class there is nothing to hold out and ``cfg`` is returned unchanged).

    Returns:
        (the chosen config, a record: candidates, their held-out accuracy, folds, the choice).
    """
    valid = np.asarray(valid, dtype=bool)
    r, c, fold, n = _folds(train, seed, max_folds)
    record: dict[str, Any] = {"folds": n, "candidates": [], "chosen": None}
    if n < 2:
        record["chosen"] = {"position_scale": cfg.position_scale,
                            "feature_sigma": cfg.feature_sigma, "reason": "too few shots"}
        return cfg, record
    index = np.full(valid.shape, -1)
    index[valid] = np.arange(int(valid.sum()))
    cls = train[r, c]
    best, best_key = cfg, None
    for fs in feature_sigmas:
        for ps in position_scales:
            cand = replace(cfg, position_scale=float(ps), feature_sigma=float(fs))
            hits = 0
            for j in range(n):
                held = fold == j
                tr = train.copy()
                tr[r[held], c[held]] = 0
                _, probs = propagate_from_shots(std_cube, valid, tr, num_classes, cand)
                hits += int((probs[index[r[held], c[held]]].argmax(1) + 1 == cls[held]).sum())
            acc = hits / float(sum(int((fold == j).sum()) for j in range(n)))
            is_default = ps == cfg.position_scale and fs == cfg.feature_sigma
            record["candidates"].append({"position_scale": float(ps), "feature_sigma": float(fs),
                                         "cv_accuracy": acc})
            key = (acc, is_default)
            if best_key is None or key > best_key:
                best, best_key = cand, key
    record["chosen"] = {"position_scale": best.position_scale,
                        "feature_sigma": best.feature_sigma, "cv_accuracy": best_key[0]}
    return best, record
