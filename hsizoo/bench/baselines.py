"""Supervised baselines of the few-shot benchmark: SVMs, a random forest and HybridSN.

Every baseline is trained on the shots of one split only and returns a *predictor*, a callable
``predict(rows, cols) -> class ids 1..K`` for any pixels of the same scene, so that the runner
times training and test-pixel prediction separately and maps the rest of the scene only when it
keeps a class map.

* ``svm_raw``: RBF-SVM on per-band standardised spectra. The standardisation uses the scene's own
  band statistics (:func:`hsizoo.spectral.grid.band_stats`, the one normalisation helper), computed
  on all valid pixels without labels: the unlabelled scene is always at hand in this task
  (DESIGN.md), and 1 to 10 shots per class are too few to estimate 200 band variances.
* ``svm_filtered``: the same SVM on 7 x 7 mean-filtered spectra (a cheap spatial prior that makes
  the SVM a strong few-shot baseline on field-like scenes).
* ``rf``: a random forest on the filtered spectra.
* ``hybridsn``: :class:`hsizoo.models.hybridsn.HybridSN` trained from scratch on the shots
  (:func:`train_patch_classifier`).
* ``label_propagation``: no network: Zhou et al.'s label propagation from the shots over a
  10-nearest-neighbour graph of all valid pixels (30 principal components of the standardised
  spectra, Gaussian-smoothed with sigma 1 px, joined by the pixel coordinates), the graph stage of
  transductive DAFT with the same code (:mod:`hsizoo.method.transduction`).

SVM hyper-parameters: ``C`` and ``gamma`` are chosen by a stratified k-fold cross-validation on
the shots only (k = min(3, fewest shots of a class)), over ``C`` in {1, 10, 100, 1000} and
``gamma`` in {0.1, 0.3, 1, 3, 10} / B (B = number of bands; 1 / B is scikit-learn's "scale" for
standardised data). With a single shot per class no fold can be held out, and the fixed values
``C = 100``, ``gamma = 1 / B`` are used. The chosen values are returned and stored with each result.

scikit-learn is an optional dependency (``pip install "hsizoo[bench]"``); it is imported inside
the functions that need it.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

__all__ = ["BASELINE_METHODS", "Predictor", "filtered_cube", "fit_hybridsn", "fit_random_forest",
           "fit_svm", "require_sklearn", "standardised", "train_patch_classifier"]

#: ``predict(rows, cols)`` -> (N,) class ids 1..K of those pixels.
Predictor = Callable[[np.ndarray, np.ndarray], np.ndarray]

SVM_C_GRID = (1.0, 10.0, 100.0, 1000.0)
SVM_GAMMA_GRID = (0.1, 0.3, 1.0, 3.0, 10.0)  # times 1 / B
SVM_FIXED = {"C": 100.0, "gamma_times_bands": 1.0}


def require_sklearn() -> Any:
    """Import scikit-learn or explain how to install it.

    Returns:
        The ``sklearn`` module.

    Raises:
        ImportError: scikit-learn is not installed.
    """
    try:
        import sklearn
    except ImportError as err:
        raise ImportError(
            "The few-shot benchmark's SVM and random-forest baselines need scikit-learn, an "
            "optional dependency of hsizoo: install it with  pip install \"hsizoo[bench]\"  (or "
            "leave svm_raw, svm_filtered and rf out of --methods).") from err
    return sklearn


# ----------------------------------------------------------------------------------------------
# Features


def standardised(scene: Any, seed: int = 0) -> np.ndarray:
    """The scene's cube standardised per band with its own statistics, invalid pixels 0.

    Args:
        scene: A :class:`~hsizoo.io.Scene`.
        seed: Seed of the pixel subsample of :func:`hsizoo.spectral.grid.band_stats` (large scenes).

    Returns:
        (H, W, B) float32.
    """
    from hsizoo.spectral.grid import band_stats

    stats = band_stats(scene.cube, scene.valid, seed=seed)
    x = stats.apply(scene.cube)
    x[~scene.valid] = 0.0
    return np.nan_to_num(x, copy=False)


def filtered_cube(cube: np.ndarray, valid: np.ndarray, size: int = 7) -> np.ndarray:
    """Mean of each band over the ``size`` x ``size`` window around every pixel.

    Invalid pixels do not contribute (normalised convolution: the window mean of the valid
    pixels only); the scene edge is handled by reflection.

    Args:
        cube: (H, W, B) values.
        valid: (H, W) validity mask.
        size: Window side in pixels (odd).

    Returns:
        (H, W, B) float32 filtered cube (0 where a window holds no valid pixel).
    """
    from scipy.ndimage import uniform_filter

    if size < 1 or size % 2 == 0:
        raise ValueError(f"The filter window must be an odd number of pixels >= 1; got {size}.")
    w = np.asarray(valid, dtype=np.float32)
    num = uniform_filter(np.asarray(cube, np.float32) * w[..., None], size=(size, size, 1),
                         mode="reflect")
    den = uniform_filter(w, size=size, mode="reflect")[..., None]
    return np.where(den > 1e-6, num / np.maximum(den, 1e-6), 0.0).astype(np.float32)


def _shots(train: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r, c = np.nonzero(train)
    return r, c, train[r, c].astype(np.int64)


# ----------------------------------------------------------------------------------------------
# scikit-learn baselines


def fit_svm(features: np.ndarray, train: np.ndarray, seed: int) -> tuple[Predictor, dict[str, Any]]:
    """RBF-SVM on per-pixel features, C and gamma by cross-validation on the shots.

    Args:
        features: (H, W, F) standardised features.
        train: (H, W) training shots (0 elsewhere).
        seed: Seed of the cross-validation folds.

    Returns:
        (predictor, info) with the chosen ``C``, ``gamma`` and how they were chosen.
    """
    require_sklearn()
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.svm import SVC

    r, c, y = _shots(train)
    x = features[r, c]
    nb = features.shape[-1]
    folds = min(3, int(np.bincount(y)[np.unique(y)].min()))
    if folds >= 2:
        grid = {"C": list(SVM_C_GRID), "gamma": [g / nb for g in SVM_GAMMA_GRID]}
        search = GridSearchCV(SVC(kernel="rbf"), grid,
                              cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
                              scoring="accuracy", n_jobs=1, refit=True)
        search.fit(x, y)
        clf = search.best_estimator_
        info = {"C": float(clf.C), "gamma": float(clf.gamma), "selection": f"{folds}-fold CV on "
                "the shots", "cv_accuracy": float(search.best_score_)}
    else:
        clf = SVC(kernel="rbf", C=SVM_FIXED["C"], gamma=SVM_FIXED["gamma_times_bands"] / nb)
        clf.fit(x, y)
        info = {"C": float(clf.C), "gamma": float(clf.gamma),
                "selection": "fixed (one shot per class leaves no fold for validation)"}

    def predict(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return clf.predict(features[rows, cols]).astype(np.int64)

    return predict, info


def fit_random_forest(features: np.ndarray, train: np.ndarray, seed: int,
                      n_estimators: int = 200) -> tuple[Predictor, dict[str, Any]]:
    """Random forest on per-pixel features.

    Args:
        features: (H, W, F) features.
        train: (H, W) training shots.
        seed: Seed of the forest.
        n_estimators: Trees.

    Returns:
        (predictor, info).
    """
    require_sklearn()
    from sklearn.ensemble import RandomForestClassifier

    r, c, y = _shots(train)
    # One job: the benchmark measures single-process CPU time (and shares the machine).
    clf = RandomForestClassifier(n_estimators=n_estimators, max_features="sqrt",
                                 random_state=seed, n_jobs=1)
    clf.fit(features[r, c], y)

    def predict(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return clf.predict(features[rows, cols]).astype(np.int64)

    return predict, {"n_estimators": n_estimators, "max_features": "sqrt"}


def _svm_raw(scene: Any, train: np.ndarray, seed: int, opts: Any) -> tuple[Predictor, dict]:
    predict, info = fit_svm(standardised(scene, seed), train, seed)
    return predict, {**info, "features": "standardised raw spectra"}


def _svm_filtered(scene: Any, train: np.ndarray, seed: int, opts: Any) -> tuple[Predictor, dict]:
    feats = filtered_cube(standardised(scene, seed), scene.valid, opts.filter_size)
    predict, info = fit_svm(feats, train, seed)
    return predict, {**info, "features": f"{opts.filter_size}x{opts.filter_size} mean-filtered "
                     "standardised spectra"}


def _rf(scene: Any, train: np.ndarray, seed: int, opts: Any) -> tuple[Predictor, dict]:
    feats = filtered_cube(standardised(scene, seed), scene.valid, opts.filter_size)
    predict, info = fit_random_forest(feats, train, seed, opts.rf_trees)
    return predict, {**info, "features": f"{opts.filter_size}x{opts.filter_size} mean-filtered "
                     "standardised spectra"}


# ----------------------------------------------------------------------------------------------
# HybridSN from scratch


def train_patch_classifier(model: Any, padded: Any, rows: np.ndarray, cols: np.ndarray,
                           labels: np.ndarray, wavelengths: np.ndarray, *, steps: int,
                           seed: int, batch_size: int = 64, lr: float = 1e-3,
                           weight_decay: float = 1e-4, time_budget: float | None = None
                           ) -> dict[str, Any]:
    """Supervised training of a patch classifier on a few labelled pixels.

    Class-balanced batches (each class equally likely, then one of its shots), a random flip /
    rotation of every patch (a pixel's class does not depend on the patch orientation), AdamW with
    a linear warm-up over the first 10 % of the steps and a cosine decay, a fixed number of steps.

    Args:
        model: A model ``model(x, wavelengths) -> logits`` with ``patch_size``.
        padded: (B, H + 2r, W + 2r) tensor from :func:`hsizoo.data.patches.prepare_cube`.
        rows: (N,) rows of the shots.
        cols: (N,) columns of the shots.
        labels: (N,) class indices 0..K-1.
        wavelengths: Band centres in nm.
        steps: Optimiser steps.
        seed: Seed of the sampling and augmentation.
        batch_size: Patches per step.
        lr: Peak learning rate.
        weight_decay: AdamW weight decay.
        time_budget: Stop after this many seconds (None = all steps).

    Returns:
        Training log: steps done, final loss, settings.
    """
    import torch
    import torch.nn.functional as F

    from hsizoo.finetune.training import augment as _augment
    from hsizoo.data.patches import gather_patches

    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    P = int(model.patch_size)
    x_lab = gather_patches(padded, rows, cols, P)
    y = torch.as_tensor(labels, dtype=torch.long)
    by_class = [ix for ix in (torch.nonzero(y == k).view(-1) for k in range(int(y.max()) + 1))
                if ix.numel() > 0]
    from hsizoo.runtime.optim import set_step_lr, warmup_cosine

    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = warmup_cosine(opt, steps)  # linear warm-up over 10 % of the steps, then cosine
    model.train()
    loss = torch.zeros(())
    done = 0
    for step in range(steps):
        if time_budget is not None and time.perf_counter() - t0 > time_budget:
            break
        set_step_lr(schedule, step)
        cls = torch.randint(0, len(by_class), (batch_size,), generator=gen)
        pick = torch.stack([by_class[k][torch.randint(0, by_class[k].numel(), (1,),
                                                      generator=gen)][0] for k in cls])
        loss = F.cross_entropy(model(_augment(x_lab[pick], gen), wavelengths), y[pick])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        done += 1
    model.eval()
    return {"steps": steps, "steps_done": done, "final_loss": float(loss.detach()),
            "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay,
            "optimizer": "AdamW, warm-up + cosine", "augmentation": "random flips/rotations"}


def patch_predictor(model: Any, padded: Any, wavelengths: np.ndarray,
                    batch_size: int = 1024) -> Predictor:
    """``predict(rows, cols)`` for a trained patch classifier, in batches.

    Args:
        model: The classifier (set to eval mode).
        padded: The padded standardised scene.
        wavelengths: Band centres in nm.
        batch_size: Patches per forward pass.

    Returns:
        The predictor (class ids 1..K).
    """
    import torch

    from hsizoo.data.patches import gather_patches

    P = int(model.patch_size)

    @torch.inference_mode()
    def predict(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        model.eval()
        out = [np.zeros(0, dtype=np.int64)]
        for i in range(0, len(rows), batch_size):
            x = gather_patches(padded, rows[i:i + batch_size], cols[i:i + batch_size], P)
            out.append(model(x, wavelengths).argmax(1).numpy().astype(np.int64) + 1)
        return np.concatenate(out)

    return predict


def fit_hybridsn(scene: Any, train: np.ndarray, seed: int, opts: Any
                 ) -> tuple[Predictor, dict[str, Any]]:
    """HybridSN trained from scratch on the shots (see :func:`train_patch_classifier`).

    Args:
        scene: The scene.
        train: (H, W) training shots.
        seed: Seed of initialisation, sampling and augmentation.
        opts: Benchmark options (``hybridsn_model``, ``baseline_steps``, ``train_budget``).

    Returns:
        (predictor, info).
    """
    import torch

    from hsizoo.models._factory import create_model
    from hsizoo.data.patches import prepare_cube
    from hsizoo.spectral.grid import band_stats

    torch.manual_seed(seed)
    K = int(max(int(train.max()), len(scene.class_names or [])))
    model = create_model(opts.hybridsn_model, num_classes=K)
    stats = band_stats(scene.cube, scene.valid, seed=seed)
    padded = prepare_cube(stats.apply(scene.cube), scene.valid, model.patch_size)
    r, c, y = _shots(train)
    wl = np.asarray(scene.wavelengths, dtype=np.float64)
    log = train_patch_classifier(model, padded, r, c, y - 1, wl, steps=opts.baseline_steps,
                                 seed=seed, time_budget=opts.train_budget)
    return patch_predictor(model, padded, wl), {"model": opts.hybridsn_model, **log}


def _label_propagation(scene: Any, train: np.ndarray, seed: int, opts: Any, cv: bool = False,
                       discriminant_rounds: int = 0, embedding_view: bool = False,
                       prior_iterations: int = 0) -> tuple[Predictor, dict]:
    from hsizoo.method.transduction import TransductionConfig, propagate_from_shots

    # The plain graph baseline is issue 19's "30-line graph": no discriminant rounds, whatever
    # the pipeline's default.
    cfg = TransductionConfig(discriminant_rounds=discriminant_rounds,
                             embedding_view=embedding_view, prior_iterations=prior_iterations)
    K = int(max(int(train.max()), len(scene.class_names or [])))
    std = standardised(scene, seed)
    record = None
    if cv:
        from hsizoo.method.graph_cv import choose_graph_settings

        cfg, record = choose_graph_settings(std, scene.valid, train, K, cfg)
    embeddings, weights = None, None
    if embedding_view:  # the in-domain checkpoint's frozen embeddings (hsizoo.method.views)
        from hsizoo.bench.backbones import load_backbone
        from hsizoo.method.probe import embed_scene

        model, weights = load_backbone(opts.checkpoints["indomain"], seed)
        embeddings = embed_scene(model, scene)
    _, probs = propagate_from_shots(std, scene.valid, train, K, cfg, embeddings)
    class_map = np.zeros(scene.valid.shape, np.int64)
    class_map[scene.valid] = probs.argmax(1) + 1

    def predict(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return class_map[rows, cols]

    info = {k: v for k, v in cfg.as_dict().items()
            if k in ("components", "feature_sigma", "position_scale", "neighbours", "alpha",
                     "iterations", "discriminant_rounds", "prior_iterations")}
    if embedding_view:
        info["weights"] = weights
    return predict, {**info, "graph_cv": record} if cv else info


def _label_propagation_cv(scene: Any, train: np.ndarray, seed: int, opts: Any
                          ) -> tuple[Predictor, dict]:
    return _label_propagation(scene, train, seed, opts, cv=True)


def _label_propagation_discriminant(scene: Any, train: np.ndarray, seed: int, opts: Any
                                    ) -> tuple[Predictor, dict]:
    return _label_propagation(scene, train, seed, opts, discriminant_rounds=2)


def _label_propagation_views(scene: Any, train: np.ndarray, seed: int, opts: Any
                             ) -> tuple[Predictor, dict]:
    """The graph baseline combined with a propagation over the in-domain checkpoint's frozen
    embeddings alone (:mod:`hsizoo.method.views`): the graph probe of the embedding view, no
    training."""
    return _label_propagation(scene, train, seed, opts, embedding_view=True)


def _label_propagation_prior(scene: Any, train: np.ndarray, seed: int, opts: Any
                             ) -> tuple[Predictor, dict]:
    """The graph baseline with the scene's class proportions re-estimated from its own
    propagated posteriors (:func:`hsizoo.method.graph.class_prior_em`, 10 EM iterations)."""
    return _label_propagation(scene, train, seed, opts, prior_iterations=10)


#: Baseline name -> (description, fit function(scene, train, seed, opts) -> (predictor, info)).
BASELINE_METHODS: dict[str, tuple[str, Callable[..., tuple[Predictor, dict[str, Any]]]]] = {
    "svm_raw": ("RBF-SVM on standardised spectra", _svm_raw),
    "svm_filtered": ("RBF-SVM on 7x7 mean-filtered spectra", _svm_filtered),
    "rf": ("random forest on 7x7 mean-filtered spectra", _rf),
    "hybridsn": ("HybridSN trained from scratch on the shots", fit_hybridsn),
    "label_propagation": ("label propagation over a k-NN graph of the whole scene (spectra + "
                          "position), no network", _label_propagation),
    "label_propagation_cv": ("label propagation with the graph's position scale and feature "
                             "smoothing chosen by cross-validation on the shots",
                             _label_propagation_cv),
    "label_propagation_discriminant": ("label propagation with discriminant self-training of "
                                       "the graph (hsizoo.method.discriminant), no network",
                                       _label_propagation_discriminant),
    "label_propagation_views": ("label propagation combined with a propagation over the "
                                "in-domain checkpoint's frozen embeddings (hsizoo.method.views), "
                                "no training", _label_propagation_views),
    "label_propagation_prior": ("label propagation with the class proportions re-estimated by EM "
                                "from the propagated posteriors, no network",
                                _label_propagation_prior),
}
