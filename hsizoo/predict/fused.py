"""S2Former's blocks rewritten for whole-scene inference: fused projections, no wasted tokens.

:class:`hsizoo.predict.engine.SharedPredictor` computes, for every pixel, the head's input: the
centre pixel's spatial token and the mean of the spectral tokens of the groups the sensor covers
(``S2Former.forward_head``). This module computes exactly that from the model's own weights, with
three kinds of savings that a model's ``forward`` cannot make (it must return every token and
keep shapes independent of the data; STYLE.md, habit 11):

* Fused projections. Each LayerNorm's scale and shift are folded into the linear maps that read
  it (``W (x_hat * g + b) + c = (W g) x_hat + (W b + c)``); self-attention's ``q`` and ``kv``
  become one ``qkv``.
* Cross-attention on the spectral side. When a sensor covers few spectral groups (ROSIS: 5),
  every projection the two cross-attentions would apply to the P x P spatial tokens is composed
  into maps of the few spectral tokens (:func:`_cross_fold`): the spatial tokens are normalised
  once and multiplied by folded keys and queries, with no projection of their own. Otherwise
  the two cross-attention inputs that normalise the same tokens share one normalisation and one
  matrix product (:func:`_cross_plain`).
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


def _cross_plain(blk: nn.Module) -> dict[str, Linear]:
    """The cross-attentions of a DualBlock with their LayerNorms folded: the two inputs that
    normalise the same tokens share one normalisation and one matrix product (the spatial tokens'
    queries of ``cross_sp`` with their keys and values of ``cross_se``, and the reverse for the
    spectral tokens)."""
    D = blk.norm_sp.normalized_shape[0]
    q_rows, kv_rows = slice(0, D), slice(0, 2 * D)
    return dict(cross_sp_in=_cat(_fold(blk.norm_sp_q, blk.cross_sp.q, q_rows),
                                 _fold(blk.norm_sp_kv, blk.cross_se.kv, kv_rows)),
                cross_se_in=_cat(_fold(blk.norm_se_kv, blk.cross_sp.kv, kv_rows),
                                 _fold(blk.norm_se_q, blk.cross_se.q, q_rows)),
                proj_cross_sp=_plain(blk.cross_sp.proj), proj_cross_se=_plain(blk.cross_se.proj))


def _cross_fold(blk: nn.Module) -> dict[str, Linear]:
    """The cross-attentions of a DualBlock, folded onto the spectral tokens.

    A sensor covers G spectral groups (ROSIS: 5), so each head has G spectral tokens against
    P * P spatial ones (49), and G * heads < D. Every map that would run on the spatial tokens is
    therefore moved onto the spectral side, where it runs on G tokens instead of P * P:

    * cross_sp (spatial queries, spectral keys): ``q_n . k_m = x_n . (Wq_h^T k_m) + bq_h . k_m``,
      so each spectral token carries, per head, a folded key ``scale Wq_h^T k_m`` (D) and a
      score offset ``scale bq_h . k_m``; its value goes through the head's columns of the
      output projection, ``Wp_h v_m``, plus ``bp / heads`` (each head's weights sum to 1).
    * cross_se (spectral queries, spatial keys): ``q_m . k_n = (scale Wk_h^T q_m) . x_n +
      const``, the constant (from k's bias) dropping out of the softmax; since the weights sum to
      1, the values' and the projection's maps apply to the weighted mean of the normalised
      spatial tokens x_n: ``sum_h (Wp_h Wv_h) xbar_h + Wp bv + bp``.

    Every map is composed from the LayerNorm-folded weights (:func:`_fold`), in float32.

    Returns:
        ``cross_fold``: x_se -> [folded keys (heads x D) | folded queries (heads x D) | projected
        values (heads x D) | score offsets (heads)], and ``cross_se_out``: (heads x D) -> D.
    """
    D = blk.norm_sp.normalized_shape[0]
    h = blk.cross_sp.num_heads
    scale = (D // h) ** -0.5
    wq, bq = _fold(blk.norm_sp_q, blk.cross_sp.q)                   # spatial queries
    wk, bk = _fold(blk.norm_se_kv, blk.cross_sp.kv, slice(0, D))     # spectral keys
    wv, bv = _fold(blk.norm_se_kv, blk.cross_sp.kv, slice(D, 2 * D))  # spectral values
    wp, bp = blk.cross_sp.proj.weight, blk.cross_sp.proj.bias
    wq2, bq2 = _fold(blk.norm_se_q, blk.cross_se.q)                  # spectral queries
    wk2, _ = _fold(blk.norm_sp_kv, blk.cross_se.kv, slice(0, D))     # spatial keys
    wv2, bv2 = _fold(blk.norm_sp_kv, blk.cross_se.kv, slice(D, 2 * D))  # spatial values
    wp2, bp2 = blk.cross_se.proj.weight, blk.cross_se.proj.bias
    heads = lambda w: w.unflatten(0, (h, -1))  # noqa: E731  (h*d, ...) -> (h, d, ...)
    wq, bq, wk, bk, wv, bv = map(heads, (wq, bq, wk, bk, wv, bv))
    wq2, bq2, wk2, wv2 = map(heads, (wq2, bq2, wk2, wv2))
    wp_h, wp2_h = wp.unflatten(1, (h, -1)), wp2.unflatten(1, (h, -1))  # (D, h, d)
    weight = torch.cat([
        scale * torch.einsum("hei,hej->hij", wq, wk).flatten(0, 1),    # folded keys
        scale * torch.einsum("hei,hej->hij", wk2, wq2).flatten(0, 1),  # folded queries
        torch.einsum("ihe,hej->hij", wp_h, wv).flatten(0, 1),          # projected values
        scale * torch.einsum("he,hej->hj", bq, wk)])                   # score offsets
    bias = torch.cat([
        scale * torch.einsum("he,hei->hi", bk, wq).flatten(),
        scale * torch.einsum("he,hei->hi", bq2, wk2).flatten(),
        (torch.einsum("ihe,he->hi", wp_h, bv) + bp / h).flatten(),
        scale * torch.einsum("he,he->h", bk, bq)])
    out_w = torch.einsum("ihe,hej->ihj", wp2_h, wv2).flatten(1)
    out_b = wp2 @ bv2.flatten() + bp2
    return dict(cross_fold=(weight, bias), cross_se_out=(out_w, out_b))


@dataclass
class _Block:
    """One DualBlock's folded weights (each a (weight, bias) pair)."""

    eps: float
    heads: int
    qkv_sp: Linear     # norm_sp -> attn_sp.q | attn_sp.kv
    proj_sp: Linear
    qkv_se: Linear     # norm_se -> attn_se.q | attn_se.kv
    proj_se: Linear
    cross: dict[str, Linear]  # the cross-attentions: _cross_fold's maps, or _cross_plain's
    fc1_sp: Linear     # norm_sp2 -> mlp_sp.fc1
    fc2_sp: Linear
    act_sp: nn.Module
    fc1_se: Linear
    fc2_se: Linear
    act_se: nn.Module

    @classmethod
    def from_block(cls, blk: nn.Module, groups: int) -> "_Block":
        """Fold ``blk``'s weights for data covering ``groups`` spectral groups."""
        D, h = blk.norm_sp.normalized_shape[0], blk.cross_sp.num_heads
        # Folding onto the spectral side pays when the spectral tokens of all heads are few
        # against D: ROSIS (5 groups x 3 heads, D = 48) ran 1.11x faster folded, Indian Pines
        # (20 x 3) 1.2x slower (s2former_tiny, one core, CPU time).
        cross = _cross_fold(blk) if 2 * h * groups <= D else _cross_plain(blk)
        return cls(
            eps=blk.norm_sp.eps, heads=blk.attn_sp.num_heads,
            qkv_sp=_cat(_fold(blk.norm_sp, blk.attn_sp.q), _fold(blk.norm_sp, blk.attn_sp.kv)),
            proj_sp=_plain(blk.attn_sp.proj),
            qkv_se=_cat(_fold(blk.norm_se, blk.attn_se.q), _fold(blk.norm_se, blk.attn_se.kv)),
            proj_se=_plain(blk.attn_se.proj),
            cross=cross,
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

    def _cross(self, sp: torch.Tensor, se: torch.Tensor, centre: int | None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Both cross-attentions, reading the states before either is updated."""
        if "cross_fold" in self.cross:
            return self._cross_folded(sp, se, centre)
        D = sp.shape[-1]
        hs = self._norm(sp)
        ye = F.linear(self._norm(se), *self.cross["cross_se_in"])
        k_se, v_se, q_se = ye.split(D, dim=-1)
        if centre is None:
            ys = F.linear(hs, *self.cross["cross_sp_in"])
            q_sp, k_sp, v_sp = ys.split(D, dim=-1)
            sp_res = sp
        else:
            w, b = self.cross["cross_sp_in"]
            q_sp = F.linear(hs[:, centre:centre + 1], w[:D], b[:D])
            k_sp, v_sp = F.linear(hs, w[D:], b[D:]).split(D, dim=-1)
            sp_res = sp[:, centre:centre + 1]
        sp_new = sp_res + F.linear(self._attend(q_sp, k_se, v_se), *self.cross["proj_cross_sp"])
        se = se + F.linear(self._attend(q_se, k_sp, v_sp), *self.cross["proj_cross_se"])
        return sp_new, se

    def _cross_folded(self, sp: torch.Tensor, se: torch.Tensor, centre: int | None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """Both cross-attentions, with the projections of the spatial tokens folded into the
        few spectral tokens' (see :func:`_cross_fold`): the spatial tokens are only normalised
        and multiplied by the folded keys and queries; no projection of theirs is computed."""
        B, G, D = se.shape
        h = self.heads
        hs = self._norm(sp)
        y = F.linear(self._norm(se), *self.cross["cross_fold"])  # (B, G, 3hD + h)
        # (B, 2hG, D): cross_sp's folded keys, then cross_se's folded queries, head-major.
        kq = y[..., :2 * h * D].unflatten(-1, (2 * h, D)).transpose(1, 2).flatten(1, 2)
        vt = y[..., 2 * h * D:3 * h * D].unflatten(-1, (h, D)).transpose(1, 2).flatten(1, 2)
        c = y[..., 3 * h * D:].transpose(1, 2).reshape(B, h * G, 1)
        s = torch.bmm(kq, hs.transpose(1, 2))  # (B, 2hG, N): every score of both directions
        s_sp, s_se = s[:, :h * G], s[:, h * G:]
        sp_res = sp
        if centre is not None:  # the head reads the centre token only
            s_sp, sp_res = s_sp[..., centre:centre + 1], sp[:, centre:centre + 1]
        # cross_sp: each spatial token's softmax over the spectral keys of each head (dim 2;
        # the spatial tokens run along the contiguous last dimension, which vectorises).
        a = (s_sp + c).unflatten(1, (h, G)).softmax(dim=2).flatten(1, 2)
        sp_new = torch.baddbmm(sp_res, a.transpose(1, 2), vt)
        # cross_se: each spectral query's softmax over the spatial keys; the values' and the
        # projection's maps apply to the weighted mean of the normalised spatial tokens.
        xbar = torch.bmm(s_se.softmax(dim=-1), hs).unflatten(1, (h, G))  # (B, h, G, D)
        se = se + F.linear(xbar.transpose(1, 2).flatten(2), *self.cross["cross_se_out"])
        return sp_new, se

    @staticmethod
    def _mlp(x: torch.Tensor, norm: Any, fc1: Linear, act: nn.Module, fc2: Linear
             ) -> torch.Tensor:
        return x + F.linear(act(F.linear(norm(x), *fc1)), *fc2)

    def __call__(self, sp: torch.Tensor, se: torch.Tensor, centre: int | None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """DualBlock.forward without a key mask (only covered groups are given).

        With ``centre`` set (the last block), the spatial output is that token only, (B, 1, D).
        """
        sp = self._self(sp, self.qkv_sp, self.proj_sp)
        se = self._self(se, self.qkv_se, self.proj_se)
        # Both cross-attentions read the states before either is updated (as DualBlock does).
        sp_new, se = self._cross(sp, se, centre)
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
        return cls(model, [_Block.from_block(b, groups.numel()) for b in model.blocks], groups)

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
