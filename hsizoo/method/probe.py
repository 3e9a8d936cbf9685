"""The representation benchmark: how well do a backbone's *frozen* features separate classes?

Every pretraining run is judged here, not by its reconstruction loss. A backbone embeds every
valid pixel of a labelled scene once (pooled pre-logits features of its P x P patch, the shared
computation of :class:`hsizoo.predict.engine.SharedPredictor`); then, for each few-shot split
(:func:`hsizoo.data.splits.few_shot_split`, the same splits as the few-shot harness), three read-outs
are fitted on the shots alone and scored on every other labelled pixel:

* ``linear``: multinomial logistic regression on the standardised features (L-BFGS, L2 penalty
  ``0.5 ||W||^2`` against the summed cross-entropy, scikit-learn's default ``C = 1``);
* ``linear_smooth``: the same probabilities smoothed over the map (Gaussian, sigma 3 px, valid
  pixels only), the smoothing :func:`hsizoo.finetune` applies to its own maps;
* ``knn``: k nearest shots by cosine similarity of the standardised features (k = min(5, shots)),
  similarity-weighted vote;
* ``lp``: label propagation from the shots (Zhou et al., alpha 0.99) over a 10-nearest-neighbour
  graph of the features (standardised, up to 30 principal components), features only: no pixel
  positions, so the graph is as good as the embedding.

The *graph probe* (issue 19) asks whether the features carry the scene's map beyond what pixel
position gives, which is what fine-tuning's scene graph lives on. Its read-outs use the graph of
:mod:`hsizoo.method.transduction` with its default settings (30 principal components smoothed at
1 px, position scaled so that 10 px weigh like one feature standard deviation, 10-NN, alpha 0.99):

* ``lp_pos``: that graph built on the standardised features in place of the spectra;
* ``lp_joint``: that graph on the scene's spectra *joined with* the features (the graph the
  pipeline builds when it refreshes its pseudo-labels, ``embed_weight`` 1).

The reference they must beat is the same graph on the spectra alone: the backbone spec
``spectra`` (:data:`SPECTRA`) probes the standardised spectra themselves, and its ``lp_pos`` is
the ``label_propagation`` baseline of the few-shot harness.

Nothing is tuned: the read-outs have fixed settings, so the only thing that changes between two
rows is the backbone. Feature standardisation uses all valid pixels of the scene, never labels.

A *random initialisation* row is the same architecture created with ``torch.manual_seed(seed)``
for split seed ``seed``, so comparisons against pretrained weights are paired over seeds and
average over initialisations as well as splits.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

__all__ = ["GRAPH_PROBES", "PROBES", "SPECTRA", "ProbeScores", "embed_scene", "feature_graph",
           "probe_features", "probe_model", "scene_graphs", "spectra_features"]

PROBES = ("linear", "linear_smooth", "knn", "lp", "lp_pos", "lp_joint")
#: Read-outs that run on a graph of the scene (built once per features, shared by the splits).
GRAPH_PROBES = ("lp", "lp_pos", "lp_joint")
#: The backbone spec whose "features" are the scene's standardised spectra (the reference).
SPECTRA = "spectra"
SMOOTH_SIGMA = 3.0


@dataclass(frozen=True)
class ProbeScores:
    """Overall accuracy (%) of each read-out for one (features, split)."""

    shots: int
    seed: int
    oa: dict[str, float]
    num_train: int
    num_test: int


@torch.inference_mode()
def embed_scene(model: torch.nn.Module, scene: Any, batch_size: int = 1024) -> np.ndarray:
    """Pooled features (N_valid, D) of every valid pixel, in ``np.nonzero(scene.valid)`` order.

    The scene is standardised with its own band statistics (as fine-tuning does) and each pixel
    is embedded from its P x P patch on the model's device.
    """
    from hsizoo.predict.engine import SharedPredictor
    from hsizoo.data.patches import prepare_cube
    from hsizoo.spectral.grid import band_stats

    valid = np.asarray(scene.valid, dtype=bool)
    cube = band_stats(scene.cube, valid).apply(scene.cube)
    padded = prepare_cube(cube, valid, int(model.patch_size))
    rows, cols = np.nonzero(valid)
    feats = SharedPredictor(model, scene.wavelengths, batch_size).predict_padded(
        padded, rows, cols, pre_logits=True)
    out = feats.float().numpy()
    if not np.isfinite(out).all():
        raise FloatingPointError("The backbone produced NaN/inf features; the weights are broken.")
    return out


def _standardise(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    return ((x - x.mean(0)) / np.maximum(x.std(0), 1e-6)).astype(np.float32)


def _logistic(x_train: np.ndarray, y_train: np.ndarray, x_all: np.ndarray, num_classes: int
              ) -> np.ndarray:
    """Multinomial logistic regression (C = 1) fitted by L-BFGS; probabilities of x_all."""
    xt = torch.as_tensor(x_train, dtype=torch.float64)
    yt = torch.as_tensor(y_train, dtype=torch.long)
    w = torch.zeros(xt.shape[1], num_classes, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=500, tolerance_grad=1e-7,
                            tolerance_change=1e-10, history_size=20,
                            line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xt @ w + b, yt, reduction="sum") \
            + 0.5 * (w * w).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    with torch.no_grad():
        logits = torch.as_tensor(x_all, dtype=torch.float64) @ w + b
        return logits.softmax(1).float().numpy()


def _knn(x_train: np.ndarray, y_train: np.ndarray, x_all: np.ndarray, num_classes: int, k: int
         ) -> np.ndarray:
    def unit(a: np.ndarray) -> np.ndarray:
        return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)

    sim = unit(x_all) @ unit(x_train).T  # (N, n_train)
    k = min(k, x_train.shape[0])
    idx = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    votes = np.zeros((x_all.shape[0], num_classes), np.float32)
    w = np.take_along_axis(sim, idx, 1).clip(min=0) + 1e-6
    np.add.at(votes, (np.repeat(np.arange(x_all.shape[0]), k), y_train[idx].reshape(-1)),
              w.reshape(-1))
    return votes


def feature_graph(x: np.ndarray) -> Any:
    """The ``lp`` read-out's graph: 10 nearest neighbours of the standardised features (up to 30
    principal components). It depends on the features only, so one graph serves every split."""
    from hsizoo.method.transduction import knn_graph

    z = _standardise(x)
    if z.shape[1] > 30:
        zc = z - z.mean(0)
        _, _, vt = np.linalg.svd(zc[:: max(1, zc.shape[0] // 20000)], full_matrices=False)
        z = _standardise(zc @ vt[:30].T)
    return knn_graph(z, 10)


def _standardised_cube(scene: Any) -> tuple[np.ndarray, np.ndarray]:
    from hsizoo.spectral.grid import band_stats

    valid = np.asarray(scene.valid, dtype=bool)
    return band_stats(scene.cube, valid).apply(scene.cube), valid


def spectra_features(scene: Any) -> np.ndarray:
    """The reference "features": every valid pixel's standardised spectrum, (N_valid, B)."""
    cube, valid = _standardised_cube(scene)
    return np.asarray(cube, np.float32)[valid]


def scene_graphs(features: np.ndarray, scene: Any, probes: Sequence[str] = GRAPH_PROBES
                 ) -> dict[str, Any]:
    """The graphs of the graph read-outs named in ``probes`` for one set of features.

    ``lp``: :func:`feature_graph`. ``lp_pos``: the scene graph of
    :func:`hsizoo.method.transduction.graph_features` (default settings) with the standardised
    features laid on the map in place of the spectra. ``lp_joint``: the same graph on the
    spectra with the features joined (``embeddings=``, weight 1).
    """
    from hsizoo.method.transduction import TransductionConfig, graph_features, knn_graph

    cfg = TransductionConfig()
    out: dict[str, Any] = {}
    if "lp" in probes:
        out["lp"] = feature_graph(features)
    if "lp_pos" in probes or "lp_joint" in probes:
        valid = np.asarray(scene.valid, dtype=bool)
        if features.shape[0] != int(valid.sum()):
            raise ValueError(f"{features.shape[0]} feature rows for {int(valid.sum())} valid "
                             "pixels.")
    if "lp_pos" in probes:
        grid = np.zeros(valid.shape + (features.shape[1],), np.float32)
        grid[valid] = _standardise(features)
        out["lp_pos"] = knn_graph(graph_features(grid, valid, cfg), cfg.neighbours)
    if "lp_joint" in probes:
        cube, _ = _standardised_cube(scene)
        out["lp_joint"] = knn_graph(graph_features(cube, valid, cfg, embeddings=features,
                                                   embed_weight=1.0), cfg.neighbours)
    return out


def _lp(graph: Any, train_idx: np.ndarray, y_train: np.ndarray, num_classes: int
        ) -> np.ndarray:
    from hsizoo.method.transduction import propagate, propagation_seeds

    seeds = propagation_seeds(train_idx, y_train, graph.shape[0], num_classes)
    return propagate(graph, seeds, 0.99, 100)


def probe_features(features: np.ndarray, scene: Any, shots: int, seed: int,
                   probes: Sequence[str] = PROBES, graph: Any = None) -> ProbeScores:
    """Fit the read-outs on one few-shot split of the scene's labels and score them.

    Args:
        features: (N_valid, D) from :func:`embed_scene`.
        scene: The labelled scene the features are of.
        shots: Training pixels per class.
        seed: Split seed (:func:`hsizoo.data.splits.few_shot_split`).
        probes: Read-outs to run (subset of :data:`PROBES`).
        graph: :func:`scene_graphs` of the same features (or the bare :func:`feature_graph`,
            the ``lp`` graph), to reuse across splits; graphs not given are built here.

    Returns:
        The accuracies.
    """
    import warnings

    from hsizoo.predict.engine import smooth_probabilities
    from hsizoo.data.splits import few_shot_split

    unknown = set(probes) - set(PROBES)
    if unknown:
        raise ValueError(f"Unknown probe(s) {sorted(unknown)}; choose from {PROBES}.")
    valid = np.asarray(scene.valid, dtype=bool)
    labels = np.where(valid, np.asarray(scene.labels), 0)
    if features.shape[0] != int(valid.sum()):
        raise ValueError(f"{features.shape[0]} feature rows for {int(valid.sum())} valid pixels.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short classes are recorded by the split itself
        split = few_shot_split(labels, shots, seed)
    classes = np.array(split.classes)
    lut = np.zeros(int(classes.max()) + 1, np.int64)
    lut[classes] = np.arange(classes.size)
    train_v, test_v = split.train[valid], split.test[valid]
    tr = np.flatnonzero(train_v > 0)
    te = np.flatnonzero(test_v > 0)
    ytr, yte = lut[train_v[tr]], lut[test_v[te]]
    K = classes.size
    x = _standardise(features)
    oa: dict[str, float] = {}

    def score(probs: np.ndarray) -> float:
        return float(100.0 * np.mean(probs[te].argmax(1) == yte))

    if "linear" in probes or "linear_smooth" in probes:
        p = _logistic(x[tr], ytr, x, K)
        if "linear" in probes:
            oa["linear"] = score(p)
        if "linear_smooth" in probes:
            grid = np.zeros(valid.shape + (K,), np.float32)
            grid[valid] = p
            oa["linear_smooth"] = score(smooth_probabilities(grid, valid, SMOOTH_SIGMA)[valid])
    if "knn" in probes:
        oa["knn"] = score(_knn(x[tr], ytr, x, K, min(5, shots)))
    graphs = graph if isinstance(graph, dict) else ({} if graph is None else {"lp": graph})
    wanted = [p for p in GRAPH_PROBES if p in probes]
    missing = [p for p in wanted if p not in graphs]
    if missing:
        graphs = {**graphs, **scene_graphs(features, scene, missing)}
    for name in wanted:
        oa[name] = score(_lp(graphs[name], tr, ytr, K))
    return ProbeScores(shots=shots, seed=seed, oa=oa, num_train=int(tr.size),
                       num_test=int(te.size))


def probe_model(model: torch.nn.Module, scene: Any, shots: Sequence[int] = (5,),
                seeds: Sequence[int] = range(5), probes: Sequence[str] = ("linear",)
                ) -> dict[int, float]:
    """Mean OA of one read-out family over seeds, per shot count: the probe curve of
    ``hsizoo pretrain`` (the first probe named is averaged)."""
    was = model.training
    try:
        feats = embed_scene(model.eval(), scene)
    finally:
        model.train(was)
    out = {}
    for k in shots:
        vals = [probe_features(feats, scene, k, s, probes).oa[probes[0]] for s in seeds]
        out[int(k)] = float(np.mean(vals)) if vals else math.nan
    return out
