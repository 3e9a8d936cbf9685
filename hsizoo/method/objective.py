"""The masked-reconstruction objective: S2Former plus light decoders, and its loss terms.

The spatial decoder reconstructs the masked pixels' canonical spectra, the spectral decoder the
masked groups' values over the c x c centre (DESIGN.md items 2 and 3). The loss is the
pixel-domain MSE on covered grid points of valid pixels, plus ``fdc_weight`` times the
frequency-domain constraint of :mod:`hsizoo.method.losses` (DESIGN.md item 5).

The view-agreement term (``contrast_weight`` > 0) is an addition to the paper's recipe, kept
because the representation probe (:mod:`hsizoo.method.probe`) shows that reconstruction alone
teaches features that barely separate classes: the pooled features of two augmented views of a
patch (the second centred up to ``view_offset`` pixels away) go through a small projector
(``decoder_proj``, dropped at export like the decoders) and a symmetric InfoNCE loss (SimCLR's
NT-Xent) pulls the pair together against the other patches of the batch.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange, repeat

from hsizoo.method import losses as L
from hsizoo.pretrain.config import PretrainConfig
from hsizoo.pretrain.data import SubBatch


class _Decoder(nn.Module):
    """Light decoder: project, a few pre-norm transformer layers, linear prediction per token."""

    def __init__(self, in_dim: int, dim: int, depth: int, num_heads: int, out_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(in_dim, dim)
        self.blocks = nn.ModuleList([
            nn.TransformerEncoderLayer(dim, num_heads, 2 * dim, dropout=0.0, activation="gelu",
                                       batch_first=True, norm_first=True)
            for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pred = nn.Linear(dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)
        for blk in self.blocks:
            x = blk(x)
        return self.pred(self.norm(x))


class MaskedS2Former(nn.Module):
    """S2Former encoder with light decoders for masked spatial/spectral reconstruction.

    Submodules are named ``encoder`` and ``decoder_*`` so that a state dict of this wrapper loads
    into a plain S2Former through :func:`hsizoo.models.s2former.checkpoint_filter_fn`.

    Args:
        encoder: An S2Former (``num_classes=0``).
        decoder_dim: Decoder width; default the encoder's.
        decoder_depth: Transformer layers per decoder.
        fdc_weight: Weight of the frequency-domain constraint (0 = off).
        fdc_hf_gain: High-frequency emphasis of the FDC.
        spectral_loss_weight: Weight of the masked-group loss.
        contrast_weight: Weight of the view-agreement (InfoNCE) term (0 = off).
        contrast_temperature: Its temperature.
        projector_dim: Output width of its projector.
    """

    def __init__(self, encoder: nn.Module, decoder_dim: int | None = None, decoder_depth: int = 1,
                 fdc_weight: float = 0.5, fdc_hf_gain: float = 1.0,
                 spectral_loss_weight: float = 1.0, contrast_weight: float = 0.0,
                 contrast_temperature: float = 0.2, projector_dim: int = 128) -> None:
        super().__init__()
        self.encoder = encoder
        D = int(encoder.embed_dim)
        dd = int(decoder_dim or D)
        heads = max(1, dd // 32) if dd % max(1, dd // 32) == 0 else 1
        G = int(encoder.grid_wavelengths.size)
        c = int(encoder.center_size)
        self.decoder_sp = _Decoder(D, dd, decoder_depth, heads, G)
        self.decoder_se = _Decoder(D, dd, decoder_depth, heads, encoder.group_size * c * c)
        self.fdc_weight = float(fdc_weight)
        self.fdc_hf_gain = float(fdc_hf_gain)
        self.spectral_loss_weight = float(spectral_loss_weight)
        self.contrast_weight = float(contrast_weight)
        self.contrast_temperature = float(contrast_temperature)
        if self.contrast_weight > 0:
            F_ = int(encoder.head_hidden_size)
            self.decoder_proj = nn.Sequential(nn.Linear(F_, 2 * F_), nn.GELU(),
                                              nn.Linear(2 * F_, int(projector_dim)))

    def pooled(self, xc: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """The encoder's pooled features (b, head_hidden_size) of canonical patches, unmasked."""
        enc = self.encoder
        sp = enc.embed_spatial(xc, present)
        se = enc.embed_spectral(xc, present)
        sp, se, gp = enc.encode(sp, se, enc.group_presence(present))
        # forward_head(..., pre_logits=True) with its centre pooling, from the tokens.
        return enc.head_drop(enc.pool_tokens(sp, se, gp))

    def _contrast(self, b: SubBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Symmetric InfoNCE between the two views, as (sum over pairs, number of pairs)."""
        if b.views is None:
            raise ValueError("contrast_weight > 0 needs sub-batches with views "
                             "(PretrainData.sample(..., view_offset=k)).")
        n = b.views.shape[1]
        z = self.pooled(b.views.flatten(0, 1), b.present)
        z = F.normalize(self.decoder_proj(z), dim=-1)
        za, zb = z[:n], z[n:]
        logits = za @ zb.T / self.contrast_temperature
        target = torch.arange(n, device=logits.device)
        loss = 0.5 * (F.cross_entropy(logits, target, reduction="sum")
                      + F.cross_entropy(logits.T, target, reduction="sum"))
        return loss, torch.tensor(float(n), device=loss.device)

    def reconstruct(self, b: SubBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Predicted spectra of every pixel token (b, P*P, G) and group values (b, n, s*c*c)."""
        enc = self.encoder
        G = b.xc.shape[1]
        # Masked groups are hidden from both branches (else the spatial tokens would leak them).
        hidden = repeat(b.spectral_mask, "b n -> b (n s)", s=enc.group_size)[:, :G]
        x_in = b.xc * (~hidden).to(b.xc.dtype)[..., None, None]
        sp = enc.embed_spatial(x_in, b.present)
        se = enc.embed_spectral(x_in, b.present)
        sp = torch.where(b.spatial_mask[..., None], enc.mask_token_sp.to(sp.dtype), sp)
        se = torch.where(b.spectral_mask[..., None], enc.mask_token_se.to(se.dtype), se)
        sp, se, _ = enc.encode(sp, se, enc.group_presence(b.present))
        return self.decoder_sp(sp), self.decoder_se(se)

    def _terms(self, b: SubBatch) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        enc = self.encoder
        pred_pix, pred_grp = self.reconstruct(b)
        P, c, s = enc.patch_size, enc.center_size, enc.group_size
        n = enc.num_groups
        target_pix = rearrange(b.xc, "b g h w -> b (h w) g")
        tok_valid = rearrange(b.valid, "b h w -> b (h w)") > 0.5
        rec_tok = b.spatial_mask & tok_valid  # (b, N): the pixels whose spectra are scored
        pres = b.present.to(b.xc.dtype)
        out = {"rec_spatial": L.masked_mse(pred_pix, target_pix, rec_tok[..., None] * pres)}

        o = (P - c) // 2
        pad = n * s - b.xc.shape[1]
        centre = F.pad(b.xc[:, :, o:o + c, o:o + c], (0, 0, 0, 0, 0, pad))
        target_grp = rearrange(centre, "b (n s) h w -> b n (s h w)", s=s)
        pres_pad = F.pad(pres, (0, pad)).view(1, n, s, 1, 1)
        cvalid = b.valid[:, o:o + c, o:o + c].reshape(-1, 1, 1, c, c)
        w_grp = b.spectral_mask.to(pres.dtype).view(-1, n, 1, 1, 1) * pres_pad * cvalid
        out["rec_spectral"] = L.masked_mse(pred_grp, target_grp,
                                           rearrange(w_grp, "b n s h w -> b n (s h w)"))
        # With fdc_weight 0 the FDC terms are still computed for the log, without gradient.
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.fdc_weight > 0):
            gain = self.fdc_hf_gain
            out["fdc_spectral"] = L.spectral_fft_loss(pred_pix[rec_tok], target_pix[rec_tok],
                                                      b.present, gain)
            # Visible pixels come from the target, so only reconstructed pixels can differ.
            comp = torch.where(rec_tok[..., None], pred_pix, target_pix)
            comp = rearrange(comp, "b (h w) g -> b g h w", h=P)
            out["fdc_spatial"] = L.spatial_fft_loss(comp, b.xc, pres, gain)
        if self.contrast_weight > 0:
            out["contrast"] = self._contrast(b)
        return out

    def forward(self, batches: Sequence[SubBatch]) -> dict[str, torch.Tensor]:
        """Losses of one step over its sub-batches (exact means across sensors).

        Returns:
            ``loss`` (what is optimised), ``rec_spatial``, ``rec_spectral``, ``fdc_spectral``,
            ``fdc_spatial`` and ``fdc`` (their mean, unweighted; computed without gradient when
            ``fdc_weight`` is 0, for the log), and ``contrast`` when that term is on.
        """
        terms = [self._terms(b) for b in batches]
        out = {k: L.ratio([t[k] for t in terms]) for k in terms[0]}
        out["fdc"] = 0.5 * (out["fdc_spectral"] + out["fdc_spatial"])
        loss = out["rec_spatial"] + self.spectral_loss_weight * out["rec_spectral"]
        if self.fdc_weight > 0:
            loss = loss + self.fdc_weight * out["fdc"]
        if self.contrast_weight > 0:
            loss = loss + self.contrast_weight * out["contrast"]
        out["loss"] = loss
        return out


def build_objective(cfg: PretrainConfig) -> MaskedS2Former:
    from timm import create_model

    from hsizoo import models  # noqa: F401  (registers the variants)

    kwargs = {**cfg.model_kwargs, "num_classes": 0}
    encoder = create_model(cfg.model, pretrained=False, **kwargs)
    return MaskedS2Former(encoder, cfg.decoder_dim, cfg.decoder_depth, cfg.fdc_weight,
                          cfg.fdc_hf_gain, cfg.spectral_loss_weight, cfg.contrast_weight,
                          cfg.contrast_temperature, cfg.projector_dim)
