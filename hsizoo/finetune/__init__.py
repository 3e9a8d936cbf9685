"""Few-shot fine-tuning: ``hsizoo.finetune(scene, labels, shots=10)`` to a georeferenced class map.

Transductive DAFT, the method as this project reads it (DESIGN.md, "DAFT"), tuned for a CPU and a
handful of labels per class:

1. Inputs (:mod:`.inputs`): the scene is standardised per band with its own statistics, the
   label map is checked and the shots drawn, the backbone built from its self-supervised weights.
2. Transduction (:mod:`.transduction`): label propagation from the shots over a k-NN graph of all
   valid pixels (spectra and position) gives the teacher's first pseudo-labels, class-balanced.
3. Training (:mod:`.training`): head warm-up on frozen features, then full fine-tuning with
   layer-wise learning-rate decay on class-balanced shots and pseudo-labels, with DAFT's
   diffusion-noised feature alignment and prediction agreement against an EMA teacher
   (:mod:`hsizoo.method.daft`). At each refresh the teacher classifies the scene once (shared
   computation), its embeddings join the graph, and the propagation, seeded by the shots and the
   fused teacher/propagation probabilities, gives new pseudo-labels.
4. The result (:mod:`.result`): on the training scene, the student's spatially regularised
   probabilities propagated over the scene's graph (:func:`.transduction.refine`); on other
   scenes, the student alone.

Every part is switchable (``daft=``, ``transduction=``, ``pseudo_rounds=``); ``daft=False`` is
plain fine-tuning on the shots. No test label is ever used: the only labels are the shots.
"""
from __future__ import annotations

import sys
import time
import types
import warnings
from dataclasses import replace
from typing import Any, Sequence

import numpy as np
import torch

from hsizoo.method.daft import DaftConfig, Teacher, cosine_alpha_bar, daft_losses
from hsizoo.data.patches import gather_patches, prepare_cube
from hsizoo.spectral.grid import band_stats
from hsizoo.finetune.inputs import as_scene, build_model, check_coverage, load_label_map, prepare_labels
from hsizoo.finetune.result import FineTuned, load_finetuned
from hsizoo.runtime.device import autocast, grad_scaler, resolve_precision
from hsizoo.finetune.training import augment, fit_head, layer_decay_optimizer, resolve_device, warmup_cosine
from hsizoo.method.transduction import (GraphRefiner, TransductionConfig, fuse, graph_features, knn_graph,
                           propagate, propagate_from_shots, propagation_seeds,
                           select_pseudo_labels)

__all__ = ["FineTuned", "TransductionConfig", "finetune", "load_finetuned", "prepare_labels"]




class _SceneGraph:
    """The transductive state of one fine-tuning run: graph, propagated probabilities, seeds."""

    def __init__(self, std_cube: np.ndarray, valid: np.ndarray, train: np.ndarray, K: int,
                 cfg: TransductionConfig) -> None:
        self.cv: dict[str, Any] | None = None
        if cfg.cv_graph:
            from hsizoo.method.graph_cv import choose_graph_settings

            cfg, self.cv = choose_graph_settings(std_cube, valid, train, K, cfg)
        self.cfg, self.valid, self.K = cfg, valid, K
        self.std_cube = std_cube
        lab = train[valid]
        self.shot_index = np.flatnonzero(lab > 0)
        self.shot_class = lab[self.shot_index] - 1
        # The graph of spectra and position: first propagation and final refinement.
        self.graph, self.probs = propagate_from_shots(std_cube, valid, train, K, cfg)

    def _propagate(self, graph: Any, prior: np.ndarray | None) -> np.ndarray:
        cfg = self.cfg
        seeds = propagation_seeds(self.shot_index, self.shot_class, graph.shape[0], self.K,
                                  prior, cfg.refresh_seed_weight)
        return propagate(graph, seeds, cfg.alpha, cfg.iterations)

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
        return GraphRefiner(self.graph, self.shot_index, self.shot_class, cfg.refine_alpha,
                            cfg.iterations, cfg.refine_filter, guide, cfg.guided_radius,
                            cfg.guided_eps)


def _scene_outputs(net: torch.nn.Module, padded: torch.Tensor, valid: np.ndarray,
                   wavelengths: np.ndarray, sigma: float, precision: str = "fp32"
                   ) -> tuple[np.ndarray, np.ndarray]:
    """One shared-computation pass over the valid pixels: (embeddings, smoothed probabilities)."""
    from hsizoo.predict.engine import SharedPredictor, smooth_probabilities

    rows, cols = np.nonzero(valid)
    feats = SharedPredictor(net, wavelengths, 1024, precision).predict_padded(
        padded, rows, cols, pre_logits=True)
    with torch.inference_mode():
        probs = net.head(feats.to(next(net.parameters()).device)).softmax(1).cpu().numpy()
    grid = np.zeros(valid.shape + (probs.shape[1],), np.float32)
    grid[rows, cols] = probs
    return feats.numpy(), smooth_probabilities(grid, valid, sigma)[rows, cols]


# ----------------------------------------------------------------------------------------------
# The API


def finetune(scene_or_cube: Any, labels: Any = None, shots: int | None = 10,
             model: str = "s2former_tiny", pretrained: bool | None = None, seed: int = 0,
             wavelengths: Sequence[float] | None = None, *, sensor: str | None = None,
             class_names: Sequence[str] | None = None, daft: bool | DaftConfig = True,
             transduction: bool | TransductionConfig = True,
             steps: int = 200, batch_size: int = 64, lr: float = 1e-3, layer_decay: float = 0.75,
             weight_decay: float = 0.05, head_steps: int = 200, label_smoothing: float = 0.1,
             pseudo_rounds: int = 1, adapt_steps: int = 0, smooth_sigma: float = 3.0,
             time_budget: float | None = None,
             checkpoint_path: str | None = None, progress: bool = True,
             device: str | torch.device | None = None, precision: str = "fp32",
             model_kwargs: dict[str, Any] | None = None) -> FineTuned:
    """Fine-tune an S2Former on a few labelled pixels of a scene (DAFT by default).

    Args:
        scene_or_cube: A :class:`~hsizoo.io.Scene`, a raster / .mat path, or an (H, W, B) array
            (then give ``wavelengths`` or ``sensor``).
        labels: (H, W) label map (0 = unlabelled, 1..K), a file holding one, or None for the
            scene's own labels. A full map gives ``shots`` pixels per class drawn with ``seed``;
            with ``shots=None`` it is a sparse map whose labelled pixels are all used.
        shots: Training pixels per class, or None for every labelled pixel.
        model: Registered model name (``"s2former_tiny"``), ``"arch.tag"`` for given weights,
            or a folder from ``save_pretrained``.
        pretrained: True = the registered self-supervised weights (error if there are none);
            None = use them when they exist, else warn and start from a random initialisation;
            False = random initialisation.
        seed: Seed of the shot draw and of training.
        wavelengths: Band centres in nm (override the scene's).
        sensor: Sensor preset naming the bands of an array or a file without wavelengths.
        class_names: Names of classes 1..K (default the scene's, else "class k").
        daft: True for DAFT with default settings, a :class:`~hsizoo.method.daft.DaftConfig`, or False
            for plain fine-tuning (cross-entropy on the shots only, no transduction).
        transduction: True for label propagation over the scene's k-NN graph with default
            settings, a :class:`TransductionConfig`, or False (pseudo-labels, if any, then come
            from the teacher's own predictions at each refresh). Used only with DAFT.
        steps: Optimiser steps of full fine-tuning.
        batch_size: Labelled patches per step (class-balanced, augmented).
        lr: Peak learning rate of the last block and the head.
        layer_decay: Learning-rate factor per block towards the input.
        weight_decay: AdamW weight decay.
        head_steps: Steps of the head warm-up on frozen features (0 skips it).
        label_smoothing: Label smoothing of the cross-entropy.
        pseudo_rounds: Refreshes of the pseudo-labels by the improved teacher during DAFT.
        adapt_steps: Scene-adaptive self-supervised steps before fine-tuning (0 = none).
        smooth_sigma: Spatial regularisation (pixels) of the class probabilities, used for the
            pseudo-labels and the final map (:func:`hsizoo.predict.engine.smooth_probabilities`);
            0 turns it off.
        time_budget: Stop full fine-tuning after this many seconds (None = run all steps).
        checkpoint_path: Backbone weights to start from (a model.safetensors or folder).
        progress: Show progress bars.
        device: Where to train and predict: ``"cuda"``, ``"cpu"``, a torch.device, or None for
            the GPU when there is one, else the CPU. The fitted model stays there.
        precision: Mixed precision of training and prediction: ``"fp32"`` (default),
            ``"bf16"`` (autocast; GPU or CPU) or ``"fp16"`` (autocast with loss scaling; GPU
            only). Weights and outputs stay float32; the fitted model predicts in it too.
        model_kwargs: Extra model arguments (e.g. ``drop_path_rate``).

    Returns:
        A :class:`FineTuned`.

    Raises:
        ValueError: bad labels or shots, a sensor the model cannot use, missing weights with
            ``pretrained=True``.
    """
    from tqdm.auto import tqdm

    t_start = time.perf_counter()
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    cfg = daft if isinstance(daft, DaftConfig) else DaftConfig(enabled=bool(daft))
    tcfg = transduction if isinstance(transduction, TransductionConfig) \
        else TransductionConfig(enabled=bool(transduction))
    use_graph = cfg.enabled and tcfg.enabled

    scene = as_scene(scene_or_cube, wavelengths, sensor)
    wl = np.asarray(scene.wavelengths, dtype=np.float64)
    if labels is not None:
        # Read (and check) a label file once; keep the user's full map with the scene, so that
        # evaluate() can use it.
        labels = load_label_map(labels, scene)
        if scene.labels is None:
            scene = replace(scene, labels=labels)
    train, K, names = prepare_labels(labels, scene, shots, seed, class_names)
    dev = resolve_device(device)
    precision = resolve_precision(precision, dev)
    net, weights = build_model(model, pretrained, checkpoint_path, K, scene.sensor,
                               **(model_kwargs or {}))
    net = net.to(dev)
    coverage = check_coverage(net, wl)
    P = net.patch_size

    stats = band_stats(scene.cube, scene.valid, seed=seed)
    std_cube = stats.apply(scene.cube)
    padded = prepare_cube(std_cube, scene.valid, P)
    r, c = np.nonzero(train)
    y = torch.as_tensor(train[r, c] - 1, dtype=torch.long)
    x_lab = gather_patches(padded, r, c, P)
    ur, uc = np.nonzero(scene.valid & (train == 0))
    t_prep = time.perf_counter()

    history: dict[str, Any] = dict(model=model, weights=weights, shots=shots, seed=seed,
                                   num_train=int(len(y)), num_classes=K, daft=cfg.as_dict(),
                                   transduction=tcfg.as_dict() if use_graph else None,
                                   steps=steps, batch_size=batch_size, lr=lr,
                                   layer_decay=layer_decay, coverage=coverage,
                                   smooth_sigma=smooth_sigma, pseudo_rounds=pseudo_rounds,
                                   device=str(dev), precision=precision)

    if adapt_steps > 0:
        history["adapt"] = _scene_adapt(net, scene, stats, adapt_steps, seed, progress)
    t_adapt = time.perf_counter()

    # Transduction: the first pseudo-labels come from propagation over the whole scene.
    sg = _SceneGraph(std_cube, scene.valid, train, K, tcfg) if use_graph else None
    if sg is not None and sg.cv is not None:
        history["graph_cv"] = sg.cv
    use_pseudo = cfg.enabled and cfg.pseudo_weight > 0 and ur.size > 0 \
        and (sg is not None or pseudo_rounds > 0)
    # Pseudo-labelled pixels as (rows, cols); their patches are gathered per batch (the whole
    # scene's patches would take GBs on a large scene).
    pseudo_rc: tuple[np.ndarray, np.ndarray] | None = None
    pseudo_y: torch.Tensor | None = None

    vr, vc = np.nonzero(scene.valid)  # graph nodes and teacher outputs are in this order
    is_shot = train[vr, vc] > 0

    def set_pseudo(probs: np.ndarray) -> None:
        nonlocal pseudo_rc, pseudo_y
        idx, cls = select_pseudo_labels(probs, is_shot, tcfg.pseudo_fraction,
                                        tcfg.pseudo_max_per_class)
        pseudo_rc = (vr[idx], vc[idx])
        pseudo_y = torch.as_tensor(cls, dtype=torch.long)
        history.setdefault("pseudo_counts", []).append(int(cls.size))

    if use_pseudo and sg is not None:
        set_pseudo(sg.probs)
    t_graph = time.perf_counter()

    if head_steps > 0:
        history["head_loss"] = fit_head(net, x_lab, y, wl, head_steps, 1e-2, label_smoothing,
                                        precision)
    t_head = time.perf_counter()

    teacher = Teacher(net, cfg.teacher, cfg.ema_decay) if cfg.enabled else None
    alpha_bar = cosine_alpha_bar(cfg.timesteps)
    opt = layer_decay_optimizer(net, lr, layer_decay, weight_decay)
    schedule = warmup_cosine(opt, steps)
    scaler = grad_scaler(dev, precision)
    # Class-balanced sampling: each class equally likely, then a shot of that class.
    by_class = [torch.nonzero(y == k).view(-1) for k in range(K)]
    by_class = [ix for ix in by_class if ix.numel() > 0]
    refresh = set(int(steps * (i + 1) / (pseudo_rounds + 1)) for i in range(pseudo_rounds)) \
        if use_pseudo else set()
    curve: list[float] = []
    net.train()
    bar = tqdm(range(steps), disable=not progress, desc="finetune", leave=False)
    done = 0
    for step in bar:
        if time_budget is not None and time.perf_counter() - t_start > time_budget:
            break
        if step in refresh and teacher is not None:
            emb, t_probs = _scene_outputs(teacher.model, padded, scene.valid, wl, smooth_sigma,
                                          precision)
            if sg is not None:
                sg.refresh(emb, t_probs)
                set_pseudo(sg.probs)
            else:
                set_pseudo(t_probs)
            net.train()
        cls_pick = torch.randint(0, len(by_class), (batch_size,), generator=gen)
        pick = torch.stack([by_class[k][torch.randint(0, by_class[k].numel(), (1,),
                                                      generator=gen)][0] for k in cls_pick])
        xb = augment(x_lab[pick], gen)
        yb = y[pick]
        xu = None
        if cfg.enabled and cfg.use_unlabelled and ur.size > 0 and cfg.unlabelled_batch > 0 \
                and (cfg.align_weight > 0 or cfg.agree_weight > 0):
            ui = rng.integers(0, ur.size, cfg.unlabelled_batch)
            xu = augment(gather_patches(padded, ur[ui], uc[ui], P), gen)
        xp = yp = None
        if pseudo_rc is not None and pseudo_rc[0].size > 0:
            pi = torch.randint(0, pseudo_rc[0].size, (batch_size,), generator=gen)
            rows, cols = pseudo_rc[0][pi.numpy()], pseudo_rc[1][pi.numpy()]
            xp, yp = augment(gather_patches(padded, rows, cols, P), gen), pseudo_y[pi]
        xb, yb = xb.to(dev), yb.to(dev)
        xu = xu.to(dev) if xu is not None else None
        if xp is not None:
            xp, yp = xp.to(dev), yp.to(dev)
        with autocast(dev, precision):
            loss, terms = daft_losses(net, teacher, xb, yb, xu, wl, cfg, alpha_bar, xp, yp,
                                      label_smoothing)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        scaler.step(opt)
        scaler.update()
        with warnings.catch_warnings():
            # fp16's scaler skips a step whose gradients overflow; the schedule still follows
            # the step count, and torch would warn that the first step was skipped.
            warnings.filterwarnings("ignore", r"Detected call of `lr_scheduler\.step\(\)`")
            schedule.step()
        if teacher is not None:
            teacher.update(net)
        curve.append(float(loss.detach()))
        done += 1
        if progress and step % 10 == 0:
            bar.set_postfix({k: f"{v:.3f}" for k, v in terms.items()})
    bar.close()
    net.eval()
    t_end = time.perf_counter()
    history.update(steps_done=done, loss_curve=curve, final_loss=curve[-1] if curve else None,
                   seconds={"prepare": t_prep - t_start, "adapt": t_adapt - t_prep,
                            "graph": t_graph - t_adapt, "head": t_head - t_graph,
                            "finetune": t_end - t_head, "total": t_end - t_start})
    return FineTuned(model=net, stats=stats, wavelengths=wl, class_names=names,
                     train_labels=train, scene=scene, history=history,
                     smooth_sigma=float(smooth_sigma), precision=precision,
                     refiner=sg.refiner() if sg is not None else None)


def _scene_adapt(net: torch.nn.Module, scene: Any, stats: Any, steps: int, seed: int,
                 progress: bool) -> dict[str, Any]:
    """Scene-adaptive self-supervised steps (masked reconstruction) on the unlabelled cube."""
    # `from ..pretrain import ...` names the submodule; `from .. import pretrain` could return
    # the function hsizoo.pretrain exported by the package.
    from hsizoo.pretrain import adapt_to_scene as fn

    return dict(fn(net, scene, steps=steps, seed=seed, progress=progress) or {})


class _CallableModule(types.ModuleType):
    """``hsizoo.finetune`` is both this package and its main function: whichever of the two the
    package attribute holds (it depends on import order), calling it fine-tunes."""

    def __call__(self, *args: Any, **kwargs: Any) -> FineTuned:
        return finetune(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
