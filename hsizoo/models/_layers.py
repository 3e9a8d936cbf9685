"""S2Former's layers: attention with a key mask, the dual (spatial/spectral) block, and the
sinusoidal wavelength encoding (see :mod:`hsizoo.models.s2former`).

Written with reshapes and permutes only (no einops), so that FX symbolic tracing, TorchScript-free
``torch.compile``/``torch.export`` and the ONNX exporter see plain tensor ops.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import DropPath, Mlp

__all__ = ["Attention", "DualBlock", "sinusoidal_encoding"]


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
        q = self.q(x).unflatten(-1, (self.num_heads, -1)).transpose(1, 2)  # (B, h, N, d)
        k, v = self.kv(context).unflatten(-1, (2, self.num_heads, -1)).permute(2, 0, 3, 1, 4)
        mask = None if key_mask is None else key_mask[:, None, None, :]
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.attn_drop if self.training else 0.0)
        return self.proj_drop(self.proj(out.transpose(1, 2).flatten(2)))


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
