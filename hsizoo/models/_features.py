"""``features_only=True`` for hsizoo models: timm's forward_intermediates getter, with wavelengths.

timm wraps a ViT-style model in :class:`timm.models.FeatureGetterNet`, which calls
``model.forward_intermediates(x, indices=..., norm=..., output_fmt=..., intermediates_only=True)``.
hsizoo's models also need the band centre wavelengths of ``x``, so the wrapper's forward takes
them too (``features(x, wavelengths)``; without them the model's default sensor is used, as in
``forward``). The wrapping happens after pretrained weights are loaded into the bare model, so a
checkpoint's keys never carry the wrapper's ``model.`` prefix.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from timm.models._features import FeatureGetterNet
from torch import nn

__all__ = ["SpectralFeatureGetterNet", "pop_feature_kwargs", "wrap_features"]


class SpectralFeatureGetterNet(FeatureGetterNet):
    """timm's FeatureGetterNet whose forward passes the input's wavelengths to the model."""

    def forward(self, x: torch.Tensor, wavelengths: Sequence[float] | None = None
                ) -> list[torch.Tensor]:
        """Per-level features of ``x`` (B, bands, P, P), in ``feature_info`` order."""
        return self.model.forward_intermediates(
            x, wavelengths, indices=self.out_indices, norm=self.norm,
            output_fmt=str(getattr(self.output_fmt, "value", self.output_fmt)),
            intermediates_only=True)


def pop_feature_kwargs(kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """Remove timm's feature-extraction arguments from a builder's kwargs.

    Args:
        kwargs: The builder's keyword arguments (modified in place).

    Returns:
        The arguments for :func:`wrap_features` when ``features_only=True`` was given, else None.
        ``out_indices`` defaults to every level of ``feature_info`` (None).
    """
    features = bool(kwargs.pop("features_only", False))
    cfg = {k: kwargs.pop(k) for k in ("out_indices", "feature_cls", "output_fmt", "norm")
           if k in kwargs}
    if not features:
        return None
    if cfg.pop("feature_cls", "getter") not in ("getter", SpectralFeatureGetterNet):
        raise ValueError("hsizoo models support only feature_cls='getter' (per-level features "
                         "through forward_intermediates).")
    cfg.setdefault("out_indices", None)
    return cfg


def wrap_features(model: nn.Module, feature_cfg: dict[str, Any]) -> nn.Module:
    """Wrap a built (and loaded) model for ``features_only`` output, as timm's builder does.

    Args:
        model: The bare model, with ``forward_intermediates``, ``prune_intermediate_layers``
            and ``feature_info``.
        feature_cfg: From :func:`pop_feature_kwargs`.

    Returns:
        The wrapper, carrying ``feature_info`` and timm's feature ``pretrained_cfg``.
    """
    from timm.models._builder import pretrained_cfg_for_features

    pcfg = getattr(model, "pretrained_cfg", {}) or {}
    arch = getattr(model, "architecture", None)
    feats = SpectralFeatureGetterNet(model, **feature_cfg)
    feats.pretrained_cfg = feats.default_cfg = pretrained_cfg_for_features(pcfg)
    feats.architecture = arch
    feats.patch_size = getattr(model, "patch_size", None)
    return feats
