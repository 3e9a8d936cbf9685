"""S2Former's blocks rewritten for whole-scene inference: fused projections, no wasted tokens.

:class:`hsizoo.predict.engine.SharedPredictor` computes, for every pixel, the head's input: the
centre pixel's spatial token and the mean of the spectral tokens of the groups the sensor covers
(``S2Former.forward_head``). This module computes exactly that from the model's own weights, with
three kinds of savings that a model's ``forward`` cannot make (it must return every token and
keep shapes independent of the data; STYLE.md, habit 11):

* Fused projections. Each LayerNorm's scale and shift are folded into the linear maps that read
  it (``W (x_hat * g + b) + c = (W g) x_hat + (W b + c)``); the two cross-attention inputs that
  normalise the same tokens share one normalisation and one matrix product (the spatial tokens'
  queries of ``cross_sp`` with their keys and values of ``cross_se``, and the reverse for the
  spectral tokens); self-attention's ``q`` and ``kv`` become one ``qkv``.
* Only covered spectral groups. A group the sensor does not cover is never a key (the attention
  mask) and its token is replaced by the mean of the covered ones before pooling, so it changes
  nothing the head reads: its token is not computed at all (ROSIS covers 5 of 22 groups of
  ``s2former_tiny``). No attention mask is needed then.
* Only the centre pixel in the last block. The head reads the centre spatial token only; in the
  last block every spatial token is still needed as key and value of the spectral branch's
  cross-attention, but the spatial branch's cross-attention query and MLP run for the centre
  token only.

The weights are folded from the model on every :meth:`FusedS2Former.from_model` call (a few
small matrix products), so a model being trained is always read as it is now; the checkpoint
format and the model's modules are untouched. The result equals ``model.forward_head(
model.forward_features(x), pre_logits=True)`` to float rounding (tests/predict check 1e-5).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["FusedS2Former", "fusable"]

Linear = tuple[torch.Tensor, "torch.Tensor | None"]


def fusable(model: nn.Module) -> bool:
    """Whether ``model`` is an S2Former whose blocks this module knows how to fuse."""
    from hsizoo.models._layers import DualBlock
    from hsizoo.models.s2former import S2Former

    if not isinstance(model, S2Former) or len(model.blocks) == 0:
        return False
    for blk in model.blocks:
        if type(blk) is not DualBlock:
            return False
        for mlp in (blk.mlp_sp, blk.mlp_se):
            # timm's Mlp with an identity norm between fc1 and fc2 (the default).
            if not isinstance(getattr(mlp, "norm", None), nn.Identity):
                return False
    return True


def _fold(norm: nn.LayerNorm, lin: nn.Linear, rows: slice | None = None) -> Linear:
    """A linear map reading ``norm(x)``, rewritten to read the unscaled normalised x."""
    w = lin.weight if rows is None else lin.weight[rows]
    c = lin.bias if rows is None or lin.bias is None else lin.bias[rows]
    weight = w * norm.weight[None, :]
    bias = w @ norm.bias
    return weight, bias if c is None else bias + c


def _cat(*lins: Linear) -> Linear:
    return torch.cat([w for w, _ in lins]), torch.cat([b for _, b in lins])


def _plain(lin: nn.Linear) -> Linear:
    return lin.weight, lin.bias


@dataclass
class _Block:
    """One DualBlock's folded weights (each a (weight, bias) pair)."""

    eps: float
    heads: int
    qkv_sp: Linear     # norm_sp -> attn_sp.q | attn_sp.kv
    proj_sp: Linear
    qkv_se: Linear     # norm_se -> attn_se.q | attn_se.kv
    proj_se: Linear
    cross_sp_in: Linear  # spatial tokens: cross_sp queries | cross_se keys, values
    cross_se_in: Linear  # spectral tokens: cross_sp keys, values | cross_se queries
    proj_cross_sp: Linear
    proj_cross_se: Linear
    fc1_sp: Linear     # norm_sp2 -> mlp_sp.fc1
    fc2_sp: Linear
    act_sp: nn.Module
    fc1_se: Linear
    fc2_se: Linear
    act_se: nn.Module

    @classmethod
    def from_block(cls, blk: nn.Module) -> "_Block":
        D = blk.norm_sp.normalized_shape[0]
        q_rows, kv_rows = slice(0, D), slice(0, 2 * D)
        return cls(
            eps=blk.norm_sp.eps, heads=blk.attn_sp.num_heads,
            qkv_sp=_cat(_fold(blk.norm_sp, blk.attn_sp.q), _fold(blk.norm_sp, blk.attn_sp.kv)),
            proj_sp=_plain(blk.attn_sp.proj),
            qkv_se=_cat(_fold(blk.norm_se, blk.attn_se.q), _fold(blk.norm_se, blk.attn_se.kv)),
            proj_se=_plain(blk.attn_se.proj),
            cross_sp_in=_cat(_fold(blk.norm_sp_q, blk.cross_sp.q, q_rows),
                             _fold(blk.norm_sp_kv, blk.cross_se.kv, kv_rows)),
            cross_se_in=_cat(_fold(blk.norm_se_kv, blk.cross_sp.kv, kv_rows),
                             _fold(blk.norm_se_q, blk.cross_se.q, q_rows)),
            proj_cross_sp=_plain(blk.cross_sp.proj), proj_cross_se=_plain(blk.cross_se.proj),
            fc1_sp=_fold(blk.norm_sp2, blk.mlp_sp.fc1), fc2_sp=_plain(blk.mlp_sp.fc2),
            act_sp=blk.mlp_sp.act,
            fc1_se=_fold(blk.norm_se2, blk.mlp_se.fc1), fc2_se=_plain(blk.mlp_se.fc2),
            act_se=blk.mlp_se.act)

    def _norm(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], None, None, self.eps)

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Multi-head attention of q (B, N, D) on k, v (B, M, D) (strided views are fine)."""
        h = self.heads
        q, k, v = (t.unflatten(-1, (h, -1)).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v)
        return out.transpose(1, 2).flatten(2)

    def _self(self, x: torch.Tensor, qkv: Linear, proj: Linear) -> torch.Tensor:
        y = F.linear(self._norm(x), *qkv)
        q, k, v = y.chunk(3, dim=-1)
        return x + F.linear(self._attend(q, k, v), *proj)

    @staticmethod
    def _mlp(x: torch.Tensor, norm: Any, fc1: Linear, act: nn.Module, fc2: Linear
             ) -> torch.Tensor:
        return x + F.linear(act(F.linear(norm(x), *fc1)), *fc2)

    def __call__(self, sp: torch.Tensor, se: torch.Tensor, centre: int | None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """DualBlock.forward without a key mask (only covered groups are given).

        With ``centre`` set (the last block), the spatial output is that token only, (B, 1, D).
        """
        D = sp.shape[-1]
        sp = self._self(sp, self.qkv_sp, self.proj_sp)
        se = self._self(se, self.qkv_se, self.proj_se)
        # Both cross-attentions read the states before either is updated (as DualBlock does).
        hs = self._norm(sp)
        ye = F.linear(self._norm(se), *self.cross_se_in)
        k_se, v_se, q_se = ye.split(D, dim=-1)
        if centre is None:
            ys = F.linear(hs, *self.cross_sp_in)
            q_sp, k_sp, v_sp = ys.split(D, dim=-1)
            sp_res = sp
        else:
            w, b = self.cross_sp_in
            q_sp = F.linear(hs[:, centre:centre + 1], w[:D], b[:D])
            k_sp, v_sp = F.linear(hs, w[D:], b[D:]).split(D, dim=-1)
            sp_res = sp[:, centre:centre + 1]
        sp_new = sp_res + F.linear(self._attend(q_sp, k_se, v_se), *self.proj_cross_sp)
        se = se + F.linear(self._attend(q_se, k_sp, v_sp), *self.proj_cross_se)
        sp = self._mlp(sp_new, self._norm, self.fc1_sp, self.act_sp, self.fc2_sp)
        se = self._mlp(se, self._norm, self.fc1_se, self.act_se, self.fc2_se)
        return sp, se


class FusedS2Former:
    """The pooled features of an S2Former (``forward_head(..., pre_logits=True)``'s input) from
    embedded tokens, computed the fused way (see the module docstring).

    Build it with :meth:`from_model` right before use: it holds views of, and products of, the
    model's current weights.
    """

    def __init__(self, model: nn.Module, blocks: list[_Block], groups: torch.Tensor) -> None:
        self.model = model
        self.blocks = blocks
        self.groups = groups
        self.centre = model.patch_size * model.patch_size // 2

    @classmethod
    @torch.inference_mode()
    def from_model(cls, model: nn.Module, present: torch.Tensor) -> "FusedS2Former | None":
        """Fold the model's weights for data whose canonical presence is ``present`` (G,).

        Returns:
            The fused encoder, or None when the model is not one this module can fuse or no
            spectral group is covered (then the caller uses the model's own blocks).
        """
        if not fusable(model):
            return None
        groups = torch.nonzero(model.group_presence(present)).flatten()
        if groups.numel() == 0:
            return None
        return cls(model, [_Block.from_block(b) for b in model.blocks], groups)

    def spectral_source(self, xc: torch.Tensor) -> torch.Tensor:
        """Canonical values of a padded window (G, Hp, Wp) -> (Hp, Wp, groups, s) of the covered
        groups only (grid points past the last one are 0, as in ``S2Former.embed_spectral``)."""
        m = self.model
        xc = F.pad(xc, (0, 0, 0, 0, 0, m._pad)).unflatten(0, (m.num_groups, m.group_size))
        return xc[self.groups].permute(2, 3, 0, 1).contiguous()

    def embed_spectral(self, source: torch.Tensor, present: torch.Tensor, rows: torch.Tensor,
                       cols: torch.Tensor) -> torch.Tensor:
        """Spectral tokens (N, groups, D) of the patches whose top-left corners are (rows, cols)
        in the padded window; ``S2Former.embed_spectral`` restricted to the covered groups."""
        m = self.model
        P, c, s = m.patch_size, m.center_size, m.group_size
        o = (P - c) // 2
        off = torch.arange(o, o + c, device=rows.device)
        vals = source[(rows[:, None] + off)[:, :, None], (cols[:, None] + off)[:, None, :]]
        # (N, c, c, groups, s) -> (N, groups, s * c * c) in the "s h w" order of group_embed
        vals = vals.permute(0, 3, 4, 1, 2).flatten(2)
        w, b = m.group_embed.weight, m.group_embed.bias
        # The presence part of group_embed's input and the wavelength encoding are the same for
        # every patch: one (groups, D) constant.
        pres = F.pad(present, (0, m._pad)).to(vals.dtype).view(m.num_groups, s)[self.groups]
        const = F.linear(pres, w[:, s * c * c:], b) + m.wl_embed[self.groups].to(vals.dtype)
        return F.linear(vals, w[:, :s * c * c]) + const

    def pooled(self, sp: torch.Tensor, se: torch.Tensor) -> torch.Tensor:
        """Spatial tokens (N, P*P, D) and covered spectral tokens (N, groups, D) -> (N, 2D): the
        normed centre spatial token and the mean normed spectral token."""
        m = self.model
        last = len(self.blocks) - 1
        for i, blk in enumerate(self.blocks):
            sp, se = blk(sp, se, self.centre if i == last else None)
        return torch.cat([m.norm_sp(sp[:, 0]), m.norm_se(se).mean(1)], dim=-1)
