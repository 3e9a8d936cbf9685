"""S2Former: a dual-branch spatial-spectral transformer with bidirectional cross-attention.

Implements the backbone of "Cross-Domain Transfer with Self-Supervised Spectral-Spatial Modeling
for Hyperspectral Image Classification" (arXiv 2601.18088). The paper describes its parts in words
only; this is our reading (DESIGN.md, "S2Former: our reading of the paper"):

* Spectral canonicalisation: each band is placed on one canonical wavelength grid
  (400-2500 nm every 10 nm), so one checkpoint serves any sensor; uncovered grid points are
  missing and the model is told which ones (a learned presence embedding).
* Spatial branch: one token per pixel of the P x P patch, embedded from its canonical spectrum,
  with learned 2-D positions; tokens can be replaced by a mask token for masked pretraining.
* Spectral branch: one token per contiguous group of canonical wavelengths, carrying the group's
  values over the c x c central pixels, positioned by a sinusoidal encoding of the group's centre
  wavelength (so a position means the same for every sensor); missing groups are excluded from
  attention as keys.
* Every block: self-attention in each branch, then bidirectional cross-attention (spatial queries
  on spectral keys and vice versa), then an MLP per branch.
* Head: the centre pixel's spatial token concatenated with the mean of the spectral tokens.

In timm's interface, ``forward_features`` is a (B, P, P, 2D) map, ``output_fmt`` "NHWC" (timm's
layout for tokens on a grid, as Swin's): at each pixel, its spatial token, then the patch's mean
spectral token (one per patch, repeated); ``num_features`` = 2D. ``forward_head`` takes the centre
pixel (``global_pool="centre"``): exactly the head's input above; ``global_pool=""`` keeps the
map. The tokens themselves come from ``forward_tokens`` and ``forward_intermediates``.

Input is ``x`` of shape (B, bands, P, P) in the sensor's band order, standardised per band
(:func:`hsizoo.spectral.grid.band_stats`), plus the band centre wavelengths: a tensor (what
``torch.compile`` and ``torch.export`` take as an input), a sequence, or none (the model's
default sensor, see :class:`hsizoo.models._base.SpectralInput`).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.utils.checkpoint
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import trunc_normal_
from timm.models import generate_default_cfgs, register_model
from timm.models._features import feature_take_indices

from hsizoo.hub.shipped import published_revision
from hsizoo.spectral.grid import CANONICAL_GRID, make_grid, resolve_wavelengths
from hsizoo.models._base import SpectralInput, SpectralModelMixin, build_hsi_model, model_cfg
from hsizoo.models._layers import Attention, DualBlock, sinusoidal_encoding  # noqa: F401

__all__ = ["S2Former"]


class S2Former(SpectralModelMixin, nn.Module):
    """Dual-branch spatial-spectral transformer (see module docstring).

    Args:
        num_classes: Classes of the head; 0 for no head (features only).
        patch_size: P, the side of the square pixel neighbourhood.
        embed_dim: Token width D.
        depth: Number of dual blocks.
        num_heads: Attention heads.
        mlp_ratio: MLP hidden width over D.
        group_size: Canonical grid points per spectral token.
        center_size: c; spectral tokens carry values over the c x c central pixels.
        grid: (start, stop, step) of the canonical grid in nm.
        sensor: Sensor preset whose wavelengths are used when forward gets none.
        wavelengths: Default band centres (nm) used when forward gets none.
        qkv_bias: Bias in the attention projections.
        drop_rate: Dropout in MLPs and projections, and before the head.
        attn_drop_rate: Attention dropout.
        drop_path_rate: Stochastic depth, linearly increasing over blocks.
        global_pool: ``forward_head``'s pooling of ``forward_features``' map: ``"centre"``
            (the centre pixel, what the classifier reads) or ``""`` (none: the map itself).
        in_chans, img_size: Accepted for timm compatibility and ignored: wavelengths define
            the bands, ``patch_size`` the side.
        device, dtype: Where and in which dtype to create the parameters (timm's factory).
    """

    global_pools = {"centre": "the centre pixel's features, what the classifier reads",
                    "": "no pooling, forward_features' (B, P, P, 2D) map"}

    def __init__(
        self,
        num_classes: int = 0,
        patch_size: int = 9,
        embed_dim: int = 64,
        depth: int = 4,
        num_heads: int = 4,
        mlp_ratio: float = 2.0,
        group_size: int = 10,
        center_size: int = 3,
        grid: Sequence[float] = CANONICAL_GRID,
        sensor: str | None = None,
        wavelengths: Sequence[float] | None = None,
        qkv_bias: bool = True,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        global_pool: str = "centre",
        in_chans: int | None = None,
        img_size: Any = None,
        device: Any = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if patch_size % 2 == 0 or center_size % 2 == 0 or center_size > patch_size:
            raise ValueError(f"patch_size ({patch_size}) and center_size ({center_size}) must be "
                             "odd, with center_size <= patch_size, so that a centre pixel exists.")
        self.global_pool = self._check_global_pool(global_pool)
        self.output_fmt = "NHWC"  # forward_features' layout (timm reads it)
        self.num_classes = num_classes
        self.patch_size = patch_size
        self.center_size = center_size
        self.group_size = group_size
        self.embed_dim = embed_dim
        self.grid = tuple(float(v) for v in grid)
        self.grid_wavelengths = make_grid(self.grid)
        G = self.grid_wavelengths.size
        self.num_groups = math.ceil(G / group_size)
        self.num_features = self.head_hidden_size = 2 * embed_dim
        self._pad = self.num_groups * group_size - G  # grid points padding the last group
        # Reads the wavelengths; the model's default ones when forward gets none.
        own = None if wavelengths is None and sensor is None else resolve_wavelengths(
            wavelengths, sensor)
        self.spectral_input = SpectralInput(self.grid, own, patch_size)
        self.sensor = sensor
        # The arguments that rebuild this architecture (config.json; see model_args).
        self._arch_args = dict(
            patch_size=patch_size, embed_dim=embed_dim, depth=depth, num_heads=num_heads,
            mlp_ratio=mlp_ratio, group_size=group_size, center_size=center_size,
            grid=list(self.grid), sensor=sensor, qkv_bias=qkv_bias,
            wavelengths=None if wavelengths is None else [float(v) for v in wavelengths],
        )

        # Spatial branch: per-pixel spectrum -> token; band presence -> a shared embedding.
        self.pixel_embed = nn.Linear(G, embed_dim)
        self.presence_embed = nn.Linear(G, embed_dim, bias=False)
        self.pos_embed = nn.Parameter(torch.zeros(1, patch_size * patch_size, embed_dim))
        self.mask_token_sp = nn.Parameter(torch.zeros(1, 1, embed_dim))
        # Spectral branch: group values over the c x c centre plus the group's presence pattern.
        self.group_embed = nn.Linear(group_size * center_size * center_size + group_size, embed_dim)
        centres = self._group_centres()
        self.register_buffer("wl_embed", sinusoidal_encoding(centres / self.grid[2], embed_dim),
                             persistent=False)
        self.mask_token_se = nn.Parameter(torch.zeros(1, 1, embed_dim))

        dpr = [float(v) for v in torch.linspace(0, drop_path_rate, depth, device="cpu")]
        self.blocks = nn.ModuleList([
            DualBlock(embed_dim, num_heads, mlp_ratio, qkv_bias, drop_rate, attn_drop_rate, dpr[i])
            for i in range(depth)
        ])
        # timm's feature levels (features_only=True, forward_intermediates): the embedded
        # spatial tokens before the blocks (the stem, as ResNet exposes its stem: each pixel's
        # spectral embedding plus its position), then those of each block, as (D, P, P) maps;
        # patches are never downsampled (reduction 1).
        self.feature_info = [dict(module="pixel_embed", num_chs=embed_dim, reduction=1)]
        self.feature_info += [dict(module=f"blocks.{i}", num_chs=embed_dim, reduction=1)
                              for i in range(depth)]
        self.norm_sp = nn.LayerNorm(embed_dim, eps=1e-6)
        self.norm_se = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        self.apply(self._init_weights)
        trunc_normal_(self.pos_embed, std=0.02)
        trunc_normal_(self.mask_token_sp, std=0.02)
        trunc_normal_(self.mask_token_se, std=0.02)
        if device is not None or dtype is not None:
            self.to(device=device, dtype=dtype)

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    def _group_centres(self) -> torch.Tensor:
        wl = torch.as_tensor(self.grid_wavelengths)
        pad = self.num_groups * self.group_size - wl.numel()
        wl = torch.cat([wl, wl[-1] + self.grid[2] * torch.arange(1, pad + 1)]) if pad else wl
        return wl.view(self.num_groups, self.group_size).mean(1)

    def group_presence(self, present: torch.Tensor) -> torch.Tensor:
        """(num_groups,) True where a spectral group has at least one covered grid point."""
        return F.pad(present, (0, self._pad)).view(self.num_groups, self.group_size).any(1)

    # ------------------------------------------------------------------ embedding
    def embed_spatial(self, xc: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Canonical patch (B, G, P, P) -> spatial tokens (B, P*P, D), positions included."""
        tok = self.pixel_embed(xc.permute(0, 2, 3, 1).flatten(1, 2))  # (B, P*P, G)
        tok = tok + self.presence_embed(present.to(tok.dtype))
        return tok + self.pos_embed

    def embed_spectral(self, xc: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Canonical patch (B, G, P, P) -> spectral group tokens (B, num_groups, D)."""
        P, c = self.patch_size, self.center_size
        o = (P - c) // 2
        centre = F.pad(xc[:, :, o:o + c, o:o + c], (0, 0, 0, 0, 0, self._pad))
        vals = centre.unflatten(1, (self.num_groups, self.group_size)).flatten(2)  # (B, n, s*c*c)
        pres = F.pad(present, (0, self._pad)).to(vals.dtype).view(1, self.num_groups, -1)
        vals = torch.cat([vals, pres.expand(vals.shape[0], -1, -1)], dim=-1)
        return self.group_embed(vals) + self.wl_embed.to(vals.dtype)

    # ------------------------------------------------------------------ timm interface
    def forward_tokens(self, x: torch.Tensor, wavelengths: Sequence[float] | None = None,
                       spatial_mask: torch.Tensor | None = None,
                       spectral_mask: torch.Tensor | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode a patch batch into spatial and spectral tokens.

        Args:
            x: (B, bands, P, P) standardised patches.
            wavelengths: Band centres in nm; the model's default if None.
            spatial_mask: (B, P*P) bool, True = replace that pixel's token by the mask token.
            spectral_mask: (B, num_groups) bool, True = replace that group's token.

        Returns:
            Spatial tokens (B, P*P, D), spectral tokens (B, num_groups, D) and the group
            presence (num_groups,) bool.
        """
        sp, se, gp = self._embed(x, wavelengths)
        sp = self._mask(sp, spatial_mask, self.mask_token_sp)
        se = self._mask(se, spectral_mask, self.mask_token_se)
        return self.encode(sp, se, gp)

    @staticmethod
    def _mask(tokens: torch.Tensor, mask: torch.Tensor | None, token: torch.Tensor) -> torch.Tensor:
        if mask is None:
            if not torch.is_grad_enabled():
                return tokens
            # Nothing masked, but the mask token stays in the graph (gradient 0, output
            # unchanged): DistributedDataParallel and timm's tests expect every parameter used.
            mask = torch.zeros((1,), dtype=torch.bool, device=tokens.device)
        return torch.where(mask[..., None], token.to(tokens.dtype), tokens)

    def _embed(self, x: torch.Tensor, wavelengths: Sequence[float] | None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Patches -> spatial tokens, spectral tokens and group presence, before the blocks."""
        xc, present = self.spectral_input(x, wavelengths)  # checks the patch shape too
        return (self.embed_spatial(xc, present), self.embed_spectral(xc, present),
                self.group_presence(present))

    def _run_block(self, blk: nn.Module, sp: torch.Tensor, se: torch.Tensor, keep: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        if getattr(self, "grad_checkpointing", False) and torch.is_grad_enabled():
            # Recompute the block's activations in the backward pass: memory for compute.
            return torch.utils.checkpoint.checkpoint(blk, sp, se, keep, use_reentrant=False)
        return blk(sp, se, keep)

    def encode(self, sp: torch.Tensor, se: torch.Tensor, group_present: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Run the dual blocks on embedded tokens (used by the shared-computation predictor)."""
        keep = group_present.view(1, -1).expand(se.shape[0], -1)
        for blk in self.blocks:
            sp, se = self._run_block(blk, sp, se, keep)
        return self.norm_sp(sp), self.norm_se(se), group_present

    def forward_intermediates(
        self,
        x: torch.Tensor,
        wavelengths: Sequence[float] | None = None,
        indices: int | Sequence[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
        return_spectral_tokens: bool = False,
    ) -> list[Any] | tuple[torch.Tensor, list[Any]]:
        """Per-level features, timm's ``forward_intermediates`` convention (as in its ViT).

        The levels are those of ``feature_info``: level 0 is the embedded tokens before the
        blocks (the stem), level i + 1 the output of block i.

        Args:
            x: (B, bands, P, P) standardised patches.
            wavelengths: Band centres in nm; the model's default if None.
            indices: Levels to take: the last n if an int, these if a sequence (negative from
                the end), all if None.
            norm: Apply the final norms to the intermediates.
            stop_early: Stop after the last level taken (then the final features are not
                those of the whole model).
            output_fmt: ``"NCHW"``: spatial tokens as a (B, D, P, P) map; ``"NLC"``: (B, P*P, D).
            intermediates_only: Return only the intermediates.
            return_spectral_tokens: Each intermediate becomes (spatial, spectral tokens
                (B, num_groups, D)), like ViT's ``return_prefix_tokens``; groups the sensor does
                not cover hold the mean of the covered ones, as in forward_features.

        Returns:
            The intermediates, or (forward_features output, intermediates).
        """
        if output_fmt not in ("NCHW", "NLC"):
            raise ValueError(f"output_fmt must be 'NCHW' or 'NLC', got {output_fmt!r}.")
        take, max_index = feature_take_indices(len(self.blocks) + 1, indices)
        sp, se, gp = self._embed(x, wavelengths)
        keep = gp.view(1, -1).expand(se.shape[0], -1)
        inter: list[Any] = []

        def add(sp: torch.Tensor, se: torch.Tensor) -> None:
            a, b = (self.norm_sp(sp), self.norm_se(se)) if norm else (sp, se)
            if output_fmt == "NCHW":
                a = a.unflatten(1, (self.patch_size, -1)).permute(0, 3, 1, 2)  # b d h w
            inter.append((a, self._fill_missing_groups(b, gp)) if return_spectral_tokens else a)

        if 0 in take:
            add(sp, se)
        blocks = self.blocks[:max_index] if stop_early else self.blocks
        for i, blk in enumerate(blocks):
            sp, se = self._run_block(blk, sp, se, keep)
            if i + 1 in take:
                add(sp, se)
        if intermediates_only:
            return inter
        return self.features_from_tokens(self.norm_sp(sp), self.norm_se(se), gp), inter

    def prune_intermediate_layers(self, indices: int | Sequence[int] = 1, prune_norm: bool = False,
                                  prune_head: bool = True) -> list[int]:
        """Drop the blocks after the last level in ``indices`` (and the norms, the head).

        Returns:
            The absolute level indices kept (level 0 is the stem, level i + 1 block i).
        """
        take, max_index = feature_take_indices(len(self.blocks) + 1, indices)
        self.blocks = self.blocks[:max_index]
        if prune_norm:
            self.norm_sp, self.norm_se = nn.Identity(), nn.Identity()
        if prune_head:
            self.reset_classifier(0)
        return take

    def features_from_tokens(self, sp: torch.Tensor, se: torch.Tensor, group_present: torch.Tensor
                             ) -> torch.Tensor:
        """forward_features' (B, P, P, 2D) "NHWC" map from normed spatial (B, P*P, D) and
        spectral (B, num_groups, D) tokens and the (num_groups,) presence: each pixel's spatial
        token, then the mean spectral token over the covered groups (the same at every pixel)."""
        spectral = self._mean_spectral_token(se, group_present)  # (B, 1, D)
        pixels = torch.cat([sp, spectral.expand(-1, sp.shape[1], -1)], dim=-1)
        # (b, h*w, c) -> (b, h, w, c) with torch ops, not einops: timm's FX tests trace forward.
        return pixels.unflatten(1, (self.patch_size, -1))

    def pool_tokens(self, sp: torch.Tensor, se: torch.Tensor, group_present: torch.Tensor
                    ) -> torch.Tensor:
        """(B, 2D): the centre pixel of :meth:`features_from_tokens`' map (what ``forward_head``
        reads with ``global_pool="centre"``) without building the map, for the predictors."""
        centre = sp[:, self.patch_size * self.patch_size // 2]
        return torch.cat([centre, self._mean_spectral_token(se, group_present)[:, 0]], dim=-1)

    def _mean_spectral_token(self, se: torch.Tensor, group_present: torch.Tensor) -> torch.Tensor:
        # The head's spectral summary (DESIGN.md, S2Former 6): (B, 1, D).
        return self._fill_missing_groups(se, group_present).mean(1, keepdim=True)

    def forward_features(self, x: torch.Tensor, wavelengths: Sequence[float] | None = None
                         ) -> torch.Tensor:
        """The unpooled (B, P, P, 2D) "NHWC" map of :meth:`features_from_tokens`; the tokens
        themselves come from :meth:`forward_tokens` or :meth:`forward_intermediates`."""
        return self.features_from_tokens(*self.forward_tokens(x, wavelengths))

    @staticmethod
    def _fill_missing_groups(se: torch.Tensor, gp: torch.Tensor) -> torch.Tensor:
        # The mean over covered groups without indexing by the mask: no data-dependent shape.
        keep = gp.view(1, -1, 1)
        count = keep.sum(1, keepdim=True).clamp(min=1).to(se.dtype)
        mean = torch.where(keep, se, torch.zeros((), dtype=se.dtype, device=se.device)).sum(
            1, keepdim=True) / count
        return torch.where(keep, se, mean)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool forward_features' map x (B, P, P, 2D), then classify.

        Returns:
            ``global_pool="centre"``: logits (B, num_classes), or the centre pixel's features
            (B, head_hidden_size) with ``pre_logits`` or ``num_classes=0``; ``""``: the same
            for every pixel, (B, P, P, ...).
        """
        if self.global_pool:  # "centre"
            x = x[:, self.patch_size // 2, self.patch_size // 2]
        x = self.head_drop(x)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor, wavelengths: Sequence[float] | None = None) -> torch.Tensor:
        """Logits (B, num_classes), or features when num_classes=0 (see forward_head)."""
        return self.forward_head(self.forward_features(x, wavelengths))

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        return {"pos_embed", "mask_token_sp", "mask_token_se"}

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        """timm's parameter grouping (layer-wise learning-rate decay in
        ``timm.optim.create_optimizer_v2(layer_decay=)``): everything before the blocks (the
        embeddings and tokens) is layer 0, block i is layer i + 1, and the final norms share the
        last layer with the head (MAE / BEiT's numbering, which fine-tuning has always used)."""
        return {"stem": r"^(?!blocks\.|norm_sp|norm_se|head)",
                "blocks": r"^blocks\.(\d+)",
                "head": r"^(?:norm_sp|norm_se|head)"}

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each block in the backward pass instead of storing its activations."""
        self.grad_checkpointing = bool(enable)


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: S2Former
                         ) -> dict[str, torch.Tensor]:
    """Drop pretraining-only keys (decoders of the masked-reconstruction wrapper)."""
    out = {}
    for k, v in state_dict.items():
        if k.startswith("encoder."):
            k = k[len("encoder."):]
        elif k.startswith(("decoder", "dec_")):
            continue
        out[k] = v
    return out


def _create_s2former(variant: str, pretrained: bool, defaults: dict[str, Any],
                     **kwargs: Any) -> S2Former:
    kwargs = {**defaults, **kwargs}  # the caller's kwargs override the builder's (timm)
    from hsizoo.models._factory import list_pretrained

    hint = f". Weights exist for: {', '.join(list_pretrained(variant + '*')) or 'none yet'}."
    return build_hsi_model(S2Former, variant, pretrained, hint, **kwargs)


def _cfg(patch_size: int = 9, **kwargs: Any) -> Any:
    return model_cfg(patch_size, first_conv="pixel_embed", **kwargs)


# Published checkpoints: each is a folder hsizoo/weights/<arch>.<tag>/ (package data, see
# hsizoo/hub/shipped.py) whose content is its Hub repository, trained by `hsizoo pretrain` (the
# card records the command, data, steps and loss curve). The first tag of an architecture is its
# default for pretrained=True.
# The revision is the commit `hsizoo push --record-revision` recorded at upload
# (hsizoo/weights/revisions.json; None until uploaded): never a branch, which can move.
def _in_domain_cfg(name: str, patch_size: int, sha256: str) -> dict[str, Any]:
    """A checkpoint pretrained on the real Indian Pines pixels (its folder and Hub repo: name)."""
    return _cfg(patch_size=patch_size, hf_hub_id=f"hsizoo/{name}",
                hf_hub_revision=published_revision(f"hsizoo/{name}"),
                sensor="aviris_indian_pines", sha256=sha256,
                pretraining="masked reconstruction + FDC + view agreement on the real "
                            "Indian Pines pixels (in-domain)")


default_cfgs = generate_default_cfgs({
    "s2former_test.untrained": _cfg(patch_size=5),
    "s2former_tiny.ssl_simulated": _cfg(
        patch_size=7, hf_hub_id="hsizoo/s2former_tiny.ssl_simulated",
        hf_hub_revision=published_revision("hsizoo/s2former_tiny.ssl_simulated"),
        sha256="d097a30f993e95feba1ae73e1b39f780e2e209c6e0b7e8e7810b1484e928b34e",
        pretraining="masked reconstruction + FDC + view agreement on simulated scenes of six "
                    "sensors (no AVIRIS): sensor-agnostic"),
    "s2former_tiny.ssl_indianpines": _in_domain_cfg(
        "s2former_tiny.ssl_indianpines", 7,
        "db1ed5ed4ed4ae25edd4ab8d7f5452bbc86221b27aa7a0d12dffae046a833d9e"),
    "s2former_tiny.untrained": _cfg(patch_size=7),
    "s2former_small.ssl_indianpines": _in_domain_cfg(
        "s2former_small.ssl_indianpines", 9,
        "ae28bb9a28123b39d3947fc9dafe1d60357beff415c9e53d7c40ce3bc223c2d5"),
    "s2former_small.untrained": _cfg(),
    "s2former_base.ssl_indianpines": _in_domain_cfg(
        "s2former_base.ssl_indianpines", 9,
        "a56358e9e50e74c9d216737612f452844980202902adac1b52861e6f26e51429"),
    "s2former_base.untrained": _cfg(),
})


@register_model
def s2former_test(pretrained: bool = False, **kwargs: Any) -> S2Former:
    """Tiny S2Former for fast tests (D=16, 2 blocks, 5 x 5 patches).

    Two blocks, not one, so that ``features_only=True`` has timm's minimum of three levels
    (the stem and two blocks); no weights are published for it.
    """
    cfg = dict(patch_size=5, embed_dim=16, depth=2, num_heads=2, group_size=16, center_size=3)
    return _create_s2former("s2former_test", pretrained, cfg, **kwargs)


@register_model
def s2former_tiny(pretrained: bool = False, **kwargs: Any) -> S2Former:
    """S2Former-Tiny: D=48, 2 blocks, 3 heads, 7 x 7 patches."""
    cfg = dict(patch_size=7, embed_dim=48, depth=2, num_heads=3, group_size=10, center_size=3)
    return _create_s2former("s2former_tiny", pretrained, cfg, **kwargs)


@register_model
def s2former_small(pretrained: bool = False, **kwargs: Any) -> S2Former:
    """S2Former-Small: D=64, 4 blocks, 4 heads, 9 x 9 patches."""
    cfg = dict(patch_size=9, embed_dim=64, depth=4, num_heads=4, group_size=10, center_size=3)
    return _create_s2former("s2former_small", pretrained, cfg, **kwargs)


@register_model
def s2former_base(pretrained: bool = False, **kwargs: Any) -> S2Former:
    """S2Former-Base: D=128, 6 blocks, 4 heads, 9 x 9 patches."""
    cfg = dict(patch_size=9, embed_dim=128, depth=6, num_heads=4, group_size=8, center_size=3)
    return _create_s2former("s2former_base", pretrained, cfg, **kwargs)
