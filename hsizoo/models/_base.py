"""What every hsizoo model shares: wavelength-based canonicalisation and timm's head interface.

A model using :class:`SpectralModelMixin` sets, in its ``__init__``: ``grid`` (canonical
wavelengths, nm), ``default_wavelengths`` (band centres of its ``sensor``/``wavelengths``
argument, or None), ``_resampler_cache`` (a dict), ``_arch_args`` (JSON-able constructor
arguments without the head), ``num_features``, ``num_classes``, ``head`` and ``_init_weights``.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn

from hsizoo.spectral.grid import canonical_resampler, resolve_wavelengths


class SpectralModelMixin:
    """Canonical resampling by wavelength, constructor arguments and head handling."""

    def resampler(self, wavelengths: Sequence[float] | None, num_bands: int,
                  device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(G, bands) resampling weights and (G,) presence for these wavelengths, cached."""
        if wavelengths is None:
            if self.default_wavelengths is None:
                resolve_wavelengths(None, None)  # raises the explanatory error
            wavelengths = self.default_wavelengths
        wl = resolve_wavelengths(wavelengths, num_bands=num_bands)
        key = (tuple(np.round(wl, 4)), str(device))
        if key not in self._resampler_cache:
            res = canonical_resampler(wl, self.grid)
            self._resampler_cache[key] = (torch.as_tensor(res.weights, device=device),
                                          torch.as_tensor(res.present, device=device))
        return self._resampler_cache[key]

    def canonicalize(self, x: torch.Tensor, wavelengths: Sequence[float] | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """Resample (B, bands, ...) onto the canonical grid: (B, G, ...) and presence (G,)."""
        W, present = self.resampler(wavelengths, x.shape[1], x.device)
        return torch.einsum("gc,bc...->bg...", W.to(x.dtype), x), present

    @property
    def model_args(self) -> dict[str, Any]:
        """JSON-able constructor arguments that rebuild this model (head included)."""
        return {**self._arch_args, "num_classes": self.num_classes}

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the head with a fresh one for ``num_classes`` classes (0 removes it)."""
        self.num_classes = num_classes
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        if num_classes > 0:
            self._init_weights(self.head)


def build_hsi_model(cls: type, variant: str, pretrained: bool, no_weights: str,
                    **kwargs: Any) -> nn.Module:
    """timm's ``build_model_with_cfg``, then the verified hsizoo weights, then ``features_only``.

    Args:
        cls: The model class.
        variant: Registered architecture name.
        pretrained: Load the weights of the model's pretrained config.
        no_weights: What to tell the user when that config has no weights.
        **kwargs: Model and timm builder arguments.

    Raises:
        ValueError: ``pretrained`` with a config that has no weights.
    """
    from timm.models import build_model_with_cfg

    from hsizoo.models._features import pop_feature_kwargs, wrap_features

    feature_cfg = pop_feature_kwargs(kwargs)
    model = build_model_with_cfg(cls, variant, pretrained=False, **kwargs)
    model.architecture = variant
    if pretrained:
        from hsizoo.hub.load import load_pretrained

        cfg = model.pretrained_cfg
        if not (cfg.get("file") or cfg.get("hf_hub_id") or cfg.get("state_dict")):
            raise ValueError(f"{variant}.{cfg.get('tag')} has no pretrained weights{no_weights} "
                             "Use pretrained=False, or pass checkpoint_path= a model.safetensors "
                             "file or a folder from save_pretrained.")
        load_pretrained(model, cfg)
    # Wrapped after loading, so that checkpoint keys match the bare model (features_only=True).
    return model if feature_cfg is None else wrap_features(model, feature_cfg)
