"""The recipe of a pretraining run.

:class:`PretrainConfig` is stored in every checkpoint and a resume must match it (its warm-up then
cosine schedule is :func:`hsizoo.runtime.optim.warmup_cosine`); :class:`NonFiniteLossError` stops
a diverging run.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; no update or checkpoint was written for it."""


@dataclass
class PretrainConfig:
    """The recipe of a pretraining run (stored in every checkpoint; a resume must match it).

    Attributes:
        model: Registered S2Former variant (``hsizoo.list_models("s2former*")``).
        model_kwargs: Extra constructor arguments of the encoder.
        scenes: Scene specs (see :func:`load_scene_spec`) or descriptions of Scene objects.
        shards: Folder of patch shards (``hsizoo shard-scenes``) to stream the patches from
            instead of holding scenes in memory (:mod:`hsizoo.pretrain.shard_data`); None (the
            default) pretrains on ``scenes``.
        steps: Length of the schedule in optimiser steps.
        batch_size: Patches per process per step (global batch = batch_size x world size).
        lr: Peak learning rate (AdamW).
        min_lr: Learning rate at the end of the cosine decay.
        weight_decay: AdamW weight decay (not applied to biases, norms, positions, mask tokens).
        warmup_steps: Linear warm-up steps; default 5 % of ``steps``.
        betas: AdamW betas.
        grad_clip: Max gradient norm; 0 disables clipping.
        mask_ratio: Fraction of the P*P spatial tokens masked in every patch.
        spectral_mask_ratio: Fraction of the present spectral groups masked (at least one,
            never all).
        fdc_weight: Weight of the frequency-domain constraint; 0 turns it off.
        fdc_hf_gain: High-frequency emphasis of the FDC (see :mod:`hsizoo.method.losses`).
        spectral_loss_weight: Weight of the masked-group reconstruction loss.
        decoder_dim: Width of the decoders; default the encoder's.
        decoder_depth: Transformer layers per decoder.
        scene_weighting: "equal" (each scene as likely) or "pixels" (by valid pixel count).
        contrast_weight: Weight of the view-agreement (InfoNCE) term between two augmented
            views of each patch; 0 turns it off (the paper's reconstruction-only recipe).
        contrast_temperature: InfoNCE temperature.
        view_offset: The second view is centred up to this many pixels away (rows and columns).
        projector_dim: Output width of the projector of the view-agreement term.
        seed: Seed of initialisation, sampling and masking.
    """

    model: str = "s2former_small"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    scenes: list[str] = field(default_factory=list)
    shards: str | None = None
    steps: int = 1000
    batch_size: int = 64
    lr: float = 1e-3
    min_lr: float = 1e-5
    weight_decay: float = 0.05
    warmup_steps: int | None = None
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    mask_ratio: float = 0.7
    spectral_mask_ratio: float = 0.4
    fdc_weight: float = 0.5
    fdc_hf_gain: float = 1.0
    spectral_loss_weight: float = 1.0
    decoder_dim: int | None = None
    decoder_depth: int = 1
    scene_weighting: str = "equal"
    contrast_weight: float = 0.0
    contrast_temperature: float = 0.2
    view_offset: int = 2
    projector_dim: int = 128
    seed: int = 0

    def __post_init__(self) -> None:
        self.betas = tuple(float(b) for b in self.betas)  # type: ignore[assignment]
        if self.warmup_steps is None:
            self.warmup_steps = max(1, int(round(0.05 * self.steps)))
        checks = [
            (self.steps >= 1, f"steps must be >= 1; got {self.steps}"),
            (self.batch_size >= 1, f"batch_size must be >= 1; got {self.batch_size}"),
            (0.0 < self.mask_ratio < 1.0, f"mask_ratio must be in (0, 1); got {self.mask_ratio}"),
            (0.0 <= self.spectral_mask_ratio < 1.0,
             f"spectral_mask_ratio must be in [0, 1); got {self.spectral_mask_ratio}"),
            (self.fdc_weight >= 0, f"fdc_weight must be >= 0 (0 turns FDC off); got {self.fdc_weight}"),
            (self.lr > 0 and self.min_lr >= 0, "lr must be > 0 and min_lr >= 0"),
            (self.contrast_weight >= 0,
             f"contrast_weight must be >= 0 (0 turns it off); got {self.contrast_weight}"),
            (self.contrast_temperature > 0,
             f"contrast_temperature must be > 0; got {self.contrast_temperature}"),
            (self.view_offset >= 0, f"view_offset must be >= 0; got {self.view_offset}"),
            (self.projector_dim >= 1, f"projector_dim must be >= 1; got {self.projector_dim}"),
            (self.scene_weighting in ("equal", "pixels"),
             f"scene_weighting must be 'equal' or 'pixels'; got {self.scene_weighting!r}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(msg + ".")

    def to_json(self) -> dict[str, Any]:
        """The recipe as JSON types (``shards`` only when set, so in-memory runs keep the
        manifests they always had)."""
        d = asdict(self)
        d["betas"] = list(self.betas)
        if d["shards"] is None:
            del d["shards"]
        return d

