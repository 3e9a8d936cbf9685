"""What every hsizoo model shares: the wavelength input, canonicalisation and timm's head interface.

A model using :class:`SpectralModelMixin` sets, in its ``__init__``: ``spectral_input`` (a
:class:`SpectralInput`), ``grid`` (canonical wavelengths, nm), ``_arch_args`` (JSON-able
constructor arguments without the head), ``num_features``, ``num_classes``, ``head`` and
``_init_weights``.

Wavelengths are data of the forward pass, so the canonical resampling is computed from them with
torch ops on every call (:func:`hsizoo.spectral.grid.canonical_weights`): ``torch.compile``,
``torch.export`` and the ONNX exporter see it as part of the graph, with the wavelengths as a
tensor input. Their values are checked eagerly, with the errors of
:func:`hsizoo.spectral.grid.check_wavelengths`; inside a compiled or exported graph only the band
count (a shape) and finiteness (a runtime assert) can be checked.
"""
from __future__ import annotations

import warnings
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
import torch.nn as nn
from timm.layers import register_notrace_module

from hsizoo.hub.cfg import HsiPretrainedCfg, hsi_cfg
from hsizoo.spectral.grid import canonical_weights, check_wavelengths, make_grid


def is_tracing() -> bool:
    """Inside torch.compile, torch.export (and its ONNX exporter) or TorchScript tracing."""
    return torch.compiler.is_compiling() or torch.jit.is_tracing() or torch.jit.is_scripting()


def _has_values(t: torch.Tensor) -> bool:
    """Whether the tensor's values can be read here (not traced, fake or on the meta device)."""
    if is_tracing() or t.device.type == "meta":
        return False
    from torch._subclasses.fake_tensor import is_fake

    return not is_fake(t)


@register_notrace_module  # a leaf for FX (timm's feature extraction, torchvision's tracer)
class SpectralInput(nn.Module):
    """The part of ``forward`` that reads band wavelengths: patches onto the canonical grid.

    Without wavelengths, the input's bands are taken to be, in this order: the model's own
    default (its ``sensor=``/``wavelengths=`` argument); the sensor of its pretrained config
    (``fallback_sensor``, set by the builder); the canonical grid points themselves, so that
    ``model(torch.randn(B, *pretrained_cfg["input_size"]))`` runs as in timm. The last two say so
    once with a warning.

    Args:
        grid: (start, stop, step) of the canonical grid in nm.
        default_wavelengths: The model's own default band centres (nm), or None.
        patch_size: P, checked by ``forward`` (None: any spatial size).
    """

    def __init__(self, grid: Sequence[float], default_wavelengths: Any = None,
                 patch_size: int | None = None) -> None:
        super().__init__()
        self.grid = tuple(float(v) for v in grid)
        self.num_points = int(make_grid(self.grid).size)
        self.patch_size = patch_size
        self._fallback_sensor: str | None = None
        self._warned = False
        self._memo: dict[tuple[bytes, str], tuple[torch.Tensor, torch.Tensor]] = {}
        self.default_wavelengths = default_wavelengths

    @property
    def default_wavelengths(self) -> np.ndarray | None:
        """The model's own default band centres (nm), or None."""
        return self._default_np

    @default_wavelengths.setter
    def default_wavelengths(self, value: Any) -> None:
        self._default_np = None if value is None else check_wavelengths(value)
        self._refresh()

    @property
    def fallback_sensor(self) -> str | None:
        """Sensor preset used without wavelengths when the model has no default of its own."""
        return self._fallback_sensor

    @fallback_sensor.setter
    def fallback_sensor(self, value: str | None) -> None:
        self._fallback_sensor = value
        self._refresh()

    def _refresh(self) -> None:
        # The wavelengths used when forward gets none, as a CPU float64 tensor (a constant of a
        # compiled or exported graph), and what they are, for the warning.
        if self._default_np is not None:
            wl, self._source = self._default_np, None
        elif self._fallback_sensor is not None:
            from hsizoo.spectral.sensors import get_sensor

            wl = check_wavelengths(get_sensor(self._fallback_sensor).wavelengths)
            self._source = (f"those of the sensor preset {self._fallback_sensor!r} of its "
                            "pretrained config")
        else:
            wl = make_grid(self.grid)
            start, stop, step = self.grid
            self._source = f"the canonical grid points ({start:g}-{stop:g} nm every {step:g} nm)"
        self._default_wl = torch.tensor(np.asarray(wl, dtype=np.float64), device="cpu")
        self._warned = False

    @property
    def default_band_count(self) -> int:
        """Band count of an input without wavelengths (timm's ``in_chans``)."""
        return int(self._default_wl.shape[0])

    def forward(self, x: torch.Tensor, wavelengths: Any = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Patches (B, bands, P, P) -> canonical patches (B, G, P, P) and presence (G,) bool."""
        P = self.patch_size
        if x.ndim != 4 or (P is not None and (x.shape[-1] != P or x.shape[-2] != P)):
            raise ValueError(f"Expected patches (B, bands, {P}, {P}); got {tuple(x.shape)}.")
        return self.canonicalize(x, wavelengths)

    def canonicalize(self, x: torch.Tensor, wavelengths: Any = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """Resample (B, bands, ...) onto the canonical grid: (B, G, ...) and presence (G,)."""
        W, present = self.weights(wavelengths, x.shape[1], x.device)
        return torch.einsum("gc,bc...->bg...", W.to(x.dtype), x), present

    def weights(self, wavelengths: Any, num_bands: int, device: Any = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(G, bands) float32 resampling weights and (G,) presence, on ``device``.

        Computed with torch ops from the wavelength tensor. Eagerly (not traced), the result is
        also kept for the last few wavelength sets, so that small batches do not pay for it on
        every call; compiled and exported graphs compute it.
        """
        wl = self.wavelength_tensor(wavelengths, num_bands)
        device = wl.device if device is None else torch.device(device)
        if not _has_values(wl):
            W, present = canonical_weights(wl, self.grid)
            return W.to(device), present.to(device)
        key = (wl.detach().cpu().numpy().tobytes(), str(device))
        hit = self._memo.get(key)
        if hit is None:
            # Kept tensors are ordinary ones even under inference_mode: autograd may use them later.
            with torch.inference_mode(False):
                W, present = canonical_weights(wl.clone(), self.grid)
            if not bool(present.any()):
                start, stop, _ = self.grid
                raise ValueError(
                    f"The bands ({float(wl.min()):g}-{float(wl.max()):g} nm) cover no point of "
                    f"the canonical grid {start:g}-{stop:g} nm; this model cannot use this sensor.")
            if len(self._memo) >= 8:
                self._memo.clear()
            with torch.inference_mode(False):
                hit = self._memo[key] = (W.to(device), present.to(device))
        return hit

    def wavelength_tensor(self, wavelengths: Any, num_bands: int) -> torch.Tensor:
        """The band centres of an input with ``num_bands`` bands, checked, as a float64 tensor.

        Args:
            wavelengths: A tensor, a sequence or array of numbers (nm), or None (the default).
            num_bands: Band count of the input.

        Raises:
            ValueError: not one per band, not finite, not increasing, not in nm (values are
                checked only where they can be read, see the module).
        """
        if wavelengths is None:
            return self._default_tensor(num_bands)
        if not isinstance(wavelengths, torch.Tensor):
            if is_tracing():  # a constant of the graph (a list is specialised, not checked)
                wavelengths = torch.as_tensor(wavelengths, dtype=torch.float64)
            else:
                return torch.tensor(check_wavelengths(wavelengths, num_bands))  # a copy
        wl = wavelengths.reshape(-1)
        if wl.shape[0] != num_bands:  # shapes: a guard when traced, not a read of values
            raise ValueError(f"Got {wl.shape[0]} wavelengths for data with {num_bands} bands; pass "
                             "one band centre wavelength (nm) per band, in band order.")
        if _has_values(wl):
            check_wavelengths(wl.detach().cpu().double().numpy())
        elif wl.device.type != "meta":
            torch._assert_async(torch.isfinite(wl).all(),
                                "hsizoo: the wavelengths must be finite numbers in nanometres")
        return wl.to(torch.float64)

    def _default_tensor(self, num_bands: int) -> torch.Tensor:
        wl = self._default_wl
        if wl.shape[0] != num_bands:
            from hsizoo.spectral.sensors import list_sensors

            what = ("its default sensor's" if self._source is None
                    else f"{self._source.split(' (')[0]}:")
            raise ValueError(
                f"The band centre wavelengths are unknown: the input has {num_bands} bands, and "
                f"without wavelengths this model takes them to be {what} {wl.shape[0]} bands. "
                "Pass wavelengths=[... nm, one per band] to forward, or build the model with "
                f"sensor=... (known: {', '.join(list_sensors())}).")
        if self._source is not None and not self._warned and not is_tracing():
            self._warned = True
            warnings.warn(f"No wavelengths given: the input's {num_bands} bands are taken to be "
                          f"{self._source}. Pass wavelengths= (band centres in nm) for real data, "
                          "or build the model with sensor=....", UserWarning, stacklevel=2)
        return wl


def model_cfg(patch_size: int = 9, *, first_conv: str, feature_side: int | None = None,
              **kwargs: Any) -> HsiPretrainedCfg:
    """:func:`hsizoo.hub.cfg.hsi_cfg` plus what timm's generic tools read.

    ``input_size`` (bands, P, P) is what the model takes without wavelengths, so timm's tools and
    tests feed it as is (``fixed_input_size``: P is an architecture argument, and the bands are
    the default sensor's or the grid's unless wavelengths are passed); ``first_conv`` names the
    first layer that reads the input; ``pool_size`` is the side of forward_features' map.
    """
    side = patch_size if feature_side is None else feature_side
    return hsi_cfg(patch_size=patch_size, fixed_input_size=True, first_conv=first_conv,
                   pool_size=(side, side), **kwargs)


class SpectralModelMixin:
    """Canonical resampling by wavelength, constructor arguments and head handling."""

    @property
    def default_wavelengths(self) -> np.ndarray | None:
        """Band centres of the model's ``sensor``/``wavelengths`` argument, or None."""
        return self.spectral_input.default_wavelengths

    @default_wavelengths.setter
    def default_wavelengths(self, value: Any) -> None:
        self.spectral_input.default_wavelengths = value

    @property
    def in_chans(self) -> int:
        """Bands of an input without wavelengths (timm's ``in_chans``; see SpectralInput)."""
        return self.spectral_input.default_band_count

    def resampler(self, wavelengths: Any, num_bands: int, device: torch.device
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """(G, bands) resampling weights and (G,) presence for these wavelengths."""
        return self.spectral_input.weights(wavelengths, num_bands, device)

    def canonicalize(self, x: torch.Tensor, wavelengths: Any = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """Resample (B, bands, ...) onto the canonical grid: (B, G, ...) and presence (G,)."""
        return self.spectral_input.canonicalize(x, wavelengths)

    #: timm's ``global_pool`` values the model takes, its default first, each with what it
    #: does (for the error message); set by each model.
    global_pools: ClassVar[dict[str, str]] = {}

    def _check_global_pool(self, global_pool: str) -> str:
        """``global_pool`` if this model takes it, else a ValueError listing what it takes."""
        if global_pool not in self.global_pools:
            known = "; ".join(f"{k!r}: {v}" for k, v in self.global_pools.items())
            raise ValueError(f"{type(self).__name__} takes global_pool = one of {known}; got "
                             f"{global_pool!r}.")
        return global_pool

    @property
    def head_in_features(self) -> int:
        """Width the classifier reads: ``head_hidden_size`` (a model whose pre-logits stage
        needs the pooled features overrides this for ``global_pool=""``)."""
        return self.head_hidden_size

    @property
    def model_args(self) -> dict[str, Any]:
        """JSON-able constructor arguments that rebuild this model (head included)."""
        args = {**self._arch_args, "num_classes": self.num_classes}
        if self.global_pool != next(iter(self.global_pools)):  # only when not the default
            args["global_pool"] = self.global_pool
        return args

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the head with a fresh one for ``num_classes`` classes (0 removes it).

        Args:
            num_classes: Classes of the new head; 0 for none (``forward`` returns features).
            global_pool: The pooling of ``forward_head`` (see the model's ``global_pools``);
                None keeps the current one, ``""`` none (``forward`` returns
                ``forward_features``' map when ``num_classes`` is 0).

        The new head reads ``head_in_features`` features and takes the device, dtype and
        training mode of the model.
        """
        if global_pool is not None:
            self.global_pool = self._check_global_pool(global_pool)
        self.num_classes = num_classes
        if num_classes > 0:
            ref = next(self.parameters())
            self.head = nn.Linear(self.head_in_features, num_classes, device=ref.device,
                                  dtype=ref.dtype)
            self._init_weights(self.head)
            self.head.train(self.training)
        else:
            self.head = nn.Identity()


def _complete_data_cfg(model: nn.Module) -> None:
    """Make ``model.pretrained_cfg``'s preprocessing fields true for a hyperspectral patch model.

    A config.json written before hsizoo recorded them (``mean: []``, ``interpolation: ""``; read
    by ``timm.create_model("hf-hub:...")``) would make ``timm.data.resolve_data_config`` report
    ImageNet's RGB mean/std and bicubic resizing; the fields of
    :func:`hsizoo.hub.cfg.data_cfg_fields` replace them, one mean/std per band of ``input_size``.
    """
    from hsizoo.hub.cfg import data_cfg_fields

    cfg = getattr(model, "pretrained_cfg", None)
    if not isinstance(cfg, dict) or not cfg.get("input_size"):
        return
    want = data_cfg_fields(int(cfg["input_size"][0]))
    for key in ("mean", "std", "interpolation", "normalisation"):
        if tuple(cfg.get(key) or ()) != tuple(want[key]) if key in ("mean", "std") \
                else cfg.get(key) != want[key]:
            cfg[key] = want[key]


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

    from hsizoo.hub.cfg import prepare_builder_cfg
    from hsizoo.models._features import pop_feature_kwargs, wrap_features

    feature_cfg = pop_feature_kwargs(kwargs)
    prepare_builder_cfg(kwargs)
    model = build_model_with_cfg(cls, variant, pretrained=False, **kwargs)
    model.architecture = variant
    _complete_data_cfg(model)
    # Every argument that rebuilds it, so that timm's save_for_hf / push_to_hf_hub record them
    # (timm's factory adds the caller's own kwargs on top).
    model._model_args = {**getattr(model, "_model_args", {}), **model.model_args}
    # Without wavelengths (and without a sensor of its own), an input has the bands of the
    # config's sensor: what its input_size says.
    model.spectral_input.fallback_sensor = (model.pretrained_cfg or {}).get("sensor")
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
