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

Input is ``x`` of shape (B, bands, P, P) in the sensor's band order, standardised per band
(:func:`hsizoo.spectral.grid.band_stats`), plus the band centre wavelengths.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.utils.checkpoint
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange
from timm.layers import DropPath, Mlp, trunc_normal_
from timm.models import generate_default_cfgs, register_model
from timm.models._features import feature_take_indices

from hsizoo.spectral.grid import CANONICAL_GRID, make_grid, resolve_wavelengths
from hsizoo.models._base import SpectralModelMixin, build_hsi_model
from hsizoo.hub.cfg import hsi_cfg

__all__ = ["S2Former"]


class Attention(nn.Module):
    """Multi-head attention for self- or cross-attention, with an optional key padding mask."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, attn_drop: float = 0.0,
                 proj_drop: float = 0.0) -> None:
        super().__init__()
        assert dim % num_heads == 0, f"dim {dim} must be divisible by num_heads {num_heads}"
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, 2 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.attn_drop = attn_drop
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                key_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, N, D) attends to context (B, M, D) (itself if None); key_mask (B, M) True = keep."""
        context = x if context is None else context
        q = rearrange(self.q(x), "b n (h d) -> b h n d", h=self.num_heads)
        k, v = rearrange(self.kv(context), "b m (two h d) -> two b h m d", two=2, h=self.num_heads)
        mask = None if key_mask is None else rearrange(key_mask, "b m -> b 1 1 m")
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.attn_drop if self.training else 0.0)
        return self.proj_drop(self.proj(rearrange(out, "b h n d -> b n (h d)")))


class DualBlock(nn.Module):
    """One S2Former block: per-branch self-attention, bidirectional cross-attention, per-branch MLP."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 2.0, qkv_bias: bool = True,
                 drop: float = 0.0, attn_drop: float = 0.0, drop_path: float = 0.0) -> None:
        super().__init__()
        norm = lambda: nn.LayerNorm(dim, eps=1e-6)  # noqa: E731
        hidden = int(dim * mlp_ratio)
        self.norm_sp, self.attn_sp = norm(), Attention(dim, num_heads, qkv_bias, attn_drop, drop)
        self.norm_se, self.attn_se = norm(), Attention(dim, num_heads, qkv_bias, attn_drop, drop)
        # Bidirectional cross-attention (paper: "each branch guides the other").
        self.norm_sp_q, self.norm_se_kv = norm(), norm()
        self.cross_sp = Attention(dim, num_heads, qkv_bias, attn_drop, drop)  # spatial <- spectral
        self.norm_se_q, self.norm_sp_kv = norm(), norm()
        self.cross_se = Attention(dim, num_heads, qkv_bias, attn_drop, drop)  # spectral <- spatial
        self.norm_sp2, self.mlp_sp = norm(), Mlp(dim, hidden, act_layer=nn.GELU, drop=drop)
        self.norm_se2, self.mlp_se = norm(), Mlp(dim, hidden, act_layer=nn.GELU, drop=drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, sp: torch.Tensor, se: torch.Tensor,
                se_keep: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        dp = self.drop_path
        sp = sp + dp(self.attn_sp(self.norm_sp(sp)))
        se = se + dp(self.attn_se(self.norm_se(se), key_mask=se_keep))
        # Both directions read the states before either is updated, so neither branch leads.
        sp_new = sp + dp(self.cross_sp(self.norm_sp_q(sp), self.norm_se_kv(se), key_mask=se_keep))
        se = se + dp(self.cross_se(self.norm_se_q(se), self.norm_sp_kv(sp)))
        sp = sp_new + dp(self.mlp_sp(self.norm_sp2(sp_new)))
        se = se + dp(self.mlp_se(self.norm_se2(se)))
        return sp, se


def sinusoidal_encoding(positions: torch.Tensor, dim: int, scale: float = 10000.0) -> torch.Tensor:
    """Transformer sine/cosine encoding of real-valued positions (N,) -> (N, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(scale) * torch.arange(half, dtype=torch.float64) / half)
    ang = positions.to(torch.float64)[:, None] * freqs[None]
    enc = torch.cat([ang.sin(), ang.cos()], dim=1)
    if dim % 2:
        enc = F.pad(enc, (0, 1))
    return enc.float()


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
        in_chans: Accepted for timm compatibility and ignored: wavelengths define the bands.
    """

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
        in_chans: int | None = None,
    ) -> None:
        super().__init__()
        if patch_size % 2 == 0 or center_size % 2 == 0 or center_size > patch_size:
            raise ValueError(f"patch_size ({patch_size}) and center_size ({center_size}) must be "
                             "odd, with center_size <= patch_size, so that a centre pixel exists.")
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
        self.default_wavelengths = (
            None if wavelengths is None and sensor is None
            else resolve_wavelengths(wavelengths, sensor)
        )
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

        dpr = [float(v) for v in torch.linspace(0, drop_path_rate, depth)]
        self.blocks = nn.ModuleList([
            DualBlock(embed_dim, num_heads, mlp_ratio, qkv_bias, drop_rate, attn_drop_rate, dpr[i])
            for i in range(depth)
        ])
        # timm's per-block features (features_only=True, forward_intermediates): the spatial
        # tokens of each block as a (D, P, P) map; patches are not downsampled (reduction 1).
        self.feature_info = [dict(module=f"blocks.{i}", num_chs=embed_dim, reduction=1)
                             for i in range(depth)]
        self.norm_sp = nn.LayerNorm(embed_dim, eps=1e-6)
        self.norm_se = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        self._resampler_cache: dict[tuple[Any, ...], tuple[torch.Tensor, torch.Tensor]] = {}
        self.apply(self._init_weights)
        trunc_normal_(self.pos_embed, std=0.02)
        trunc_normal_(self.mask_token_sp, std=0.02)
        trunc_normal_(self.mask_token_se, std=0.02)

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
        pad = self.num_groups * self.group_size - present.numel()
        return F.pad(present, (0, pad)).view(self.num_groups, self.group_size).any(1)

    # ------------------------------------------------------------------ embedding
    def embed_spatial(self, xc: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Canonical patch (B, G, P, P) -> spatial tokens (B, P*P, D), positions included."""
        tok = self.pixel_embed(rearrange(xc, "b g h w -> b (h w) g"))
        tok = tok + self.presence_embed(present.to(tok.dtype))
        return tok + self.pos_embed

    def embed_spectral(self, xc: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Canonical patch (B, G, P, P) -> spectral group tokens (B, num_groups, D)."""
        P, c = self.patch_size, self.center_size
        o = (P - c) // 2
        centre = xc[:, :, o:o + c, o:o + c]
        pad = self.num_groups * self.group_size - xc.shape[1]
        centre = F.pad(centre, (0, 0, 0, 0, 0, pad))
        vals = rearrange(centre, "b (n s) h w -> b n (s h w)", s=self.group_size)
        pres = F.pad(present, (0, pad)).to(vals.dtype).view(1, self.num_groups, self.group_size)
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
        if spatial_mask is not None:
            sp = torch.where(spatial_mask[..., None], self.mask_token_sp.to(sp.dtype), sp)
        if spectral_mask is not None:
            se = torch.where(spectral_mask[..., None], self.mask_token_se.to(se.dtype), se)
        return self.encode(sp, se, gp)

    def _embed(self, x: torch.Tensor, wavelengths: Sequence[float] | None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Patches -> spatial tokens, spectral tokens and group presence, before the blocks."""
        if x.ndim != 4 or x.shape[-1] != self.patch_size or x.shape[-2] != self.patch_size:
            raise ValueError(f"Expected patches (B, bands, {self.patch_size}, {self.patch_size}); "
                             f"got {tuple(x.shape)}.")
        xc, present = self.canonicalize(x, wavelengths)
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
        """Per-block features, timm's ``forward_intermediates`` convention (as in its ViT).

        Args:
            x: (B, bands, P, P) standardised patches.
            wavelengths: Band centres in nm; the model's default if None.
            indices: Blocks to take: the last n if an int, these if a sequence (negative from
                the end), all if None.
            norm: Apply the final norms to the intermediates.
            stop_early: Stop after the last block taken (then the final features are not
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
        take, max_index = feature_take_indices(len(self.blocks), indices)
        sp, se, gp = self._embed(x, wavelengths)
        keep = gp.view(1, -1).expand(se.shape[0], -1)
        blocks = self.blocks[:max_index + 1] if stop_early else self.blocks
        inter: list[Any] = []
        for i, blk in enumerate(blocks):
            sp, se = self._run_block(blk, sp, se, keep)
            if i in take:
                a, b = (self.norm_sp(sp), self.norm_se(se)) if norm else (sp, se)
                if output_fmt == "NCHW":
                    a = rearrange(a, "b (h w) d -> b d h w", h=self.patch_size)
                inter.append((a, self._fill_missing_groups(b, gp)) if return_spectral_tokens else a)
        if intermediates_only:
            return inter
        final = torch.cat([self.norm_sp(sp), self._fill_missing_groups(self.norm_se(se), gp)], 1)
        return final, inter

    def prune_intermediate_layers(self, indices: int | Sequence[int] = 1, prune_norm: bool = False,
                                  prune_head: bool = True) -> list[int]:
        """Drop the blocks after the last one in ``indices`` (and the norms, the head).

        Returns:
            The absolute indices kept.
        """
        take, max_index = feature_take_indices(len(self.blocks), indices)
        self.blocks = self.blocks[:max_index + 1]
        if prune_norm:
            self.norm_sp, self.norm_se = nn.Identity(), nn.Identity()
        if prune_head:
            self.reset_classifier(0)
        return take

    def forward_features(self, x: torch.Tensor, wavelengths: Sequence[float] | None = None
                         ) -> torch.Tensor:
        """Tokens (B, P*P + num_groups, D): spatial tokens, then spectral tokens.

        Tokens of groups the sensor does not cover are replaced by the mean of the covered ones,
        so that any pooling over the spectral tokens sees only real data.
        """
        sp, se, gp = self.forward_tokens(x, wavelengths)
        return torch.cat([sp, self._fill_missing_groups(se, gp)], dim=1)

    @staticmethod
    def _fill_missing_groups(se: torch.Tensor, gp: torch.Tensor) -> torch.Tensor:
        if bool(gp.all()):
            return se
        mean = se[:, gp].mean(1, keepdim=True)
        return torch.where(gp.view(1, -1, 1), se, mean)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool tokens from forward_features: centre spatial token + mean spectral token."""
        n_sp = self.patch_size * self.patch_size
        feats = torch.cat([x[:, n_sp // 2], x[:, n_sp:].mean(1)], dim=-1)
        feats = self.head_drop(feats)
        return feats if pre_logits else self.head(feats)

    def forward(self, x: torch.Tensor, wavelengths: Sequence[float] | None = None) -> torch.Tensor:
        """Logits (B, num_classes), or pooled features (B, num_features) when num_classes=0."""
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


# Published checkpoints: each is a folder hsizoo/weights/<arch>.<tag>/ (package data, see
# hsizoo/hub/shipped.py) whose content is its Hub repository, trained by `hsizoo pretrain` (the
# card records the command, data, steps and loss curve). The first tag of an architecture is its
# default for pretrained=True.
def _in_domain_cfg(name: str, patch_size: int, sha256: str) -> dict[str, Any]:
    """A checkpoint pretrained on the real Indian Pines pixels (its folder and Hub repo: name)."""
    return hsi_cfg(patch_size=patch_size, hf_hub_id=f"hsizoo/{name}", hf_hub_revision="main",
                   sensor="aviris_indian_pines", sha256=sha256,
                   pretraining="masked reconstruction + FDC + view agreement on the real "
                               "Indian Pines pixels (in-domain)")


default_cfgs = generate_default_cfgs({
    "s2former_test.untrained": hsi_cfg(patch_size=5),
    "s2former_tiny.ssl_simulated": hsi_cfg(
        patch_size=7, hf_hub_id="hsizoo/s2former_tiny.ssl_simulated",
        hf_hub_revision="main",
        sha256="d097a30f993e95feba1ae73e1b39f780e2e209c6e0b7e8e7810b1484e928b34e",
        pretraining="masked reconstruction + FDC + view agreement on simulated scenes of six "
                    "sensors (no AVIRIS): sensor-agnostic"),
    "s2former_tiny.ssl_indianpines": _in_domain_cfg(
        "s2former_tiny.ssl_indianpines", 7,
        "db1ed5ed4ed4ae25edd4ab8d7f5452bbc86221b27aa7a0d12dffae046a833d9e"),
    "s2former_tiny.untrained": hsi_cfg(patch_size=7),
    "s2former_small.ssl_indianpines": _in_domain_cfg(
        "s2former_small.ssl_indianpines", 9,
        "ae28bb9a28123b39d3947fc9dafe1d60357beff415c9e53d7c40ce3bc223c2d5"),
    "s2former_small.untrained": hsi_cfg(),
    "s2former_base.ssl_indianpines": _in_domain_cfg(
        "s2former_base.ssl_indianpines", 9,
        "a56358e9e50e74c9d216737612f452844980202902adac1b52861e6f26e51429"),
    "s2former_base.untrained": hsi_cfg(),
})


@register_model
def s2former_test(pretrained: bool = False, **kwargs: Any) -> S2Former:
    """Tiny S2Former for fast tests (D=16, 1 block, 5 x 5 patches)."""
    cfg = dict(patch_size=5, embed_dim=16, depth=1, num_heads=2, group_size=16, center_size=3)
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
