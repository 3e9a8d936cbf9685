"""Few-shot fine-tuning: ``hsizoo.finetune(scene, labels, shots=10)`` to a georeferenced class map.

The recipe, tuned for a CPU and a handful of labels per class (every step is measured in
``benchmarks/fewshot_indian_pines.py``):

1. The scene is standardised per band with its own statistics (:func:`hsizoo.spectral.band_stats`);
   labelled patches are gathered once with the one patch extractor (:mod:`hsizoo.patches`).
2. Optional scene-adaptive self-supervised steps on the user's unlabelled cube
   (``adapt_steps``; masked reconstruction from :mod:`hsizoo.pretrain`).
3. Head warm-up: the backbone is frozen, its pooled features of the 8 flips/rotations of every
   shot are computed once, and the classifier is fitted on them (cheap, and it gives the DAFT
   teacher a meaningful head).
4. Full fine-tuning with layer-wise learning-rate decay, class-balanced batches of augmented
   shots, and DAFT (:mod:`hsizoo.daft`): a teacher (frozen initial model or EMA of the student),
   noised inputs along a diffusion schedule, feature alignment and prediction agreement on the
   scene's unlabelled pixels, and class-balanced confident pseudo-labels refreshed a few times.
   ``daft=False`` is plain fine-tuning. No test label is ever used: the only labels are the shots.

The result, :class:`FineTuned`, predicts whole scenes with shared per-pixel computation
(:mod:`hsizoo.inference`), evaluates against labels (:mod:`hsizoo.metrics`) and saves itself as a
Hub-style folder that ``hsizoo predict`` and :func:`load_finetuned` read back.
"""
from __future__ import annotations

import argparse
import math
import sys
import types
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn

from .daft import DaftConfig, Teacher, cosine_alpha_bar, daft_losses
from .patches import gather_patches, prepare_cube
from .spectral import BandStats, band_stats, canonical_resampler, resolve_wavelengths

__all__ = ["FineTuned", "finetune", "load_finetuned", "prepare_labels", "register_cli"]


# ----------------------------------------------------------------------------------------------
# Inputs


def _as_scene(scene_or_cube: Any, wavelengths: Sequence[float] | None, sensor: str | None) -> Any:
    """A Scene from a Scene, a raster / .mat path, or an (H, W, B) array with its wavelengths."""
    from .io import Scene, read_scene

    if isinstance(scene_or_cube, Scene):
        if wavelengths is not None:
            scene_or_cube = replace(scene_or_cube, wavelengths=np.asarray(wavelengths, float))
        return scene_or_cube
    if isinstance(scene_or_cube, (str, Path)):
        return read_scene(scene_or_cube, wavelengths=wavelengths, sensor=sensor)
    cube = np.asarray(scene_or_cube)
    if cube.ndim != 3:
        raise ValueError(f"Expected a Scene, a file path or an (H, W, bands) cube; got an array of "
                         f"shape {cube.shape}.")
    wl = resolve_wavelengths(wavelengths, sensor, num_bands=cube.shape[2])
    return Scene(cube=cube.astype(np.float32, copy=False), wavelengths=wl, sensor=sensor)


def prepare_labels(labels: Any, scene: Any, shots: int | None, seed: int,
                   class_names: Sequence[str] | None = None) -> tuple[np.ndarray, int, list[str]]:
    """Check a label map against the scene and pick the training shots.

    A *full* label map gives ``shots`` pixels per class drawn with ``seed``
    (:func:`hsizoo.splits.few_shot_split`); ``shots=None`` treats the map as *sparse*: exactly the
    labelled pixels are the training set. A map whose classes all have at most ``shots`` pixels is
    therefore used whole either way.

    Args:
        labels: (H, W) integer map (0 = unlabelled), a file holding one, or None for
            ``scene.labels``.
        scene: The scene.
        shots: Pixels per class, or None for all labelled pixels.
        seed: Seed of the draw.
        class_names: Names of classes 1..K.

    Returns:
        (training label map, K, class names).

    Raises:
        ValueError: labels missing, of another shape than the scene, not integers, on invalid
            pixels only, or more class ids than class names.
    """
    from .io import read_labels
    from .splits import few_shot_split

    if labels is None:
        labels = scene.labels
        if labels is None:
            raise ValueError("No labels: pass labels= an (H, W) label map (0 = unlabelled, 1..K) "
                             "or a scene that carries .labels.")
    lab = read_labels(labels) if isinstance(labels, (str, Path)) else np.asarray(labels)
    if lab.shape != scene.cube.shape[:2]:
        raise ValueError(f"The label map has shape {lab.shape} but the scene is "
                         f"{scene.cube.shape[:2]} pixels: labels must cover exactly the scene's "
                         "grid (labels outside the scene cannot be used). Crop or rasterise them "
                         "onto the scene first.")
    if lab.dtype == bool or not (np.issubdtype(lab.dtype, np.integer)
                                 or (np.issubdtype(lab.dtype, np.floating)
                                     and np.all(lab == np.round(lab)))):
        raise ValueError(f"Labels must be integer class ids (0 = unlabelled, 1..K); got {lab.dtype}.")
    lab = lab.astype(np.int64)
    if lab.min(initial=0) < 0:
        raise ValueError(f"Labels must be >= 0 (0 = unlabelled); found {lab.min()}.")
    on_invalid = (lab > 0) & ~scene.valid
    if on_invalid.any():
        warnings.warn(f"{int(on_invalid.sum())} labelled pixel(s) lie on invalid (nodata) pixels "
                      "of the scene and are ignored.", UserWarning, stacklevel=3)
        lab = np.where(scene.valid, lab, 0)
    if not (lab > 0).any():
        raise ValueError("The label map holds no labelled pixel on a valid pixel of the scene.")
    names = list(class_names) if class_names is not None else list(scene.class_names or [])
    K = max(int(lab.max()), len(names))
    if names and int(lab.max()) > len(names):
        raise ValueError(f"Labels go up to class {int(lab.max())} but {len(names)} class names "
                         "were given; give one name per class 1..K.")
    names = names or [f"class {i + 1}" for i in range(K)]
    counts = np.bincount(lab.reshape(-1), minlength=K + 1)[1:]
    empty = [i + 1 for i in range(K) if counts[i] == 0]
    if empty:
        warnings.warn(
            f"Class(es) {', '.join(f'{c} ({names[c - 1]})' for c in empty)} have no labelled "
            "pixel: the model cannot learn them and will almost never predict them. Label a few "
            "pixels of each class, or renumber the classes.", UserWarning, stacklevel=3)
    if shots is None:
        return lab, K, names
    if not isinstance(shots, (int, np.integer)) or isinstance(shots, bool) or shots < 1:
        raise ValueError(f"shots must be a positive integer (or None for all labelled pixels); "
                         f"got {shots!r}.")
    present = counts[counts > 0]
    if shots >= present.max():
        warnings.warn(
            f"shots={shots} is at least the number of labelled pixels of every class (the largest "
            f"has {int(present.max())}): all labelled pixels are used for training, as with "
            "shots=None (a sparse label map).", UserWarning, stacklevel=3)
        return lab, K, names
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        split = few_shot_split(lab, int(shots), seed, min_test=0)
    short = {c: n for c, n in split.short_classes.items()}
    if short:
        listing = ", ".join(f"class {c} ({names[c - 1]}: {n} pixels)" for c, n in sorted(short.items()))
        warnings.warn(f"shots={shots} exceeds the labelled pixels of {listing}; those classes use "
                      "all their pixels.", UserWarning, stacklevel=3)
    del caught
    return split.train, K, names


def _check_coverage(model: nn.Module, wavelengths: np.ndarray) -> dict[str, float]:
    """Refuse sensors the model cannot use; warn when the checkpoint saw little of this range."""
    res = canonical_resampler(wavelengths, model.grid)  # raises when no grid point is covered
    info = {"coverage": res.coverage}
    ref = getattr(model, "default_wavelengths", None)
    pcfg = getattr(model, "pretrained_cfg", None) or {}
    if ref is None and pcfg.get("sensor"):
        try:
            ref = resolve_wavelengths(None, pcfg["sensor"])
        except (ValueError, KeyError):
            ref = None
    if ref is not None:
        seen = canonical_resampler(ref, model.grid).present
        overlap = float((seen & res.present).sum() / max(res.present.sum(), 1))
        info["checkpoint_overlap"] = overlap
        if overlap == 0.0:
            raise ValueError(
                f"The scene's bands ({wavelengths.min():.0f}-{wavelengths.max():.0f} nm) do not "
                "overlap the spectral range the checkpoint was trained on "
                f"({ref.min():.0f}-{ref.max():.0f} nm); this checkpoint cannot cover this sensor. "
                "Use a checkpoint pretrained on a covering sensor, or pretrained=False.")
        if overlap < 0.5:
            warnings.warn(
                f"Only {100 * overlap:.0f} % of the scene's canonical spectrum lies in the range the "
                f"checkpoint was trained on ({ref.min():.0f}-{ref.max():.0f} nm); its features may "
                "transfer poorly.", UserWarning, stacklevel=3)
    return info


def _build_model(name: str, pretrained: bool | None, checkpoint_path: str | None,
                 num_classes: int, **model_kwargs: Any) -> tuple[nn.Module, str]:
    """Create the backbone; returns (model, description of the weights used)."""
    from .models._factory import create_model, list_pretrained

    if checkpoint_path is not None:
        m = create_model(name, checkpoint_path=checkpoint_path, **model_kwargs)
        m.reset_classifier(num_classes)
        return m, f"checkpoint {checkpoint_path}"
    if pretrained is False:
        return create_model(name, num_classes=num_classes, **model_kwargs), "random init"
    arch = name.split(".")[0]
    tags = [name] if "." in name else list_pretrained(arch + ".*")
    if not tags:
        msg = (f"{arch} has no pretrained weights yet (registered: "
               f"{', '.join(list_pretrained()) or 'none'}).")
        if pretrained is True:
            raise ValueError(msg + " Pass pretrained=False (CLI: --no-pretrained) to fine-tune "
                             "from a random initialisation, or checkpoint_path= your own weights.")
        warnings.warn(msg + " Fine-tuning from a random initialisation; accuracy will be lower. "
                      "Pass pretrained=False to silence this.", UserWarning, stacklevel=3)
        return create_model(arch, num_classes=num_classes, **model_kwargs), "random init"
    tag = tags[0]
    if "." not in name:
        # The architecture's default weights, as timm.create_model(arch, pretrained=True) picks.
        from timm.models import get_pretrained_cfg

        default = get_pretrained_cfg(arch)
        if default is not None and f"{arch}.{default.tag}" in tags:
            tag = f"{arch}.{default.tag}"
    m = create_model(tag, pretrained=True, num_classes=num_classes, **model_kwargs)
    return m, tag


# ----------------------------------------------------------------------------------------------
# Training helpers


def _dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """One of the 8 flips/rotations of (B, C, P, P) patches; a patch's class does not change."""
    x = torch.rot90(x, k % 4, dims=(2, 3))
    return x.flip(3) if k >= 4 else x


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random flip/rotation per sample, plus a small random brightness scale per sample."""
    ks = torch.randint(0, 8, (x.shape[0],), generator=gen)
    out = torch.empty_like(x)
    for k in range(8):
        sel = ks == k
        if sel.any():
            out[sel] = _dihedral(x[sel], k)
    return out


def _param_groups(model: nn.Module, lr: float, layer_decay: float, weight_decay: float
                  ) -> list[dict[str, Any]]:
    """Layer-wise learning-rate decay (MAE / BEiT): later blocks and the head learn fastest."""
    depth = len(model.blocks)
    no_wd = model.no_weight_decay() if hasattr(model, "no_weight_decay") else set()
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name.startswith("blocks."):
            layer = int(name.split(".")[1]) + 1
        elif name.startswith(("head", "norm_sp", "norm_se")):
            layer = depth + 1
        else:
            layer = 0
        decay = not (p.ndim == 1 or name in no_wd or name.endswith(".bias"))
        g = groups.setdefault((layer, decay), {
            "params": [], "lr": lr * layer_decay ** (depth + 1 - layer),
            "weight_decay": weight_decay if decay else 0.0})
        g["params"].append(p)
    for g in groups.values():
        g["base_lr"] = g["lr"]
    return list(groups.values())


@torch.no_grad()
def _fit_head(model: nn.Module, x: torch.Tensor, y: torch.Tensor, wavelengths: np.ndarray,
              steps: int, lr: float, label_smoothing: float) -> float:
    """Head warm-up on frozen features of the 8 dihedral views of every shot."""
    model.eval()
    feats = torch.cat([model.forward_head(model.forward_features(_dihedral(x, k), wavelengths),
                                          pre_logits=True) for k in range(8)])
    ys = y.repeat(8)
    head = model.head
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-4)
    loss = torch.zeros(())
    with torch.enable_grad():
        for _ in range(steps):
            loss = nn.functional.cross_entropy(head(feats), ys, label_smoothing=label_smoothing)
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.train()
    return float(loss)


def _pseudo_labels(teacher_model: nn.Module, padded: torch.Tensor, valid: np.ndarray,
                   candidates: np.ndarray, wavelengths: np.ndarray, per_class: int,
                   threshold: float, K: int, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Class-balanced confident teacher predictions among candidate pixels.

    The teacher classifies every valid pixel of the scene once (shared computation), its
    probabilities are spatially regularised like the final map (``sigma``), and the most
    confident candidates of each class are kept.

    Args:
        teacher_model: The teacher's network.
        padded: The standardised, padded scene.
        valid: (H, W) valid pixels.
        candidates: (H, W) bool, pixels that may receive a pseudo-label (unlabelled, valid).
        wavelengths: Band centres (nm).
        per_class: Pixels kept per class.
        threshold: Minimum (smoothed) teacher confidence.
        K: Number of classes.
        sigma: Spatial regularisation (0 = none).

    Returns:
        (rows, cols, class index 0..K-1) of the chosen pixels.
    """
    from .inference import SharedPredictor, smooth_probabilities

    vr, vc = np.nonzero(valid)
    logits = SharedPredictor(teacher_model, wavelengths, 1024).predict_padded(padded, vr, vc)
    grid = np.zeros(valid.shape + (K,), dtype=np.float32)
    grid[vr, vc] = logits.softmax(1).numpy()
    grid = smooth_probabilities(grid, valid, sigma)
    cr, cc = np.nonzero(candidates)
    prob = grid[cr, cc]
    conf, cls = prob.max(1), prob.argmax(1)
    keep_idx, keep_cls = [], []
    for k in range(K):
        cand = np.flatnonzero((cls == k) & (conf >= threshold))
        if cand.size == 0:
            continue
        top = cand[np.argsort(-conf[cand], kind="stable")[:per_class]]
        keep_idx.append(top)
        keep_cls.append(np.full(top.size, k))
    if not keep_idx:
        z = np.zeros(0, dtype=np.int64)
        return z, z, z
    idx = np.concatenate(keep_idx)
    return cr[idx], cc[idx], np.concatenate(keep_cls)


# ----------------------------------------------------------------------------------------------
# Result


@dataclass
class FineTuned:
    """A fine-tuned model ready to map scenes.

    Attributes:
        model: The fine-tuned S2Former (eval mode).
        stats: Band statistics used to standardise input scenes.
        wavelengths: Band centres (nm) of the training scene.
        class_names: Names of classes 1..K.
        train_labels: (H, W) map of the training shots (0 elsewhere), or None after loading.
        scene: The training scene (kept for ``predict()`` without arguments), or None.
        history: Training log (per-phase times, losses, settings).
        smooth_sigma: Spatial regularisation of predicted probabilities in pixels
            (:func:`hsizoo.inference.smooth_probabilities`); 0 = per-pixel predictions only.
    """

    model: nn.Module
    stats: BandStats
    wavelengths: np.ndarray
    class_names: list[str]
    train_labels: np.ndarray | None = None
    scene: Any = None
    history: dict[str, Any] = field(default_factory=dict)
    smooth_sigma: float = 0.0
    _last: Any = field(default=None, repr=False)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def predict(self, scene: Any = None, *, out_path: str | Path | None = None,
                confidence_path: str | Path | None = None, overwrite: bool = False,
                window_size: int = 256, batch_size: int = 1024, progress: bool = True,
                wavelengths: Sequence[float] | None = None, sensor: str | None = None) -> Any:
        """Classify a whole scene (the training scene by default).

        Args:
            scene: A :class:`~hsizoo.io.Scene`, an (H, W, B) array, or a raster path; a path is
                streamed window by window (bounded memory) when ``out_path`` is given.
            out_path: Also write the class map GeoTIFF here (window by window).
            confidence_path: Also write the confidence map here.
            overwrite: Replace existing outputs.
            window_size: Window side for windowed processing.
            batch_size: Patches per forward pass.
            progress: Show a progress bar.
            wavelengths: Band centres for an array or a file without them.
            sensor: Sensor preset for an array or a file without wavelengths.

        Returns:
            A :class:`~hsizoo.inference.ClassMap` (``.class_map``, ``.probabilities``,
            ``.save(path)``, ``.save_quicklook(path)``, ``.evaluate(labels)``).
        """
        from .inference import predict_scene

        if scene is None:
            if self.scene is None:
                raise ValueError("No scene to predict: pass one (this model was loaded from a "
                                 "folder, so it keeps no training scene).")
            scene = self.scene
        elif isinstance(scene, (str, Path)) and out_path is not None:
            wl = None
            if wavelengths is not None or sensor is not None:
                from .io import read_scene_info

                wl = resolve_wavelengths(wavelengths, sensor,
                                         num_bands=read_scene_info(scene,
                                                                   wavelengths=wavelengths,
                                                                   sensor=sensor).num_bands)
            return predict_scene(self.model, scene, self.stats, wl, self.class_names,
                                 window_size=window_size, batch_size=batch_size,
                                 out_path=out_path, confidence_path=confidence_path,
                                 overwrite=overwrite, smooth_sigma=self.smooth_sigma,
                                 progress=progress)
        else:
            scene = _as_scene(scene, wavelengths, sensor)
        _check_coverage(self.model, np.asarray(scene.wavelengths))
        result = predict_scene(self.model, scene, self.stats, None, self.class_names,
                               window_size=window_size, batch_size=batch_size, out_path=out_path,
                               confidence_path=confidence_path, overwrite=overwrite,
                               smooth_sigma=self.smooth_sigma, progress=progress)
        if scene is self.scene:
            self._last = result
        return result

    def evaluate(self, labels: Any = None, *, exclude_train: bool = True,
                 progress: bool = False) -> Any:
        """OA, AA, kappa, per-class accuracy and confusion matrix on the training scene.

        Args:
            labels: Reference (H, W) label map of the training scene; default its own labels.
            exclude_train: Leave the training shots out of the evaluation (they were seen).
            progress: Progress bar when the scene still has to be predicted.

        Returns:
            A :class:`~hsizoo.metrics.ClassificationReport`.
        """
        from .metrics import evaluate

        if self.scene is None:
            raise ValueError("evaluate() needs the training scene; use "
                             "predict(scene).evaluate(labels) for a model loaded from a folder.")
        ref = self.scene.labels if labels is None else np.asarray(labels)
        if ref is None:
            raise ValueError("No reference labels: pass labels=.")
        if ref.shape != self.scene.cube.shape[:2]:
            raise ValueError(f"Reference labels {ref.shape} differ from the scene's grid "
                             f"{self.scene.cube.shape[:2]}.")
        if exclude_train and self.train_labels is not None:
            ref = np.where(self.train_labels > 0, 0, ref)
        if self._last is None:
            self.predict(progress=progress)
        return evaluate(ref, self._last.class_map, num_classes=self.num_classes,
                        class_names=self.class_names)

    def save_pretrained(self, folder: str | Path, *, overwrite: bool = False) -> Path:
        """Save as a Hub-style folder (model.safetensors, config.json, README.md).

        The config records the classes, the band wavelengths and the standardisation, so that
        :func:`load_finetuned` (CLI: ``hsizoo predict FOLDER SCENE``) maps new scenes the same way.
        """
        from .models._hub import save_pretrained

        hist = {k: v for k, v in self.history.items() if k != "loss_curve"}
        config = {
            "tag": "finetuned",
            "task": "hsizoo.finetune",
            "class_names": list(self.class_names),
            "wavelengths": [float(v) for v in self.wavelengths],
            "normalisation": {"mean": self.stats.mean.tolist(), "std": self.stats.std.tolist()},
            "smooth_sigma": float(self.smooth_sigma),
            "training": hist,
        }
        return save_pretrained(self.model, folder, config=config, overwrite=overwrite)


def load_finetuned(folder: str | Path) -> FineTuned:
    """Load a :meth:`FineTuned.save_pretrained` folder.

    Args:
        folder: The folder.

    Returns:
        A :class:`FineTuned` without a training scene.
    """
    import json

    from .models._factory import create_model

    folder = Path(folder)
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{folder} holds no config.json: pass a folder written by "
                                "FineTuned.save_pretrained (CLI: hsizoo finetune --save-model).")
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    if "normalisation" not in cfg or "class_names" not in cfg:
        raise ValueError(f"{folder} is a backbone checkpoint, not a fine-tuned classifier (no "
                         "class names / normalisation in config.json); fine-tune it first.")
    model = create_model(folder).eval()
    stats = BandStats(mean=np.asarray(cfg["normalisation"]["mean"], np.float32),
                      std=np.asarray(cfg["normalisation"]["std"], np.float32))
    return FineTuned(model=model, stats=stats, wavelengths=np.asarray(cfg["wavelengths"], float),
                     class_names=list(cfg["class_names"]), history=dict(cfg.get("training", {})),
                     smooth_sigma=float(cfg.get("smooth_sigma", 0.0)))


# ----------------------------------------------------------------------------------------------
# The API


def finetune(scene_or_cube: Any, labels: Any = None, shots: int | None = 10,
             model: str = "s2former_tiny", pretrained: bool | None = None, seed: int = 0,
             wavelengths: Sequence[float] | None = None, *, sensor: str | None = None,
             class_names: Sequence[str] | None = None, daft: bool | DaftConfig = True,
             steps: int = 200, batch_size: int = 64, lr: float = 1e-3, layer_decay: float = 0.75,
             weight_decay: float = 0.05, head_steps: int = 200, label_smoothing: float = 0.1,
             pseudo_rounds: int = 3, adapt_steps: int = 0, smooth_sigma: float = 3.0,
             time_budget: float | None = None,
             checkpoint_path: str | None = None, progress: bool = True,
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
        daft: True for DAFT with default settings, a :class:`~hsizoo.daft.DaftConfig`, or False
            for plain fine-tuning (cross-entropy on the shots only).
        steps: Optimiser steps of full fine-tuning.
        batch_size: Labelled patches per step (class-balanced, augmented).
        lr: Peak learning rate of the last block and the head.
        layer_decay: Learning-rate factor per block towards the input.
        weight_decay: AdamW weight decay.
        head_steps: Steps of the head warm-up on frozen features (0 skips it).
        label_smoothing: Label smoothing of the cross-entropy.
        pseudo_rounds: Pseudo-label refreshes during DAFT (when its ``pseudo_weight`` > 0).
        adapt_steps: Scene-adaptive self-supervised steps before fine-tuning (0 = none).
        smooth_sigma: Spatial regularisation (pixels) of the class probabilities, used for the
            pseudo-labels and the final map (:func:`hsizoo.inference.smooth_probabilities`);
            0 turns it off.
        time_budget: Stop full fine-tuning after this many seconds (None = run all steps).
        checkpoint_path: Backbone weights to start from (a model.safetensors or folder).
        progress: Show progress bars.
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

    scene = _as_scene(scene_or_cube, wavelengths, sensor)
    wl = np.asarray(scene.wavelengths, dtype=np.float64)
    train, K, names = prepare_labels(labels, scene, shots, seed, class_names)
    net, weights = _build_model(model, pretrained, checkpoint_path, K, **(model_kwargs or {}))
    coverage = _check_coverage(net, wl)
    P = net.patch_size

    stats = band_stats(scene.cube, scene.valid, seed=seed)
    padded = prepare_cube(stats.apply(scene.cube), scene.valid, P)
    r, c = np.nonzero(train)
    y = torch.as_tensor(train[r, c] - 1, dtype=torch.long)
    x_lab = gather_patches(padded, r, c, P)
    ur, uc = np.nonzero(scene.valid & (train == 0))
    t_prep = time.perf_counter()

    history: dict[str, Any] = dict(model=model, weights=weights, shots=shots, seed=seed,
                                   num_train=int(len(y)), num_classes=K, daft=cfg.as_dict(),
                                   steps=steps, batch_size=batch_size, lr=lr,
                                   layer_decay=layer_decay, coverage=coverage,
                                   smooth_sigma=smooth_sigma)

    if adapt_steps > 0:
        history["adapt"] = _scene_adapt(net, scene, stats, adapt_steps, seed, progress)
    t_adapt = time.perf_counter()

    if head_steps > 0:
        history["head_loss"] = _fit_head(net, x_lab, y, wl, head_steps, 1e-2, label_smoothing)
    t_head = time.perf_counter()

    teacher = Teacher(net, cfg.teacher, cfg.ema_decay) if cfg.enabled else None
    alpha_bar = cosine_alpha_bar(cfg.timesteps)
    opt = torch.optim.AdamW(_param_groups(net, lr, layer_decay, weight_decay), lr=lr)
    warm = max(1, steps // 10)
    # Class-balanced sampling: each class equally likely, then a shot of that class.
    by_class = [torch.nonzero(y == k).view(-1) for k in range(K)]
    by_class = [ix for ix in by_class if ix.numel() > 0]
    use_pseudo = cfg.enabled and cfg.pseudo_weight > 0 and pseudo_rounds > 0 and ur.size > 0
    refresh = set(int(steps * (i + 1) / (pseudo_rounds + 1)) for i in range(pseudo_rounds)) \
        if use_pseudo else set()
    pseudo_x: torch.Tensor | None = None
    pseudo_y: torch.Tensor | None = None
    curve: list[float] = []
    net.train()
    bar = tqdm(range(steps), disable=not progress, desc="finetune", leave=False)
    done = 0
    for step in bar:
        if time_budget is not None and time.perf_counter() - t_start > time_budget:
            break
        if step in refresh and teacher is not None:
            pr, pc, cls = _pseudo_labels(teacher.model, padded, scene.valid,
                                         scene.valid & (train == 0), wl, cfg.pseudo_per_class,
                                         cfg.pseudo_threshold, K, smooth_sigma)
            pseudo_x = gather_patches(padded, pr, pc, P)
            pseudo_y = torch.as_tensor(cls, dtype=torch.long)
            history.setdefault("pseudo_counts", []).append(int(cls.size))
            net.train()
        # Learning rate: linear warm-up, cosine decay.
        f = (step + 1) / warm if step < warm else 0.5 * (1 + math.cos(
            math.pi * (step - warm) / max(1, steps - warm)))
        for g in opt.param_groups:
            g["lr"] = g["base_lr"] * f
        cls_pick = torch.randint(0, len(by_class), (batch_size,), generator=gen)
        pick = torch.stack([by_class[k][torch.randint(0, by_class[k].numel(), (1,),
                                                      generator=gen)][0] for k in cls_pick])
        xb = _augment(x_lab[pick], gen)
        yb = y[pick]
        xu = None
        if cfg.enabled and cfg.use_unlabelled and ur.size > 0 and cfg.unlabelled_batch > 0:
            ui = rng.integers(0, ur.size, cfg.unlabelled_batch)
            xu = _augment(gather_patches(padded, ur[ui], uc[ui], P), gen)
        xp = yp = None
        if pseudo_x is not None and pseudo_x.shape[0] > 0:
            pi = torch.randint(0, pseudo_x.shape[0], (batch_size,), generator=gen)
            xp, yp = _augment(pseudo_x[pi], gen), pseudo_y[pi]
        loss, terms = daft_losses(net, teacher, xb, yb, xu, wl, cfg, alpha_bar, xp, yp,
                                  label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
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
                            "head": t_head - t_adapt, "finetune": t_end - t_head,
                            "total": t_end - t_start})
    return FineTuned(model=net, stats=stats, wavelengths=wl, class_names=names,
                     train_labels=train, scene=scene, history=history,
                     smooth_sigma=float(smooth_sigma))


def _scene_adapt(net: nn.Module, scene: Any, stats: BandStats, steps: int, seed: int,
                 progress: bool) -> dict[str, Any]:
    """Scene-adaptive self-supervised steps (masked reconstruction) on the unlabelled cube."""
    # `from .pretrain import ...` names the submodule; `from . import pretrain` could return the
    # function hsizoo.pretrain exported by the package.
    from .pretrain import adapt_to_scene as fn

    return dict(fn(net, scene, steps=steps, seed=seed, progress=progress) or {})


# ----------------------------------------------------------------------------------------------
# Command line


def _wavelength_arg(text: str | None) -> list[float] | None:
    if text is None:
        return None
    p = Path(text)
    raw = p.read_text() if p.is_file() else text
    return [float(v) for v in raw.replace(",", " ").split()]


def _check_outputs(paths: Sequence[str | None], overwrite: bool) -> None:
    for p in paths:
        if p is not None and Path(p).exists() and not overwrite:
            raise FileExistsError(f"{p} already exists; pass --overwrite to replace it, or "
                                  "choose another output path.")


def _cmd_finetune(args: argparse.Namespace) -> int:
    _check_outputs([args.out, args.quicklook, args.confidence], args.overwrite)
    if args.save_model and (Path(args.save_model) / "model.safetensors").exists() \
            and not args.overwrite:
        raise FileExistsError(f"{args.save_model} already holds a model; pass --overwrite.")
    shots = None if args.shots is not None and args.shots <= 0 else args.shots
    if args.all_labels:
        shots = None
    ft = finetune(args.scene, args.labels, shots=shots, model=args.model,
                  pretrained=False if args.no_pretrained else None, seed=args.seed,
                  wavelengths=_wavelength_arg(args.wavelengths), sensor=args.sensor,
                  daft=not args.no_daft, steps=args.steps, time_budget=args.time_budget,
                  progress=not args.quiet)
    result = ft.predict(progress=not args.quiet)
    result.save(args.out, overwrite=args.overwrite, confidence_path=args.confidence)
    print(f"wrote {args.out}")
    if args.quicklook:
        result.save_quicklook(args.quicklook, overwrite=args.overwrite)
        print(f"wrote {args.quicklook}")
    if args.save_model:
        ft.save_pretrained(args.save_model, overwrite=args.overwrite)
        print(f"saved the fine-tuned model to {args.save_model}")
    if args.eval_labels:
        from .io import read_labels

        print(ft.evaluate(read_labels(args.eval_labels)))
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    _check_outputs([args.out, args.quicklook, args.confidence], args.overwrite)
    ft = load_finetuned(args.model)
    wl = _wavelength_arg(args.wavelengths)
    if args.quicklook:
        res = ft.predict(_as_scene(args.scene, wl, args.sensor), progress=not args.quiet)
        res.save(args.out, overwrite=args.overwrite, confidence_path=args.confidence)
        res.save_quicklook(args.quicklook, overwrite=args.overwrite)
    else:
        # Streamed window by window: bounded memory for scenes larger than RAM.
        res = ft.predict(str(args.scene), out_path=args.out, confidence_path=args.confidence,
                         overwrite=args.overwrite, window_size=args.window,
                         progress=not args.quiet, wavelengths=wl, sensor=args.sensor)
    print(f"wrote {args.out} in {res.seconds:.1f} s")
    return 0


FINETUNE_HELP = "few-shot DAFT fine-tuning on a scene, writing its class map"
PREDICT_HELP = "classify a scene with a fine-tuned model folder"


def _add_finetune_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("scene", help="scene file (GeoTIFF, ENVI, .mat)")
    p.add_argument("labels", help="label map file (GeoTIFF, .mat, .npy, .npz), 0 = unlabelled")
    p.add_argument("--shots", type=int, default=10,
                   help="labelled pixels per class drawn from LABELS (default 10)")
    p.add_argument("--all-labels", action="store_true",
                   help="LABELS is sparse: use every labelled pixel")
    p.add_argument("--out", required=True, help="output class map GeoTIFF")
    p.add_argument("--confidence", help="also write the confidence map GeoTIFF here")
    p.add_argument("--quicklook", help="also write a quicklook PNG here")
    p.add_argument("--save-model", help="save the fine-tuned model to this folder")
    p.add_argument("--eval-labels", help="reference labels to print OA, AA and kappa against")
    p.add_argument("--model", default="s2former_tiny", help="model name or folder")
    p.add_argument("--no-pretrained", action="store_true", help="random initialisation")
    p.add_argument("--no-daft", action="store_true", help="plain fine-tuning (ablation)")
    p.add_argument("--steps", type=int, default=200, help="fine-tuning steps")
    p.add_argument("--time-budget", type=float, default=None, help="stop after this many s")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sensor", help="sensor preset when the file has no wavelengths")
    p.add_argument("--wavelengths", help="band centres in nm: a file or a comma list")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_predict_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="folder written by --save-model / FineTuned.save_pretrained")
    p.add_argument("scene", help="scene file (GeoTIFF, ENVI, .mat)")
    p.add_argument("--out", required=True, help="output class map GeoTIFF")
    p.add_argument("--confidence", help="also write the confidence map GeoTIFF here")
    p.add_argument("--quicklook", help="also write a quicklook PNG (reads the scene into memory)")
    p.add_argument("--window", type=int, default=256, help="window side in pixels")
    p.add_argument("--sensor", help="sensor preset when the file has no wavelengths")
    p.add_argument("--wavelengths", help="band centres in nm: a file or a comma list")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def register_cli(subparsers: Any) -> None:
    """Add the ``finetune``, ``predict`` and ``demo`` subcommands to an argparse subparsers object.

    Each subparser's handler is ``args.func(args)`` returning an exit code. ``hsizoo`` itself
    uses :data:`FINETUNE_COMMAND` and :data:`PREDICT_COMMAND` through :mod:`hsizoo.cli`.
    """
    p = subparsers.add_parser(
        "finetune", help=FINETUNE_HELP,
        description="Fine-tune an S2Former on a few labelled pixels per class (DAFT) and write "
        "the scene's class map as a GeoTIFF on the scene's grid.")
    _add_finetune_args(p)
    p.set_defaults(func=_cmd_finetune)
    q = subparsers.add_parser(
        "predict", help=PREDICT_HELP,
        description="Classify every valid pixel of a scene with a model saved by "
        "'hsizoo finetune --save-model', window by window (bounded memory).")
    _add_predict_args(q)
    q.set_defaults(func=_cmd_predict)

    from .demo import register_demo_cli

    register_demo_cli(subparsers)


def _commands() -> tuple[Any, Any]:
    from .cli import Command

    return (Command(FINETUNE_HELP, _add_finetune_args, _cmd_finetune),
            Command(PREDICT_HELP, _add_predict_args, _cmd_predict))


FINETUNE_COMMAND, PREDICT_COMMAND = _commands()


class _CallableModule(types.ModuleType):
    """``hsizoo.finetune`` is both this module and its main function: whichever of the two the
    package attribute holds (it depends on import order), calling it fine-tunes."""

    def __call__(self, *args: Any, **kwargs: Any) -> FineTuned:
        return finetune(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
