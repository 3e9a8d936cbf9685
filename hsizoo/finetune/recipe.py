"""The recipe of a fine-tuning run: every setting of :func:`hsizoo.finetune` in one documented,
checked object.

``hsizoo.finetune(cube, labels, shots=10, steps=300)`` and
``hsizoo.finetune(cube, labels, shots=10, recipe=FinetuneRecipe(steps=300))`` are the same run.
Settings are checked when the recipe is made, before any data is read or any model built, so a bad
value fails at once with a message that says what to pass.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import torch

from hsizoo.method.daft import DaftConfig
from hsizoo.method.transduction import TransductionConfig

__all__ = ["AUTO_ADAPT_STEPS", "FinetuneRecipe"]

#: Scene-adaptation steps when ``adapt_steps`` is None and the published weights never saw the
#: scene's sensor (300 was set before any run and not tuned: issue 19's harness variant).
AUTO_ADAPT_STEPS = 300


@dataclass
class FinetuneRecipe:
    """How to fine-tune: the backbone, the method's parts and the optimisation.

    Attributes:
        model: Registered model name (``"s2former_tiny"``), ``"arch.tag"`` for given weights,
            or a folder from ``save_pretrained``.
        pretrained: True = the registered self-supervised weights (error if there are none);
            None = use them when they exist, else warn and start from a random initialisation;
            False = random initialisation.
        checkpoint_path: Backbone weights to start from (a model.safetensors or folder).
        model_kwargs: Extra model arguments (e.g. ``drop_path_rate``).
        seed: Seed of the shot draw and of training.
        daft: True for DAFT with default settings, a :class:`~hsizoo.method.daft.DaftConfig`, or
            False for plain fine-tuning (cross-entropy on the shots only, no transduction).
        transduction: True for label propagation over the scene's k-NN graph with default
            settings, a :class:`~hsizoo.method.transduction.TransductionConfig`, or False
            (pseudo-labels, if any, then come from the teacher's own predictions at each
            refresh). Used only with DAFT.
        adapt_steps: Scene-adaptive self-supervised steps before fine-tuning (0 = none;
            :mod:`hsizoo.pretrain.adapt`). None (default) = :data:`AUTO_ADAPT_STEPS` when the
            published weights were not pretrained on the scene's sensor (the sensor-agnostic
            weights finetune picks for a PRISMA, EnMAP or ROSIS scene, say), 0 when they were
            or when the weights are not published ones (random, a checkpoint file, a saved
            model). Chosen on simulated scenes (issue 19, benchmarks/results/adapt_default).
        head_steps: Steps of the head warm-up on frozen features (0 skips it).
        steps: Optimiser steps of full fine-tuning.
        batch_size: Labelled patches per step (class-balanced, augmented).
        pseudo_batch_size: Pseudo-labelled patches per step (None = ``batch_size``).
        lr: Peak learning rate of the last block and the head.
        layer_decay: Learning-rate factor per block towards the input.
        weight_decay: AdamW weight decay.
        label_smoothing: Label smoothing of the cross-entropy.
        pseudo_rounds: Refreshes of the pseudo-labels by the improved teacher during DAFT.
        smooth_sigma: Spatial regularisation (pixels) of the class probabilities, used for the
            pseudo-labels and the final map (:func:`hsizoo.method.smoothing.smooth_probabilities`);
            0 turns it off.
        time_budget: Stop full fine-tuning after this many seconds (None = run all steps).
        device: ``"cuda"``, ``"cpu"``, a torch.device, or None for the GPU when there is one,
            else the CPU. The fitted model stays there.
        precision: ``"fp32"`` (default), ``"bf16"`` (autocast; GPU or CPU) or ``"fp16"``
            (autocast with loss scaling; GPU only). Weights and outputs stay float32.
        progress: Show progress bars.
    """

    model: str = "s2former_tiny"
    pretrained: bool | None = None
    checkpoint_path: str | None = None
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    daft: bool | DaftConfig = True
    transduction: bool | TransductionConfig = True
    adapt_steps: int | None = None
    head_steps: int = 200
    steps: int = 200
    batch_size: int = 64
    pseudo_batch_size: int | None = None
    lr: float = 1e-3
    layer_decay: float = 0.75
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    pseudo_rounds: int = 1
    smooth_sigma: float = 3.0
    time_budget: float | None = None
    device: str | torch.device | None = None
    precision: str = "fp32"
    progress: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.daft, DaftConfig):
            self.daft = DaftConfig(enabled=bool(self.daft))
        if not isinstance(self.transduction, TransductionConfig):
            self.transduction = TransductionConfig(enabled=bool(self.transduction))
        self.model_kwargs = dict(self.model_kwargs or {})
        self._check()

    @classmethod
    def resolve(cls, recipe: FinetuneRecipe | None = None, **settings: Any) -> FinetuneRecipe:
        """A recipe from an optional base recipe and keyword settings (None = keep the base's).

        Raises:
            TypeError: a setting that is not a field of the recipe.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(settings) - names)
        if unknown:
            raise TypeError(f"finetune() got unknown setting(s) {', '.join(unknown)}; the settings "
                            f"are: {', '.join(sorted(names))} (see hsizoo.finetune.FinetuneRecipe).")
        given = {k: v for k, v in settings.items() if v is not None}
        base = recipe if recipe is not None else cls()
        return dataclasses.replace(base, **given)

    @property
    def uses_graph(self) -> bool:
        """Whether the scene graph takes part (transduction runs only within DAFT)."""
        return self.daft.enabled and self.transduction.enabled

    def _check(self) -> None:
        def count(name: str, low: int) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {v!r}.")

        def positive(name: str, zero_ok: bool = False) -> None:
            v = getattr(self, name)
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) \
                and (v >= 0 if zero_ok else v > 0)
            if not ok:
                raise ValueError(f"{name} must be a finite number {'>= 0' if zero_ok else '> 0'}, "
                                 f"got {v!r}.")

        for name in ("steps", "head_steps", "pseudo_rounds"):
            count(name, 0)
        if self.adapt_steps is not None:
            count("adapt_steps", 0)
        count("batch_size", 1)
        if self.pseudo_batch_size is not None:
            count("pseudo_batch_size", 1)
        count("seed", 0)
        if self.seed > 2**63 - 1:  # what torch and numpy both take
            raise ValueError(f"seed must be at most 2**63 - 1, got {self.seed!r}.")
        positive("lr")
        positive("layer_decay")
        positive("weight_decay", zero_ok=True)
        positive("smooth_sigma", zero_ok=True)
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing!r}.")
        if self.time_budget is not None:
            positive("time_budget")
        if self.precision not in ("fp32", "bf16", "fp16"):
            raise ValueError(f"precision must be 'fp32', 'bf16' or 'fp16', got {self.precision!r}.")

    def as_history(self) -> dict[str, Any]:
        """The settings a fitted model records in its history."""
        return dict(model=self.model, seed=self.seed, daft=self.daft.as_dict(),
                    transduction=self.transduction.as_dict() if self.uses_graph else None,
                    steps=self.steps, batch_size=self.batch_size,
                    pseudo_batch_size=self.pseudo_batch_size, lr=self.lr,
                    layer_decay=self.layer_decay, smooth_sigma=self.smooth_sigma,
                    pseudo_rounds=self.pseudo_rounds)
