"""The fitted object: :class:`FineTuned` (predict, evaluate, save) and :func:`load_finetuned`."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch.nn as nn

from hsizoo.spectral.grid import BandStats, resolve_wavelengths
from hsizoo.finetune.inputs import as_scene, check_coverage

__all__ = ["FineTuned", "load_finetuned"]


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
            (:func:`hsizoo.predict.engine.smooth_probabilities`); 0 = per-pixel predictions only.
        refiner: The graph refinement of the training scene (transductive DAFT,
            :class:`~hsizoo.method.transduction.GraphRefiner`), applied to the network's
            probabilities when that scene is predicted; None = none.
        precision: Autocast of prediction by default (``"fp32"``, ``"bf16"``, ``"fp16"``): the
            precision it was fine-tuned with.
    """

    model: nn.Module
    stats: BandStats
    wavelengths: np.ndarray
    class_names: list[str]
    train_labels: np.ndarray | None = None
    scene: Any = None
    history: dict[str, Any] = field(default_factory=dict)
    smooth_sigma: float = 0.0
    precision: str = "fp32"
    refiner: Any = field(default=None, repr=False)
    _last: Any = field(default=None, repr=False)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def summary(self) -> str:
        """One line on what was fitted: model, weights, shots, steps, time, device."""
        h = self.history
        secs = h.get("seconds", {}).get("total")
        took = f" in {secs:.1f} s" if secs is not None else ""
        return (f"fine-tuned {h.get('model')} from {h.get('weights')}: {h.get('num_train')} "
                f"labelled pixels, {h.get('steps_done')} steps{took} on {h.get('device')} "
                f"({h.get('precision')})")

    def predict(self, scene: Any = None, *, out_path: str | Path | None = None,
                confidence_path: str | Path | None = None, overwrite: bool = False,
                window_size: int = 256, batch_size: int = 1024, progress: bool = True,
                wavelengths: Sequence[float] | None = None, sensor: str | None = None,
                device: Any = None, precision: str | None = None) -> Any:
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
            device: Move the model there first (``"cuda"``, ``"cpu"``); None keeps it where it
                is (where it was trained, or the CPU after :func:`load_finetuned`).
            precision: Autocast of the forward passes (``"fp32"``, ``"bf16"``, ``"fp16"`` on a
                GPU); None = the precision it was fine-tuned with.

        Returns:
            A :class:`~hsizoo.predict.engine.ClassMap` (``.class_map``, ``.probabilities``,
            ``.save(path)``, ``.save_quicklook(path)``, ``.evaluate(labels)``).
        """
        from hsizoo.predict.engine import predict_scene
        from hsizoo.finetune.training import resolve_device

        if device is not None:
            self.model.to(resolve_device(device))
        precision = self.precision if precision is None else precision
        if scene is None:
            if self.scene is None:
                raise ValueError("No scene to predict: pass one (this model was loaded from a "
                                 "folder, so it keeps no training scene).")
            scene = self.scene
        elif isinstance(scene, (str, Path)) and out_path is not None:
            from hsizoo.io import read_scene_info

            # The file's own wavelengths win over ``sensor`` (used only for a file without
            # them), as when the scene is read whole; ``wavelengths`` override both.
            info = read_scene_info(scene, wavelengths=wavelengths, sensor=sensor)
            wl = None
            if wavelengths is not None:
                wl = resolve_wavelengths(wavelengths, None, num_bands=info.num_bands)
            elif getattr(info, "wavelengths", None) is not None:
                wl = np.asarray(info.wavelengths, float)
            if wl is not None:
                _compare_wavelengths(np.asarray(wl, float), self.wavelengths)
            return predict_scene(self.model, scene, self.stats, wl, self.class_names,
                                 window_size=window_size, batch_size=batch_size,
                                 out_path=out_path, confidence_path=confidence_path,
                                 overwrite=overwrite, smooth_sigma=self.smooth_sigma,
                                 progress=progress, precision=precision)
        else:
            scene = as_scene(scene, wavelengths, sensor)
        check_coverage(self.model, np.asarray(scene.wavelengths))
        if scene is not self.scene:
            _compare_wavelengths(np.asarray(scene.wavelengths, float), self.wavelengths)
        # The training scene's graph refinement may bring its own spatial filter.
        spatial = getattr(self.refiner, "spatial", "gaussian") if scene is self.scene else None
        sigma = self.smooth_sigma if spatial in (None, "gaussian") else 0.0
        result = predict_scene(self.model, scene, self.stats, None, self.class_names,
                               window_size=window_size, batch_size=batch_size, out_path=out_path,
                               confidence_path=confidence_path, overwrite=overwrite,
                               smooth_sigma=sigma, progress=progress, precision=precision)
        if scene is self.scene:
            if self.refiner is not None and result.probabilities is not None:
                result = _refined(result, self.refiner, scene.valid)
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
            A :class:`~hsizoo.data.metrics.ClassificationReport`.
        """
        from hsizoo.data.metrics import evaluate

        if self.scene is None:
            raise ValueError("evaluate() needs the training scene; use "
                             "predict(scene).evaluate(labels) for a model loaded from a folder.")
        if labels is None:
            ref = self.scene.labels
        elif isinstance(labels, (str, Path)):
            from hsizoo.io import read_labels

            ref = read_labels(labels)
        else:
            ref = np.asarray(labels)
        if ref is None:
            raise ValueError("No reference labels: pass labels= an (H, W) label map or a file "
                             "holding one.")
        if ref.shape != self.scene.cube.shape[:2]:
            raise ValueError(f"Reference labels {ref.shape} differ from the scene's grid "
                             f"{self.scene.cube.shape[:2]}.")
        if exclude_train and self.train_labels is not None:
            ref = np.where(self.train_labels > 0, 0, ref)
        # Labelled nodata pixels are not classified (training ignored them too): not errors.
        ref = np.where(self.scene.valid, ref, 0)
        if self._last is None:
            self.predict(progress=progress)
        return evaluate(ref, self._last.class_map, num_classes=self.num_classes,
                        class_names=self.class_names)

    def save_pretrained(self, folder: str | Path, *, overwrite: bool = False) -> Path:
        """Save as a Hub-style folder (model.safetensors, config.json, README.md).

        The config records the classes, the band wavelengths and the standardisation, so that
        :func:`load_finetuned` (CLI: ``hsizoo predict FOLDER SCENE``) maps new scenes the same way.
        """
        from hsizoo.hub.save import save_pretrained

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


def _compare_wavelengths(scene_wl: np.ndarray, train_wl: np.ndarray) -> None:
    """Refuse a scene with no spectral overlap with the training scene; say so when they differ.

    A different band count is refused (the standardisation statistics are per band). The same
    count at other wavelengths is allowed and said: the model resamples by wavelength.
    """
    import warnings

    lo, hi = max(scene_wl.min(), train_wl.min()), min(scene_wl.max(), train_wl.max())
    if hi <= lo:
        raise ValueError(
            f"The scene's bands ({scene_wl.min():.0f}-{scene_wl.max():.0f} nm) do not overlap "
            f"those this model was fine-tuned on ({train_wl.min():.0f}-{train_wl.max():.0f} "
            "nm): its classes cannot be recognised there. Check the scene's wavelengths (unit, "
            "metadata) or fine-tune on this sensor.")
    if scene_wl.size != train_wl.size:
        # The per-band standardisation belongs to the training bands: refuse before any warning
        # that would suggest resampling makes it work.
        raise ValueError(
            f"The scene has {scene_wl.size} bands but this model was fine-tuned on "
            f"{train_wl.size}: its per-band standardisation belongs to those bands. Predict "
            "scenes of the same sensor (same bands), or fine-tune on this sensor.")
    if np.allclose(scene_wl, train_wl, atol=1.0):
        return
    overlap = (hi - lo) / (train_wl.max() - train_wl.min())
    warnings.warn(
        f"The scene's {scene_wl.size} bands ({scene_wl.min():.0f}-{scene_wl.max():.0f} nm) differ "
        f"from the {train_wl.size} bands the model was fine-tuned on ({train_wl.min():.0f}-"
        f"{train_wl.max():.0f} nm; {100 * overlap:.0f} % of that range overlaps); the model "
        "resamples them by wavelength. If they should be the same sensor, check the scene's "
        "wavelengths.", UserWarning, stacklevel=3)


def _refined(result: Any, refiner: Any, valid: np.ndarray) -> Any:
    """The class map after the graph refinement of the network's probabilities."""
    from dataclasses import replace

    probs = refiner.refine_map(result.probabilities, valid)
    class_map = np.where(valid, probs.argmax(-1) + 1, 0).astype(result.class_map.dtype)
    confidence = np.where(valid, probs.max(-1), np.nan).astype(np.float32)
    meta = dict(result.meta, graph_refinement_alpha=refiner.alpha,
                spatial_filter=getattr(refiner, "spatial", "gaussian"))
    return replace(result, class_map=class_map, probabilities=probs, confidence=confidence,
                   meta=meta)


def load_finetuned(folder: str | Path) -> FineTuned:
    """Load a :meth:`FineTuned.save_pretrained` folder.

    Args:
        folder: The folder.

    Returns:
        A :class:`FineTuned` without a training scene.
    """
    import json

    from hsizoo.models._factory import create_model

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
