"""HybridSN: a 3-D/2-D convolutional network for hyperspectral patches, as a supervised baseline.

Roy, Krishna, Dubey and Chaudhuri, "HybridSN: Exploring 3-D-2-D CNN Feature Hierarchy for
Hyperspectral Image Classification", IEEE GRSL 17(2), 2020 (arXiv:1902.06701). The original
reduces the bands to 30 principal components, runs three 3-D convolutions (8, 16, 32 filters with
spectral kernels 7, 5, 3 and 3 x 3 spatial kernels), one 2-D convolution (64 filters, 3 x 3) over
the spectral-spatial feature stack, then dense layers of 256 and 128 units with dropout 0.4.

What this implementation changes, and why:

* Spectral identity is data (DESIGN.md): each band is resampled by wavelength onto hsizoo's
  canonical grid (:func:`hsizoo.spectral.grid.canonical_resampler`; uncovered points are zero), and a
  *learned* linear map from the canonical spectrum to ``num_components`` values replaces the PCA,
  so one architecture (and one checkpoint) serves any sensor. A presence embedding tells the
  network which grid points the sensor lacks.
* Batch normalisation after every convolution, as in common PyTorch ports, so that training
  from scratch on a few shots is stable.
* Patches of 9 x 9 by default (the paper used 25 x 25 on Indian Pines), matching S2Former's input
  so that the benchmark compares models on the same neighbourhood; ``patch_size`` is free (>= 9).

Input is ``x`` of shape (B, bands, P, P) standardised per band, plus the band centre wavelengths,
exactly as for :class:`hsizoo.models.S2Former`.

timm's interface follows its CNNs with a pre-logits stage (MobileNetV3's ``conv_head``):
``forward_features`` is the 2-D convolution's map (B, channels_2d, P - 8, P - 8), so
``num_features`` = channels_2d; ``forward_head`` flattens it through the dense layers
(``global_pool="flatten"``, the paper's head), whose width is ``head_hidden_size``;
``global_pool=""`` keeps the map, and a classifier then reads each pixel's channels (a 1 x 1
convolution, as timm's ``ClassifierHead(use_conv=True)``): the dense layers, which read the whole
flattened map, are not used.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn as nn
from timm.layers import trunc_normal_
from timm.models import generate_default_cfgs, register_model
from timm.models._features import feature_take_indices

from hsizoo.spectral.grid import CANONICAL_GRID, make_grid, resolve_wavelengths
from hsizoo.models._base import SpectralInput, SpectralModelMixin, build_hsi_model, model_cfg

__all__ = ["HybridSN"]


class ConvBN3d(nn.Module):
    """3-D convolution (no spatial padding), batch norm, ReLU."""

    def __init__(self, in_ch: int, out_ch: int, kernel: tuple[int, int, int]) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_ch, out_ch, kernel, bias=False)
        self.bn = nn.BatchNorm3d(out_ch)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class ConvBN2d(nn.Module):
    """2-D convolution (no padding), batch norm, ReLU."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, bias=False)
        self.bn = nn.BatchNorm2d(out_ch)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class HybridSN(SpectralModelMixin, nn.Module):
    """HybridSN on canonical spectra (see module docstring).

    Args:
        num_classes: Classes of the head; 0 for no head (pooled features only).
        patch_size: P, the side of the square pixel neighbourhood (odd, >= 9 with the default
            kernels).
        num_components: Width of the learned spectral reduction (the paper's 30 PCA components).
        channels_3d: Filters of the three 3-D convolutions.
        spectral_kernels: Spectral extent of the three 3-D kernels.
        channels_2d: Filters of the 2-D convolution.
        hidden: Widths of the dense layers; the last is ``head_hidden_size``.
        drop_rate: Dropout after each dense layer (the paper's 0.4).
        global_pool: ``forward_head``'s reading of the map: ``"flatten"`` (through the dense
            layers) or ``""`` (none: the map itself, classified pixel by pixel).
        grid: (start, stop, step) of the canonical grid in nm.
        sensor: Sensor preset whose wavelengths are used when forward gets none.
        wavelengths: Default band centres (nm) used when forward gets none.
        in_chans, img_size: Accepted for timm compatibility and ignored: wavelengths define
            the bands, ``patch_size`` the side.
        device, dtype: Where and in which dtype to create the parameters (timm's factory).
    """

    global_pools = {"flatten": "the map flattened through the dense layers, the paper's head",
                    "": "no pooling, forward_features' (B, channels_2d, P - 8, P - 8) map, "
                        "classified pixel by pixel"}

    def __init__(
        self,
        num_classes: int = 0,
        patch_size: int = 9,
        num_components: int = 30,
        channels_3d: Sequence[int] = (8, 16, 32),
        spectral_kernels: Sequence[int] = (7, 5, 3),
        channels_2d: int = 64,
        hidden: Sequence[int] = (256, 128),
        drop_rate: float = 0.4,
        grid: Sequence[float] = CANONICAL_GRID,
        sensor: str | None = None,
        wavelengths: Sequence[float] | None = None,
        global_pool: str = "flatten",
        in_chans: int | None = None,
        img_size: Any = None,
        device: Any = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if len(channels_3d) != 3 or len(spectral_kernels) != 3:
            raise ValueError("channels_3d and spectral_kernels need three values each (one per "
                             f"3-D convolution); got {channels_3d} and {spectral_kernels}.")
        depth_out = num_components - sum(k - 1 for k in spectral_kernels)
        side = patch_size - 2 * 4  # three 3 x 3 x 3 and one 3 x 3 valid convolution
        if patch_size % 2 == 0 or side < 1:
            raise ValueError(f"patch_size must be odd and >= 9 (four valid 3 x 3 convolutions); "
                             f"got {patch_size}.")
        if depth_out < 1:
            raise ValueError(f"num_components ({num_components}) must exceed the summed spectral "
                             f"kernel extents minus 3 ({sum(spectral_kernels) - 3}).")
        self.global_pool = self._check_global_pool(global_pool)
        self.num_classes = num_classes
        self.patch_size = patch_size
        self.num_components = num_components
        # The width of the per-pixel spectral embedding, reported like S2Former's token width.
        self.embed_dim = num_components
        self.grid = tuple(float(v) for v in grid)
        self.grid_wavelengths = make_grid(self.grid)
        G = self.grid_wavelengths.size
        # Reads the wavelengths; the model's default ones when forward gets none.
        own = None if wavelengths is None and sensor is None else resolve_wavelengths(
            wavelengths, sensor)
        self.spectral_input = SpectralInput(self.grid, own, patch_size)
        self.sensor = sensor
        self._arch_args = dict(
            patch_size=patch_size, num_components=num_components,
            channels_3d=[int(c) for c in channels_3d],
            spectral_kernels=[int(k) for k in spectral_kernels], channels_2d=channels_2d,
            hidden=[int(h) for h in hidden], drop_rate=drop_rate, grid=list(self.grid),
            sensor=sensor, wavelengths=None if wavelengths is None else [float(v) for v in wavelengths],
        )

        # Learned replacement of the paper's PCA, applied per pixel to the canonical spectrum.
        self.spectral_reduce = nn.Linear(G, num_components)
        self.presence_embed = nn.Linear(G, num_components, bias=False)
        c1, c2, c3 = (int(c) for c in channels_3d)
        k1, k2, k3 = (int(k) for k in spectral_kernels)
        # ``blocks`` names the convolutional stages like a transformer's blocks, so that generic
        # tooling (layer-wise learning rates, the model-zoo table) can count and group them.
        self.blocks = nn.ModuleList([
            ConvBN3d(1, c1, (k1, 3, 3)),
            ConvBN3d(c1, c2, (k2, 3, 3)),
            ConvBN3d(c2, c3, (k3, 3, 3)),
            ConvBN2d(c3 * depth_out, channels_2d, 3),
        ])
        # timm's per-block features (features_only=True): each 3-D stage's (C, D) folded into
        # channels as the 2-D stage sees them. The convolutions have stride 1 but no padding,
        # so block i's map is P - 2(i + 1) pixels wide: its reduction is the input side over
        # the map's (P // side, the input size being fixed), which is what timm's users and
        # tests compute sizes from (input / reduction), not a stride; offsets are i + 1 pixels.
        depths = [num_components - k1 + 1, num_components - k1 - k2 + 2, depth_out]
        chans = [c * d for c, d in zip((c1, c2, c3), depths)] + [channels_2d]
        self.feature_info = [dict(module=f"blocks.{i}", num_chs=ch,
                                  reduction=patch_size // (patch_size - 2 * (i + 1)))
                             for i, ch in enumerate(chans)]
        dims = [channels_2d * side * side, *(int(h) for h in hidden)]
        layers: list[nn.Module] = []
        for i in range(len(hidden)):
            layers += [nn.Linear(dims[i], dims[i + 1]), nn.ReLU(inplace=True), nn.Dropout(drop_rate)]
        self.fc = nn.Sequential(*layers)
        # timm's widths: forward_features' channels, and the dense layers' (pre-logits) output.
        self.num_features, self.head_hidden_size = channels_2d, dims[-1]
        self.head = (nn.Linear(self.head_in_features, num_classes) if num_classes > 0
                     else nn.Identity())
        self.apply(self._init_weights)
        if device is not None or dtype is not None:
            self.to(device=device, dtype=dtype)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.Conv3d, nn.Conv2d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, x: torch.Tensor, wavelengths: Sequence[float] | None = None
                         ) -> torch.Tensor:
        """Feature map (B, channels_2d, P - 8, P - 8) after the 2-D convolution."""
        z = self._reduce(x, wavelengths)
        for blk in self.blocks[:3]:
            z = blk(z)
        # The 2-D stage sees the spectral-spatial stack as channels (the "hybrid" of the title).
        return self.blocks[3](z.flatten(1, 2))

    def _reduce(self, x: torch.Tensor, wavelengths: Sequence[float] | None) -> torch.Tensor:
        """Patches -> the learned spectral reduction per pixel, (B, 1, num_components, P, P)."""
        xc, present = self.spectral_input(x, wavelengths)  # checks the patch shape too
        z = self.spectral_reduce(xc.permute(0, 2, 3, 1))  # (B, P, P, C)
        z = z + self.presence_embed(present.to(z.dtype))
        return z.permute(0, 3, 1, 2).unsqueeze(1)

    def forward_intermediates(
        self,
        x: torch.Tensor,
        wavelengths: Sequence[float] | None = None,
        indices: int | Sequence[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """Per-stage feature maps, timm's ``forward_intermediates`` convention.

        Args:
            x: (B, bands, P, P) standardised patches.
            wavelengths: Band centres in nm; the model's default if None.
            indices: Stages to take: the last n if an int, these if a sequence, all if None.
            norm: Accepted for timm's interface; HybridSN has no final norm.
            stop_early: Stop after the last stage taken.
            output_fmt: Only ``"NCHW"``: (B, C*D, h, w) for the 3-D stages, (B, C, h, w) after.
            intermediates_only: Return only the intermediates.

        Returns:
            The intermediates, or (forward_features output, intermediates).
        """
        if output_fmt != "NCHW":
            raise ValueError(f"HybridSN's features are maps: output_fmt must be 'NCHW', got "
                             f"{output_fmt!r}.")
        take, max_index = feature_take_indices(len(self.blocks), indices)
        z = self._reduce(x, wavelengths)
        inter: list[torch.Tensor] = []
        blocks = self.blocks[:max_index + 1] if stop_early else self.blocks
        for i, blk in enumerate(blocks):
            if z.ndim == 5 and i == 3:
                z = z.flatten(1, 2)
            z = blk(z)
            if i in take:
                inter.append(z.flatten(1, 2) if z.ndim == 5 else z)
        if intermediates_only:
            return inter
        return z, inter

    def prune_intermediate_layers(self, indices: int | Sequence[int] = 1, prune_norm: bool = False,
                                  prune_head: bool = True) -> list[int]:
        """Drop the stages after the last one in ``indices`` (and the dense layers and head).

        Returns:
            The absolute indices kept.
        """
        take, max_index = feature_take_indices(len(self.blocks), indices)
        self.blocks = self.blocks[:max_index + 1]
        if prune_head:
            self.fc = nn.Identity()
            self.reset_classifier(0)
        return take

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Flatten the feature map through the dense layers, then the classifier.

        Args:
            x: forward_features' map (B, channels_2d, P - 8, P - 8).
            pre_logits: Return the dense layers' output (B, head_hidden_size).

        Returns:
            Logits (B, num_classes), or (B, head_hidden_size) features when ``pre_logits`` or
            ``num_classes=0``. With ``global_pool=""``: the map itself, or logits per pixel
            (B, num_classes, P - 8, P - 8).
        """
        if not self.global_pool:  # no pooling: a classifier reads each pixel's channels
            if pre_logits or self.num_classes == 0:
                return x
            return self.head(x.movedim(1, -1)).movedim(-1, 1)
        x = self.fc(x.flatten(1))  # "flatten"
        return x if pre_logits else self.head(x)

    @property
    def head_in_features(self) -> int:
        """The classifier's width: the dense layers' output, or with ``global_pool=""`` (which
        skips them) a pixel's channels, ``num_features``."""
        return self.head_hidden_size if self.global_pool else self.num_features

    def forward(self, x: torch.Tensor, wavelengths: Sequence[float] | None = None) -> torch.Tensor:
        """Logits (B, num_classes), or features (B, head_hidden_size) when num_classes=0."""
        return self.forward_head(self.forward_features(x, wavelengths))

def _create_hybridsn(variant: str, pretrained: bool = False, **kwargs: Any) -> HybridSN:
    return build_hsi_model(HybridSN, variant, pretrained, ": HybridSN is a supervised baseline "
                           "trained from scratch on the shots.", **kwargs)


def _cfg(patch_size: int = 9, **kwargs: Any) -> Any:
    # forward_features' map: four valid 3 x 3 convolutions.
    return model_cfg(patch_size, first_conv="spectral_reduce", feature_side=patch_size - 8,
                     **kwargs)


default_cfgs = generate_default_cfgs({
    "hybridsn_test.untrained": _cfg(paper_ids="arXiv:1902.06701", paper_name="HybridSN: "
                                    "Exploring 3-D-2-D CNN Feature Hierarchy for Hyperspectral "
                                    "Image Classification"),
    "hybridsn.untrained": _cfg(paper_ids="arXiv:1902.06701", paper_name="HybridSN: Exploring "
                               "3-D-2-D CNN Feature Hierarchy for Hyperspectral Image "
                               "Classification"),
})


@register_model
def hybridsn_test(pretrained: bool = False, **kwargs: Any) -> HybridSN:
    """Tiny HybridSN for fast tests (14 components, 2/4/4 filters, dense 16)."""
    args = {**dict(patch_size=9, num_components=14, channels_3d=(2, 4, 4),
                   spectral_kernels=(7, 5, 3), channels_2d=8, hidden=(16,)), **kwargs}
    return _create_hybridsn("hybridsn_test", pretrained, **args)


@register_model
def hybridsn(pretrained: bool = False, **kwargs: Any) -> HybridSN:
    """HybridSN as published (30 components, 8/16/32 3-D and 64 2-D filters, dense 256/128)."""
    args = {**dict(patch_size=9, num_components=30), **kwargs}
    return _create_hybridsn("hybridsn", pretrained, **args)
