"""Self-supervised pretraining of S2Former: masked reconstruction with the frequency-domain constraint.

DESIGN.md items 2, 3 and 5. A P x P patch around a random valid pixel of one of the training
scenes (any sensors: every scene is resampled onto the canonical wavelength grid) is encoded with

* a large random fraction of its spatial (pixel) tokens replaced by the mask token, and
* some of its *present* spectral groups masked: their tokens are replaced by the mask token and
  their values are hidden from the spatial branch too (set to 0, the standardised mean), so they
  cannot be copied across branches;

and a light decoder reconstructs the masked pixels' canonical spectra and the masked groups'
values over the c x c centre. The loss is the pixel-domain MSE on covered grid points of valid
pixels, plus ``fdc_weight`` times the frequency-domain constraint of :mod:`hsizoo.losses`
(rFFT of the reconstructed spectra, rfft2 of the reconstructed patch).

Operations (DESIGN.md, "Scale beyond one machine"):

* AdamW, linear warm-up then cosine decay, gradient clipping; a tqdm bar with loss and samples/s;
  ``<run_dir>/log.jsonl`` with one JSON object per logged step (:func:`plot_loss_curve`).
* Checkpoints without pickles: ``ckpt-<step>.safetensors`` (model, optimiser tensors, torch RNG
  state) and the manifest ``checkpoint.json`` (step, config, optimiser scalars, wall time,
  sha256 of the tensors file), each written to a temporary file in the run directory and renamed
  (the manifest last, so it always points to a complete tensors file). ``resume=True`` continues
  with the same optimiser, schedule, step and sampling; SIGINT/SIGTERM finish the current step,
  write a checkpoint and return; a non-finite loss raises :class:`NonFiniteLossError` before any
  update or checkpoint.
* Sampling is counter-based: the patches and masks of step ``s`` are drawn from
  ``numpy.random.default_rng([seed, s])`` for the *global* batch, and rank ``r`` of ``W`` takes
  its share, rows ``r * batch_size`` to ``(r + 1) * batch_size``. A resumed run therefore draws exactly what the uninterrupted run
  would have, and W processes draw the same global batch as one process with W times the batch.
* Under torchrun (``WORLD_SIZE`` > 1): DistributedDataParallel, gloo on CPUs and NCCL on GPUs;
  only rank 0 writes logs and checkpoints (the run directory must be shared for resume).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import signal
import sys
import threading
import time
import types
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange, repeat

from . import losses as L

__all__ = [
    "PretrainConfig",
    "PretrainResult",
    "MaskedS2Former",
    "PretrainData",
    "NonFiniteLossError",
    "pretrain",
    "adapt_to_scene",
    "load_scene_spec",
    "load_checkpoint",
    "export_pretrained",
    "plot_loss_curve",
    "read_log",
    "register_cli",
    "main",
]

MANIFEST = "checkpoint.json"
LOG_NAME = "log.jsonl"


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; no update or checkpoint was written for it."""


# --------------------------------------------------------------------------- configuration
@dataclass
class PretrainConfig:
    """The recipe of a pretraining run (stored in every checkpoint; a resume must match it).

    Attributes:
        model: Registered S2Former variant (``hsizoo.list_models("s2former*")``).
        model_kwargs: Extra constructor arguments of the encoder.
        scenes: Scene specs (see :func:`load_scene_spec`) or descriptions of Scene objects.
        steps: Length of the schedule in optimiser steps.
        batch_size: Patches per process per step (global batch = batch_size x world size).
        lr: Peak learning rate (AdamW).
        min_lr: Learning rate at the end of the cosine decay.
        weight_decay: AdamW weight decay (not applied to biases, norms, positions, mask tokens).
        warmup_steps: Linear warm-up steps; default 5 % of ``steps``.
        betas: AdamW betas.
        grad_clip: Max gradient norm; 0 disables clipping.
        mask_ratio: Fraction of the P*P spatial tokens masked in every patch.
        spectral_mask_ratio: Fraction of the present spectral groups masked (at least one,
            never all).
        fdc_weight: Weight of the frequency-domain constraint; 0 turns it off.
        fdc_hf_gain: High-frequency emphasis of the FDC (see :mod:`hsizoo.losses`).
        spectral_loss_weight: Weight of the masked-group reconstruction loss.
        decoder_dim: Width of the decoders; default the encoder's.
        decoder_depth: Transformer layers per decoder.
        scene_weighting: "equal" (each scene as likely) or "pixels" (by valid pixel count).
        seed: Seed of initialisation, sampling and masking.
    """

    model: str = "s2former_small"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    scenes: list[str] = field(default_factory=list)
    steps: int = 1000
    batch_size: int = 64
    lr: float = 1e-3
    min_lr: float = 1e-5
    weight_decay: float = 0.05
    warmup_steps: int | None = None
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    mask_ratio: float = 0.7
    spectral_mask_ratio: float = 0.4
    fdc_weight: float = 0.5
    fdc_hf_gain: float = 1.0
    spectral_loss_weight: float = 1.0
    decoder_dim: int | None = None
    decoder_depth: int = 1
    scene_weighting: str = "equal"
    seed: int = 0

    def __post_init__(self) -> None:
        self.betas = tuple(float(b) for b in self.betas)  # type: ignore[assignment]
        if self.warmup_steps is None:
            self.warmup_steps = max(1, int(round(0.05 * self.steps)))
        checks = [
            (self.steps >= 1, f"steps must be >= 1; got {self.steps}"),
            (self.batch_size >= 1, f"batch_size must be >= 1; got {self.batch_size}"),
            (0.0 < self.mask_ratio < 1.0, f"mask_ratio must be in (0, 1); got {self.mask_ratio}"),
            (0.0 <= self.spectral_mask_ratio < 1.0,
             f"spectral_mask_ratio must be in [0, 1); got {self.spectral_mask_ratio}"),
            (self.fdc_weight >= 0, f"fdc_weight must be >= 0 (0 turns FDC off); got {self.fdc_weight}"),
            (self.lr > 0 and self.min_lr >= 0, "lr must be > 0 and min_lr >= 0"),
            (self.scene_weighting in ("equal", "pixels"),
             f"scene_weighting must be 'equal' or 'pixels'; got {self.scene_weighting!r}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(msg + ".")

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d


def lr_at(step: int, cfg: PretrainConfig) -> float:
    """Learning rate of the optimiser step with 0-based index ``step``: warm-up, then cosine."""
    warm = int(cfg.warmup_steps or 0)
    if step < warm:
        return cfg.lr * (step + 1) / warm
    t = (step - warm) / max(1, cfg.steps - warm)
    t = min(max(t, 0.0), 1.0)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1.0 + math.cos(math.pi * t))


# --------------------------------------------------------------------------- data
def _data_root(root: str | os.PathLike[str] | None) -> Path:
    if root is not None:
        return Path(root)
    from .simulate import data_dir

    return data_dir()


def load_scene_spec(spec: str, data_root: str | os.PathLike[str] | None = None) -> Any:
    """Turn a scene spec into a :class:`~hsizoo.io.scene.Scene`.

    Specs:
        * ``"indian_pines"`` (or any name of :func:`hsizoo.datasets.list_datasets`): the real
          scene from ``data_root`` (default ``$HSIZOO_DATA_DIR`` or ``../shared/data/hsi``).
          Its labels are loaded but pretraining never uses them.
        * ``"simulated:<sensor>:<layout>:<seed>"``: :func:`hsizoo.simulate.simulate_scene` with
          a sensor preset, a layout that is either a real label map name (``pavia_university``,
          ``salinas``, ``ksc``, ``indian_pines``) or a generated one ``HxW`` / ``HxWxK``
          (K classes, default 8), and a seed.
        * a path to a GeoTIFF / ENVI / .mat file: :func:`hsizoo.io.read_scene`.

    Args:
        spec: The spec.
        data_root: Folder of the benchmark data.

    Returns:
        The Scene.

    Raises:
        ValueError: a spec that is none of the above.
    """
    spec = str(spec).strip()
    if spec.startswith("simulated:"):
        from .simulate import simulate_scene

        parts = spec.split(":")
        if len(parts) != 4:
            raise ValueError(f"Bad scene spec {spec!r}: use simulated:<sensor>:<layout>:<seed>, "
                             "e.g. simulated:enmap:128x128:3 or simulated:rosis:salinas:1.")
        _, sensor, layout, seed = parts
        dims = layout.lower().split("x")
        num_classes = 8
        lay: Any = layout
        if all(d.isdigit() for d in dims) and len(dims) in (2, 3):
            lay = (int(dims[0]), int(dims[1]))
            num_classes = int(dims[2]) if len(dims) == 3 else 8
        if data_root is not None:
            os.environ.setdefault("HSIZOO_DATA_DIR", str(data_root))
        return simulate_scene(lay, sensor=sensor, seed=int(seed), num_classes=num_classes)
    from .datasets import list_datasets

    if spec.lower() in list_datasets():
        from .datasets import load_dataset

        return load_dataset(spec.lower(), root=_data_root(data_root), progress=False)
    if Path(spec).exists():
        from .io import read_scene

        return read_scene(spec)
    raise ValueError(f"Unknown scene {spec!r}: give a dataset name ({', '.join(list_datasets())}),"
                     " simulated:<sensor>:<layout>:<seed>, or the path of a scene file.")


def _describe_scene(scene: Any) -> str:
    name = scene.meta.get("dataset") if isinstance(scene.meta, dict) else None
    name = name or scene.path or scene.sensor or "scene"
    h, w, b = scene.cube.shape
    return f"<Scene {name} {h}x{w}x{b}>"


@dataclass
class SubBatch:
    """Patches of one step that share one set of covered grid points (one sensor).

    Attributes:
        xc: (b, G, P, P) canonical standardised patches (missing points 0).
        valid: (b, P, P) float, 1 where the patch pixel is a valid scene pixel.
        present: (G,) bool, covered grid points.
        spatial_mask: (b, P*P) bool, masked pixel tokens.
        spectral_mask: (b, num_groups) bool, masked spectral groups.
    """

    xc: torch.Tensor
    valid: torch.Tensor
    present: torch.Tensor
    spatial_mask: torch.Tensor
    spectral_mask: torch.Tensor


class PretrainData:
    """Scenes on the canonical grid, ready for counter-based patch and mask sampling.

    Each scene is standardised with its own :func:`hsizoo.spectral.band_stats`, padded with
    :func:`hsizoo.patches.prepare_cube` and resampled onto the encoder's canonical grid once.

    Args:
        scenes: Scene objects.
        encoder: The S2Former whose grid, patch size and groups define the samples.
        scene_weighting: "equal" or "pixels".
        device: Where the cubes live.
        stats: Per-scene :class:`~hsizoo.spectral.BandStats` to standardise with instead of
            each scene's own (e.g. the statistics a fine-tuned model was trained with).
    """

    def __init__(self, scenes: Sequence[Any], encoder: nn.Module, scene_weighting: str = "equal",
                 device: torch.device | str = "cpu", stats: Sequence[Any] | None = None) -> None:
        from .patches import prepare_cube
        from .spectral import band_stats, canonical_resampler

        if not scenes:
            raise ValueError("No scenes to pretrain on: pass at least one Scene or scene spec.")
        self.P = int(encoder.patch_size)
        self.num_groups = int(encoder.num_groups)
        self.group_size = int(encoder.group_size)
        self.cubes: list[torch.Tensor] = []
        self.valids: list[torch.Tensor] = []
        self.centres: list[np.ndarray] = []
        self.present: list[torch.Tensor] = []
        self.group_present: list[np.ndarray] = []
        self.widths: list[int] = []
        keys: dict[bytes, int] = {}
        self.key_of: list[int] = []
        if stats is not None and len(stats) != len(scenes):
            raise ValueError(f"Got {len(stats)} band statistics for {len(scenes)} scenes; give "
                             "one per scene, or None to compute them.")
        for i, scene in enumerate(scenes):
            valid = np.asarray(scene.valid, dtype=bool)
            if not valid.any():
                raise ValueError(f"{_describe_scene(scene)} has no valid pixel to sample.")
            st = stats[i] if stats is not None else band_stats(scene.cube, valid)
            std = st.apply(scene.cube)
            res = canonical_resampler(scene.wavelengths, encoder.grid)
            padded = prepare_cube(std, valid, self.P)  # (B, H+2r, W+2r)
            w = torch.as_tensor(res.weights)
            self.cubes.append(torch.einsum("gb,bhw->ghw", w, padded).contiguous().to(device))
            vpad = prepare_cube(valid[..., None].astype(np.float32), None, self.P)
            self.valids.append(vpad.to(device))
            self.centres.append(np.flatnonzero(valid.reshape(-1)))
            self.widths.append(valid.shape[1])
            pres = torch.as_tensor(res.present)
            self.present.append(pres.to(device))
            self.group_present.append(encoder.group_presence(pres).numpy())
            self.key_of.append(keys.setdefault(res.present.tobytes(), len(keys)))
        n = np.array([c.size for c in self.centres], dtype=np.float64)
        self.weights = (np.full(len(n), 1.0 / len(n)) if scene_weighting == "equal" else n / n.sum())

    def sample(self, step: int, seed: int, batch_size: int, mask_ratio: float,
               spectral_mask_ratio: float, rank: int = 0, world_size: int = 1
               ) -> list[SubBatch]:
        """This rank's share of the global batch of step ``step`` (see module docstring)."""
        from .patches import gather_patches

        P, N = self.P, self.P * self.P
        total = batch_size * world_size
        rng = np.random.default_rng([int(seed), int(step)])
        scene_idx = rng.choice(len(self.cubes), size=total, p=self.weights)
        u = rng.random(total)
        # Exactly round(ratio * N) masked tokens per patch, at random positions.
        n_sp = min(N - 1, max(1, int(round(mask_ratio * N))))
        sp_order = np.argsort(rng.random((total, N)), axis=1)
        sp_mask = np.zeros((total, N), dtype=bool)
        np.put_along_axis(sp_mask, sp_order[:, :n_sp], True, axis=1)
        se_keys = rng.random((total, self.num_groups))
        share = slice(rank * batch_size, (rank + 1) * batch_size)
        scene_idx, u, sp_mask, se_keys = scene_idx[share], u[share], sp_mask[share], se_keys[share]
        out = []
        keys = np.array([self.key_of[s] for s in scene_idx])
        for key in np.unique(keys):
            rows = np.flatnonzero(keys == key)  # ascending positions in this rank's share
            parts_x, parts_v, parts_rows = [], [], []
            for s in np.unique(scene_idx[rows]):
                sel = rows[scene_idx[rows] == s]
                n_s = self.centres[s].size
                pix = self.centres[s][np.minimum((u[sel] * n_s).astype(np.int64), n_s - 1)]
                r, c = np.divmod(pix, self.widths[s])
                parts_x.append(gather_patches(self.cubes[s], r, c, P))
                parts_v.append(gather_patches(self.valids[s], r, c, P)[:, 0])
                parts_rows.append(sel)
            order = torch.as_tensor(np.argsort(np.concatenate(parts_rows), kind="stable"))
            xc = torch.cat(parts_x)[order.to(parts_x[0].device)]
            vv = torch.cat(parts_v)[order.to(parts_v[0].device)]
            s0 = scene_idx[rows[0]]
            gp = self.group_present[s0]
            n_present = int(gp.sum())
            k = 0 if spectral_mask_ratio <= 0 or n_present < 2 else \
                min(n_present - 1, max(1, int(round(spectral_mask_ratio * n_present))))
            order_keys = np.where(gp[None], se_keys[rows], np.inf)
            se_order = np.argsort(order_keys, axis=1)
            se_mask = np.zeros((rows.size, self.num_groups), dtype=bool)
            if k:
                np.put_along_axis(se_mask, se_order[:, :k], True, axis=1)
            dev = xc.device
            out.append(SubBatch(
                xc=xc, valid=vv, present=self.present[s0],
                spatial_mask=torch.as_tensor(sp_mask[rows], device=dev),
                spectral_mask=torch.as_tensor(se_mask, device=dev)))
        return out


# --------------------------------------------------------------------------- model
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
    """

    def __init__(self, encoder: nn.Module, decoder_dim: int | None = None, decoder_depth: int = 1,
                 fdc_weight: float = 0.5, fdc_hf_gain: float = 1.0,
                 spectral_loss_weight: float = 1.0) -> None:
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
        return out

    def forward(self, batches: Sequence[SubBatch]) -> dict[str, torch.Tensor]:
        """Losses of one step over its sub-batches (exact means across sensors).

        Returns:
            ``loss`` (what is optimised), ``rec_spatial``, ``rec_spectral``, ``fdc_spectral``,
            ``fdc_spatial`` and ``fdc`` (their mean, unweighted; computed without gradient when
            ``fdc_weight`` is 0, for the log).
        """
        terms = [self._terms(b) for b in batches]
        out = {k: L.ratio([t[k] for t in terms]) for k in terms[0]}
        out["fdc"] = 0.5 * (out["fdc_spectral"] + out["fdc_spatial"])
        loss = out["rec_spatial"] + self.spectral_loss_weight * out["rec_spectral"]
        if self.fdc_weight > 0:
            loss = loss + self.fdc_weight * out["fdc"]
        out["loss"] = loss
        return out


def _build(cfg: PretrainConfig) -> MaskedS2Former:
    from timm import create_model

    from . import models  # noqa: F401  (registers the variants)

    kwargs = {**cfg.model_kwargs, "num_classes": 0}
    encoder = create_model(cfg.model, pretrained=False, **kwargs)
    return MaskedS2Former(encoder, cfg.decoder_dim, cfg.decoder_depth, cfg.fdc_weight,
                          cfg.fdc_hf_gain, cfg.spectral_loss_weight)


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    skip = {f"encoder.{n}" for n in model.encoder.no_weight_decay()}
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or name in skip else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


# --------------------------------------------------------------------------- checkpoints
def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Write ``path`` through a temporary file in the same folder and an atomic rename."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_checkpoint(run_dir: Path, step: int, model: MaskedS2Former, optimizer: torch.optim.Optimizer,
                    cfg: PretrainConfig, state: dict[str, Any]) -> Path:
    """Write ``ckpt-<step>.safetensors`` and then the manifest; drop older tensors files."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    for k, v in model.state_dict().items():
        tensors[f"model.{k}"] = v.detach().cpu().contiguous()
    opt = optimizer.state_dict()
    scalars: dict[str, dict[str, Any]] = {}
    for pid, st in opt["state"].items():
        for name, v in st.items():
            if torch.is_tensor(v):
                tensors[f"optim.{pid}.{name}"] = v.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[name] = v
    tensors["rng.torch"] = torch.get_rng_state()
    name = f"ckpt-{step:08d}.safetensors"
    _atomic(run_dir / name, lambda p: save_file(tensors, str(p), metadata={"format": "pt"}))
    manifest = dict(
        format="hsizoo-pretrain-checkpoint", version=1, step=step, tensors=name,
        sha256=_sha256(run_dir / name), config=cfg.to_json(),
        optimizer=dict(param_groups=opt["param_groups"], scalars=scalars), **state)
    text = json.dumps(manifest, indent=1, default=float)
    _atomic(run_dir / MANIFEST, lambda p: p.write_text(text))
    for old in run_dir.glob("ckpt-*.safetensors"):
        if old.name != name:
            old.unlink(missing_ok=True)
    return run_dir / MANIFEST


def load_checkpoint(run_dir: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read a run directory's manifest and its verified tensors.

    Args:
        run_dir: Folder of a pretraining run.

    Returns:
        (manifest, tensors) with tensors keyed ``model.*``, ``optim.<id>.*`` and ``rng.torch``.

    Raises:
        FileNotFoundError: no checkpoint in the folder.
        ValueError: the tensors file does not match the manifest's sha256.
    """
    from safetensors.torch import load_file

    run_dir = Path(run_dir)
    mpath = run_dir / MANIFEST
    if not mpath.is_file():
        raise FileNotFoundError(f"No pretraining checkpoint in {run_dir} (no {MANIFEST}). Start "
                                "a run there first, or point at the run directory of one.")
    manifest = json.loads(mpath.read_text())
    tpath = run_dir / manifest["tensors"]
    if not tpath.is_file() or _sha256(tpath) != manifest["sha256"]:
        raise ValueError(f"Checkpoint {tpath} is missing or does not match the sha256 in {mpath}; "
                         "the run directory was modified by hand.")
    return manifest, load_file(str(tpath))


def _restore(manifest: dict[str, Any], tensors: dict[str, torch.Tensor], model: MaskedS2Former,
             optimizer: torch.optim.Optimizer) -> None:
    sd = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    model.load_state_dict(sd, strict=True)
    state: dict[int, dict[str, Any]] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, pid, name = k.split(".", 2)
            state.setdefault(int(pid), {})[name] = v
    for pid, sc in manifest["optimizer"]["scalars"].items():
        state.setdefault(int(pid), {}).update(sc)
    optimizer.load_state_dict({"state": state, "param_groups": manifest["optimizer"]["param_groups"]})
    torch.set_rng_state(tensors["rng.torch"])


# --------------------------------------------------------------------------- logging
def read_log(run_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of ``<run_dir>/log.jsonl`` (one dict per logged step)."""
    path = Path(run_dir) / LOG_NAME
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _truncate_log(run_dir: Path, step: int) -> None:
    # A killed run may have logged steps after its last checkpoint; the resumed run redoes them.
    recs = [r for r in read_log(run_dir) if r.get("step", 0) <= step]
    text = "".join(json.dumps(r) + "\n" for r in recs)
    _atomic(run_dir / LOG_NAME, lambda p: p.write_text(text))


def plot_loss_curve(run_dir: str | os.PathLike[str], out: str | os.PathLike[str] | None = None
                    ) -> Path:
    """Plot the loss terms of ``log.jsonl`` against the step into a PNG.

    Args:
        run_dir: Folder of a pretraining run.
        out: PNG path; default ``<run_dir>/loss_curve.png``.

    Returns:
        The PNG path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = read_log(run_dir)
    if not recs:
        raise ValueError(f"{Path(run_dir) / LOG_NAME} has no records to plot.")
    out = Path(out) if out else Path(run_dir) / "loss_curve.png"
    steps = np.array([r["step"] for r in recs])
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=110)
    for key, style in (("loss", "-"), ("rec_spatial", "--"), ("rec_spectral", ":"), ("fdc", "-.")):
        vals = np.array([r.get(key, np.nan) for r in recs], dtype=float)
        if np.isfinite(vals).any():
            k = max(1, len(vals) // 100)  # moving average for readability
            sm = np.convolve(vals, np.ones(k) / k, mode="valid")
            ax.plot(steps[k - 1:], sm, style, label=key)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (moving average)")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(f"{recs[-1].get('model', '')} masked reconstruction".strip())
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


# --------------------------------------------------------------------------- distributed
@dataclass
class _Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialised_here: bool = False


def _dist_setup(device: str | None) -> tuple[_Dist, torch.device]:
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        return _Dist(), dev
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = (device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
    dev = torch.device(f"cuda:{local}" if use_cuda else "cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    here = False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        here = True
    return _Dist(dist.get_rank(), dist.get_world_size(), local, here), dev


def _hardware(dev: torch.device, world: int) -> str:
    if dev.type == "cuda":
        name = torch.cuda.get_device_name(dev)
    else:
        from ._system import cpu_name

        name = f"CPU {cpu_name()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"
    return f"{world} x {name}" if world > 1 else name


# --------------------------------------------------------------------------- training
@dataclass
class PretrainResult:
    """What :func:`pretrain` returns.

    Attributes:
        encoder: The trained S2Former (num_classes=0), on the CPU.
        run_dir: The run directory.
        step: Optimiser steps done (over all resumes).
        final_loss: Loss of the last step.
        wall_time_s: Training wall time over all resumes.
        interrupted: True when a signal or ``max_time``/``until_step`` stopped it early.
        config: The recipe.
    """

    encoder: nn.Module
    run_dir: Path
    step: int
    final_loss: float
    wall_time_s: float
    interrupted: bool
    config: PretrainConfig


class _StopFlag:
    """SIGINT/SIGTERM set a flag; the loop finishes its step, checkpoints and returns."""

    def __init__(self) -> None:
        self.flag = False
        self.signal: str | None = None
        self._old: dict[int, Any] = {}

    def _handler(self, signum: int, frame: Any) -> None:
        if self.flag and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C forces the exit
        self.flag = True
        self.signal = signal.Signals(signum).name
        print(f"\n[hsizoo pretrain] {self.signal} received: finishing this step and writing a "
              "checkpoint (Ctrl-C again to abort without one).", file=sys.stderr, flush=True)

    def __enter__(self) -> "_StopFlag":
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)


_RUNTIME_KEYS = ("resume", "max_time", "until_step", "progress", "callback", "device",
                 "data_root", "checkpoint_every", "log_every")


def pretrain(scenes: Sequence[Any] | None = None, run_dir: str | os.PathLike[str] = "runs/pretrain",
             *, resume: bool = False, max_time: float | None = None, until_step: int | None = None,
             checkpoint_every: int = 100, log_every: int = 1, progress: bool = True,
             device: str | None = None, data_root: str | os.PathLike[str] | None = None,
             callback: Callable[[int, dict[str, float]], None] | None = None,
             **recipe: Any) -> PretrainResult:
    """Pretrain an S2Former by masked reconstruction with the frequency-domain constraint.

    Args:
        scenes: Scene objects and/or specs (:func:`load_scene_spec`). On resume, None reuses the
            run's specs (Scene objects must be passed again).
        run_dir: Folder for ``log.jsonl``, checkpoints and ``loss_curve.png``.
        resume: Continue from the checkpoint in ``run_dir`` (same recipe, optimiser, schedule,
            step and sampling). Without it, a run directory with a checkpoint is refused.
        max_time: Stop (with a checkpoint) after this many seconds of this process.
        until_step: Stop (with a checkpoint) at this step, before the end of the schedule.
        checkpoint_every: Steps between checkpoints (one is always written at the end).
        log_every: Steps between log records.
        progress: Show a tqdm bar (rank 0).
        device: "cpu", "cuda", ...; default cuda when available.
        data_root: Folder of the benchmark data for specs.
        callback: Called as ``callback(step, record)`` after every step (on every rank).
        **recipe: Fields of :class:`PretrainConfig` (model, steps, batch_size, lr, mask_ratio,
            fdc_weight, seed, ...).

    Returns:
        A :class:`PretrainResult`.

    Raises:
        NonFiniteLossError: the loss became NaN or infinite (the last checkpoint is untouched).
        FileExistsError: ``run_dir`` holds a checkpoint and ``resume`` is False.
        ValueError: bad recipe, scenes, or a resume whose recipe differs from the run's.
    """
    import torch.distributed as dist

    unknown = set(recipe) - {f.name for f in fields(PretrainConfig)}
    if unknown:
        raise TypeError(f"Unknown pretraining option(s) {sorted(unknown)}; options are "
                        f"{[f.name for f in fields(PretrainConfig)] + list(_RUNTIME_KEYS)}.")
    run_dir = Path(run_dir)
    has_ckpt = (run_dir / MANIFEST).is_file()
    if has_ckpt and not resume:
        step = json.loads((run_dir / MANIFEST).read_text()).get("step")
        raise FileExistsError(f"{run_dir} already holds a pretraining checkpoint (step {step}); "
                              "pass resume=True (--resume) to continue it, or another run_dir.")
    manifest = tensors = None
    if resume and has_ckpt:
        manifest, tensors = load_checkpoint(run_dir)
        cfg = PretrainConfig(**manifest["config"])
        diff = {k: (getattr(cfg, k), v) for k, v in recipe.items()
                if json.dumps(getattr(cfg, k), default=list) != json.dumps(v, default=list)
                and k != "scenes"}
        if diff:
            raise ValueError("resume: the recipe differs from the run's checkpoint: " + ", ".join(
                f"{k} = {new!r} (run has {old!r})" for k, (old, new) in diff.items())
                + ". Resume with the same options, or start a new run_dir.")
        if scenes is None:
            if any(s.startswith("<Scene") for s in cfg.scenes):
                raise ValueError("This run was started with Scene objects; pass the same scenes "
                                 "again to resume it.")
            scenes = list(cfg.scenes)
    if scenes is None or len(scenes) == 0:
        raise ValueError("No scenes to pretrain on: pass Scene objects or specs such as "
                         "'indian_pines' or 'simulated:enmap:128x128:0'.")
    specs = [s if isinstance(s, str) else _describe_scene(s) for s in scenes]
    if manifest is None:
        cfg = PretrainConfig(**{**recipe, "scenes": specs})
    elif [s for s in specs if not s.startswith("<Scene")] != \
            [s for s in cfg.scenes if not s.startswith("<Scene")]:
        raise ValueError(f"resume: scenes {specs} differ from the run's {cfg.scenes}.")

    d, dev = _dist_setup(device)
    is_main = d.rank == 0
    try:
        torch.manual_seed(cfg.seed)  # identical initialisation on every rank
        model = _build(cfg).to(dev)
        loaded = [load_scene_spec(s, data_root) if isinstance(s, str) else s for s in scenes]
        data = PretrainData(loaded, model.encoder, cfg.scene_weighting, dev)
        optimizer = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.lr,
                                      betas=cfg.betas, weight_decay=cfg.weight_decay)
        start, wall_before = 0, 0.0
        if manifest is not None:
            _restore(manifest, tensors, model, optimizer)
            start = int(manifest["step"])
            wall_before = float(manifest.get("wall_time_s", 0.0))
            if is_main:
                _truncate_log(run_dir, start)
                print(f"[hsizoo pretrain] resuming {run_dir} at step {start}/{cfg.steps}",
                      file=sys.stderr, flush=True)
        if d.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            net: nn.Module = DDP(model, device_ids=[dev.index] if dev.type == "cuda" else None)
        else:
            net = model
        if is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            if manifest is None and (run_dir / LOG_NAME).exists():
                # Steps logged by an attempt that died before its first checkpoint are redone
                # from step 1; keeping them would log those steps twice.
                _truncate_log(run_dir, 0)
        hardware = _hardware(dev, d.world_size)
        end = cfg.steps if until_step is None else min(cfg.steps, int(until_step))
        bar = None
        if progress and is_main:
            from tqdm.auto import tqdm

            bar = tqdm(total=cfg.steps, initial=start, desc="pretrain", unit="step",
                       dynamic_ncols=True)
        t0 = time.perf_counter()
        last_ckpt_t = t0
        step, rec_last = start, {}
        interrupted = False
        log_fh = open(run_dir / LOG_NAME, "a") if is_main else None

        def checkpoint(at: int) -> None:
            if is_main:
                save_checkpoint(run_dir, at, model, optimizer, cfg, dict(
                    wall_time_s=wall_before + time.perf_counter() - t0, hardware=hardware,
                    world_size=d.world_size, final_loss=rec_last.get("loss")))

        with _StopFlag() as stop:
            while step < end:
                ts = time.perf_counter()
                lr = lr_at(step, cfg)
                for g in optimizer.param_groups:
                    g["lr"] = lr
                net.train()
                batches = data.sample(step, cfg.seed, cfg.batch_size, cfg.mask_ratio,
                                      cfg.spectral_mask_ratio, d.rank, d.world_size)
                out = net(batches)
                # One reduction carries the loss terms, the stop flag and the time budget, so
                # every rank takes the same decision at the same step.
                keys = ["loss", "rec_spatial", "rec_spectral", "fdc", "fdc_spectral", "fdc_spatial"]
                over_time = max_time is not None and time.perf_counter() - t0 >= max_time
                stats = torch.stack([out[k].detach().float() for k in keys] + [
                    torch.tensor(float(stop.flag or over_time), device=dev)])
                if d.world_size > 1:
                    dist.all_reduce(stats)
                    stats[:-1] /= d.world_size
                vals = stats.tolist()
                if not math.isfinite(vals[0]):
                    kept = (f"the last good checkpoint in {run_dir} is intact"
                            if (run_dir / MANIFEST).is_file() else "no checkpoint was written")
                    raise NonFiniteLossError(
                        f"The pretraining loss became {vals[0]} at step {step + 1} (terms: "
                        + ", ".join(f"{k}={v:.4g}" for k, v in zip(keys[1:], vals[1:-1]))
                        + f"). Nothing was updated or checkpointed for this step; {kept}. Lower "
                        f"the learning rate (lr={cfg.lr}) or check the scenes for extreme "
                        "values, then resume or restart.")
                optimizer.zero_grad(set_to_none=True)
                out["loss"].backward()
                gnorm = (torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                         if cfg.grad_clip > 0 else torch.tensor(0.0))
                if not math.isfinite(float(gnorm)):
                    # A finite loss can still have non-finite gradients; stepping would write
                    # NaN weights into the next checkpoint. Gradients are all-reduced, so every
                    # rank takes this decision at the same step.
                    raise NonFiniteLossError(
                        f"The gradient norm became {float(gnorm)} at step {step + 1} (loss "
                        f"{vals[0]:.4g}). Nothing was updated or checkpointed for this step; "
                        f"the last checkpoint in {run_dir}, if any, is intact. Lower the "
                        f"learning rate (lr={cfg.lr}) or check the scenes, then resume.")
                optimizer.step()
                step += 1
                dt = time.perf_counter() - ts
                sps = cfg.batch_size * d.world_size / max(dt, 1e-9)
                rec_last = dict(step=step, **{k: v for k, v in zip(keys, vals[:-1])}, lr=lr,
                                grad_norm=float(gnorm), samples_per_s=sps,
                                wall_time_s=wall_before + time.perf_counter() - t0,
                                samples=step * cfg.batch_size * d.world_size, model=cfg.model)
                if log_fh is not None and (step % log_every == 0 or step == end):
                    log_fh.write(json.dumps(rec_last) + "\n")
                    log_fh.flush()
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{vals[0]:.4f}", sps=f"{sps:.0f}")
                if callback is not None:
                    callback(step, rec_last)
                if vals[-1] > 0 and step < end:
                    interrupted = True
                    break
                if step % checkpoint_every == 0 and step < end:
                    checkpoint(step)
                    last_ckpt_t = time.perf_counter()
            checkpoint(step)
        del last_ckpt_t
        if log_fh is not None:
            log_fh.close()
        if bar is not None:
            bar.close()
        wall = wall_before + time.perf_counter() - t0
        if is_main:
            why = (f" (stopped by {stop.signal})" if stop.signal else " (time budget)"
                   if interrupted else "")
            if step < cfg.steps:
                print(f"[hsizoo pretrain] stopped at step {step}/{cfg.steps}{why}; checkpoint in "
                      f"{run_dir}; continue with resume=True (--resume {run_dir}).",
                      file=sys.stderr, flush=True)
        if d.world_size > 1:
            dist.barrier()
        return PretrainResult(encoder=model.encoder.cpu(), run_dir=run_dir, step=step,
                              final_loss=float(rec_last.get("loss", float("nan"))),
                              wall_time_s=wall, interrupted=step < cfg.steps,
                              config=cfg)
    finally:
        if d.initialised_here and dist.is_initialized():
            dist.destroy_process_group()


# --------------------------------------------------------------------------- scene adaptation
# Step indices of the fixed evaluation batches of adapt_to_scene: far beyond any training step,
# so that the counter-based sampler never draws them for training.
_EVAL_STEP = 1 << 40


def _eval_terms(model: MaskedS2Former, batches: Sequence[Sequence[SubBatch]]) -> dict[str, float]:
    """Mean loss terms of ``model`` over fixed batches, in eval mode and without gradient."""
    was = model.training
    model.eval()
    keys = ("loss", "rec_spatial", "rec_spectral", "fdc")
    acc = dict.fromkeys(keys, 0.0)
    with torch.no_grad():
        for b in batches:
            out = model(b)
            for k in keys:
                acc[k] += float(out[k]) / len(batches)
    model.train(was)
    return acc


def adapt_to_scene(net: nn.Module, scene: Any, steps: int = 50, seed: int = 0,
                   progress: bool = False, *, stats: Any = None, batch_size: int = 32,
                   lr: float = 1e-4, decoder_lr: float = 1e-3, weight_decay: float = 0.05,
                   mask_ratio: float = 0.7, spectral_mask_ratio: float = 0.4,
                   fdc_weight: float = 0.5, fdc_hf_gain: float = 1.0,
                   spectral_loss_weight: float = 1.0, decoder_dim: int | None = None,
                   decoder_depth: int = 1, grad_clip: float = 1.0, eval_batches: int = 4
                   ) -> dict[str, Any]:
    """Scene-adaptive self-supervised steps on the user's own unlabelled cube, in place.

    The pretraining objective (masked spatial/spectral reconstruction plus ``fdc_weight`` times
    the frequency-domain constraint) is optimised on patches of ``scene`` only, so that the
    encoder sees the very sensor, illumination and materials it will classify (DESIGN.md,
    DAFT: the unlabelled pixels of the scene are always at hand). ``net`` is wrapped in a
    :class:`MaskedS2Former` with fresh decoders, which are discarded afterwards; its classifier
    head is not trained. Because the decoders start random, they get a larger learning rate
    (``decoder_lr``) and the encoder's learning rate warms up linearly over the first half of
    the steps, so that the first, uninformed decoder gradients barely move the encoder.

    Args:
        net: An S2Former (with or without a classifier head); its encoder weights are updated.
        scene: The :class:`~hsizoo.io.scene.Scene` (its labels are not used).
        steps: Optimiser steps.
        seed: Seed of the decoders' initialisation and of patch and mask sampling.
        progress: Show a tqdm bar.
        stats: :class:`~hsizoo.spectral.BandStats` to standardise the scene with (default: the
            scene's own, as :func:`hsizoo.finetune.finetune` computes them).
        batch_size: Patches per step.
        lr: Peak learning rate of the encoder.
        decoder_lr: Learning rate of the fresh decoders.
        weight_decay: AdamW weight decay of matrices (not of biases, norms, positions).
        mask_ratio: Fraction of masked pixel tokens per patch.
        spectral_mask_ratio: Fraction of masked present spectral groups.
        fdc_weight: Weight of the frequency-domain constraint (0 = off).
        fdc_hf_gain: High-frequency emphasis of the FDC.
        spectral_loss_weight: Weight of the masked-group loss.
        decoder_dim: Width of the decoders; default the encoder's.
        decoder_depth: Transformer layers per decoder.
        grad_clip: Max gradient norm; 0 disables clipping.
        eval_batches: Fixed held-out batches on which the loss is measured before and after.

    Returns:
        A dict: ``steps``, ``batch_size``, ``lr``, ``decoder_lr``, ``fdc_weight``, ``first_loss``
        and ``last_loss`` (training batches), ``loss_curve``, ``eval_before`` / ``eval_after``
        (``loss``, ``rec_spatial``, ``rec_spectral``, ``fdc`` on the same fixed batches) and
        ``seconds``.

    Raises:
        TypeError: ``net`` is not an S2Former.
        ValueError: ``steps`` < 1 or a scene without valid pixels.
        NonFiniteLossError: the loss became NaN or infinite (no update was made for that step).
    """
    needed = ("embed_spatial", "embed_spectral", "encode", "group_presence", "grid_wavelengths")
    if not all(hasattr(net, a) for a in needed):
        raise TypeError(f"adapt_to_scene needs an S2Former (masked reconstruction works on its "
                        f"spatial and spectral tokens); got {type(net).__name__}.")
    if steps < 1:
        raise ValueError(f"steps must be >= 1; got {steps}.")
    PretrainConfig(mask_ratio=mask_ratio, spectral_mask_ratio=spectral_mask_ratio,
                   fdc_weight=fdc_weight, lr=lr)  # validates the options with its messages
    t0 = time.perf_counter()
    dev = next(net.parameters()).device
    # Seed the decoders without disturbing the caller's random stream.
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(seed)
        model = MaskedS2Former(net, decoder_dim, decoder_depth, fdc_weight, fdc_hf_gain,
                               spectral_loss_weight)
    model.decoder_sp.to(dev)
    model.decoder_se.to(dev)
    data = PretrainData([scene], net, device=dev, stats=None if stats is None else [stats])

    head = net.get_classifier() if hasattr(net, "get_classifier") else None
    head_ids = {id(p) for p in head.parameters()} if isinstance(head, nn.Module) else set()
    skip = set(net.no_weight_decay()) if hasattr(net, "no_weight_decay") else set()
    enc_decay, enc_plain = [], []
    for name, p in net.named_parameters():
        if p.requires_grad and id(p) not in head_ids:
            (enc_plain if p.ndim < 2 or name in skip else enc_decay).append(p)
    dec = [p for m in (model.decoder_sp, model.decoder_se) for p in m.parameters()]
    optimizer = torch.optim.AdamW([
        {"params": enc_decay, "weight_decay": weight_decay, "kind": "encoder"},
        {"params": enc_plain, "weight_decay": 0.0, "kind": "encoder"},
        {"params": dec, "weight_decay": weight_decay, "kind": "decoder"},
    ], lr=lr, betas=(0.9, 0.95))
    trainable = enc_decay + enc_plain + dec

    def sample(step: int) -> list[SubBatch]:
        return data.sample(step, seed, batch_size, mask_ratio, spectral_mask_ratio)

    held_out = [sample(_EVAL_STEP + i) for i in range(max(1, eval_batches))]
    was_training = net.training
    before = _eval_terms(model, held_out)
    warm = max(1, steps // 2)
    curve: list[float] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc="adapt", unit="step", leave=False, dynamic_ncols=True)
    model.train()
    try:
        for step in range(steps):
            for g in optimizer.param_groups:
                g["lr"] = (lr * min(1.0, (step + 1) / warm) if g["kind"] == "encoder"
                           else decoder_lr)
            out = model(sample(step))
            loss = out["loss"]
            if not torch.isfinite(loss):
                raise NonFiniteLossError(
                    f"Scene adaptation loss became {float(loss.detach())} at step {step + 1}; nothing "
                    f"was updated for it. Lower lr ({lr}) / decoder_lr ({decoder_lr}), or "
                    "check the scene for extreme values (or use fewer adaptation steps).")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(trainable, grad_clip)
            optimizer.step()
            curve.append(float(loss.detach()))
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{curve[-1]:.4f}")
        after = _eval_terms(model, held_out)
    finally:
        if bar is not None:
            bar.close()
        net.train(was_training)
        optimizer.zero_grad(set_to_none=True)
    return dict(steps=steps, batch_size=batch_size, lr=lr, decoder_lr=decoder_lr,
                fdc_weight=fdc_weight, first_loss=curve[0], last_loss=curve[-1],
                loss_curve=curve, eval_before=before, eval_after=after,
                seconds=time.perf_counter() - t0)


# --------------------------------------------------------------------------- publishing
def export_pretrained(run_dir: str | os.PathLike[str], folder: str | os.PathLike[str], *,
                      tag: str | None = None, hf_hub_id: str | None = None,
                      data: Any = None, sensor: str | None = None, description: str | None = None,
                      overwrite: bool = False) -> Path:
    """Publish a run's encoder as a Hub-ready folder (model.safetensors, config.json, card).

    The card is generated from the config written here: recipe, data, steps, wall time,
    hardware, final loss and the loss curve (plotted from ``log.jsonl`` and copied in).

    Args:
        run_dir: Folder of a finished (or stopped) pretraining run.
        folder: Destination folder (its name should be the Hub repository name).
        tag: Pretrained tag (``architecture.tag``).
        hf_hub_id: Hub repository id.
        data: Description of the training data for the card.
        sensor: Sensor preset of the data, when there is one.
        description: Extra sentence for the card.
        overwrite: Replace existing weights in ``folder``.

    Returns:
        The folder.
    """
    import shutil

    from .models._hub import save_pretrained

    manifest, tensors = load_checkpoint(run_dir)
    cfg = PretrainConfig(**manifest["config"])
    model = _build(cfg)
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    encoder = model.encoder
    folder = Path(folder)
    existing = [n for n in ("model.safetensors", "config.json") if (folder / n).exists()]
    if existing and not overwrite:
        # Checked here too so that a refused export leaves the folder exactly as it was.
        raise FileExistsError(f"{folder} already holds an exported model ({', '.join(existing)})"
                              "; pass overwrite=True to replace it, or choose another folder.")
    folder.mkdir(parents=True, exist_ok=True)
    png = plot_loss_curve(run_dir)
    shutil.copyfile(png, folder / "loss_curve.png")
    recs = read_log(run_dir)
    tail = recs[-20:] if recs else []
    mean_sps = (float(np.mean([r["samples_per_s"] for r in recs[len(recs) // 10:]]))
                if recs else None)
    wall = float(manifest.get("wall_time_s", 0.0))
    pretraining = (f"masked spatial/spectral reconstruction with FDC (weight {cfg.fdc_weight}), "
                   f"{manifest['step']} steps x {cfg.batch_size * int(manifest.get('world_size', 1))}"
                   f" patches, on {len(cfg.scenes)} scene(s)")
    training = dict(
        method="masked reconstruction (spatial tokens + spectral groups) + frequency-domain "
               "constraint, hsizoo.pretrain",
        steps=int(manifest["step"]), schedule_steps=cfg.steps,
        batch_size=cfg.batch_size * int(manifest.get("world_size", 1)),
        lr=cfg.lr, optimizer=f"AdamW (betas {list(cfg.betas)}, weight decay {cfg.weight_decay}), "
        f"{cfg.warmup_steps} warm-up steps, cosine decay to {cfg.min_lr}",
        mask_ratio=cfg.mask_ratio, spectral_mask_ratio=cfg.spectral_mask_ratio,
        loss=f"MSE(masked spectra) + {cfg.spectral_loss_weight} MSE(masked groups) + "
             f"{cfg.fdc_weight} FDC (hf_gain {cfg.fdc_hf_gain})",
        final_loss=round(float(np.mean([r["loss"] for r in tail])), 5) if tail else None,
        final_rec_spatial=round(float(np.mean([r["rec_spatial"] for r in tail])), 5) if tail else None,
        wall_time_s=round(wall, 1), wall_time=f"{wall / 60:.1f} min",
        samples_per_s=round(mean_sps, 1) if mean_sps else None,
        hardware=manifest.get("hardware"), seed=cfg.seed,
        command="hsizoo pretrain " + " ".join(cfg.scenes) + f" --model {cfg.model} --steps "
                f"{cfg.steps} --batch-size {cfg.batch_size} --lr {cfg.lr} --fdc-weight "
                f"{cfg.fdc_weight} --seed {cfg.seed}",
    )
    config = dict(
        tag=tag, hf_hub_id=hf_hub_id, hf_hub_revision="main" if hf_hub_id else None,
        pretraining=pretraining, description=description, sensor=sensor,
        data=data if data is not None else list(cfg.scenes), training=training,
        normalisation="per-band standardisation of each scene with its own valid-pixel mean and "
                      "std (hsizoo.spectral.band_stats), then canonical resampling",
        loss_curve="loss_curve.png", pretrain_config=cfg.to_json(),
    )
    config = {k: v for k, v in config.items() if v is not None}
    return save_pretrained(encoder, folder, config=config, overwrite=overwrite)


# --------------------------------------------------------------------------- command line
def _add_args(p: argparse.ArgumentParser) -> None:
    d = PretrainConfig()
    p.add_argument("scenes", nargs="*", help="scene specs: indian_pines, "
                   "simulated:<sensor>:<layout|HxW>:<seed>, or scene files")
    p.add_argument("--run-dir", default="runs/pretrain", help="folder for log, checkpoints")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    p.add_argument("--model", default=None, help=f"S2Former variant (default {d.model})")
    for name, typ in (("steps", int), ("batch-size", int), ("lr", float), ("min-lr", float),
                      ("weight-decay", float), ("warmup-steps", int), ("grad-clip", float),
                      ("mask-ratio", float), ("spectral-mask-ratio", float),
                      ("fdc-weight", float), ("fdc-hf-gain", float),
                      ("spectral-loss-weight", float), ("decoder-dim", int),
                      ("decoder-depth", int), ("seed", int)):
        default = getattr(d, name.replace("-", "_"))
        p.add_argument(f"--{name}", type=typ, default=None, help=f"default {default}")
    p.add_argument("--scene-weighting", choices=("equal", "pixels"), default=None)
    p.add_argument("--max-time", type=float, default=None, help="stop after SECONDS (checkpointed)")
    p.add_argument("--until-step", type=int, default=None, help="stop at this step (checkpointed)")
    p.add_argument("--checkpoint-every", type=int, default=100)
    p.add_argument("--log-every", type=int, default=1)
    p.add_argument("--device", default=None)
    p.add_argument("--data-root", default=None)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--export", default=None, metavar="FOLDER",
                   help="after training, publish the encoder as a Hub-ready folder")
    p.add_argument("--tag", default=None, help="pretrained tag for --export")


def _run_cli(args: argparse.Namespace) -> int:
    recipe = {}
    for f in fields(PretrainConfig):
        v = getattr(args, f.name, None)
        if v is not None and f.name != "scenes":
            recipe[f.name] = v
    try:
        res = pretrain(args.scenes or None, args.run_dir, resume=args.resume,
                       max_time=args.max_time, until_step=args.until_step,
                       checkpoint_every=args.checkpoint_every, log_every=args.log_every,
                       progress=not args.no_progress, device=args.device,
                       data_root=args.data_root, **recipe)
    except (ValueError, FileExistsError, FileNotFoundError, NonFiniteLossError) as e:
        print(f"hsizoo pretrain: error: {e}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) == 0:
        plot_loss_curve(res.run_dir)
        print(json.dumps(dict(run_dir=str(res.run_dir), step=res.step, final_loss=res.final_loss,
                              wall_time_s=round(res.wall_time_s, 1), interrupted=res.interrupted)))
        if args.export:
            if res.interrupted and res.step < res.config.steps and args.until_step is None \
                    and args.max_time is None:
                print("hsizoo pretrain: not exporting an interrupted run", file=sys.stderr)
                return 1
            export_pretrained(res.run_dir, args.export, tag=args.tag, overwrite=True)
    return 0


def register_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``pretrain`` subcommand to an argparse subparsers object.

    Args:
        subparsers: The result of ``parser.add_subparsers()``.

    Returns:
        The subparser (its handler is ``args.func(args) -> exit code``).
    """
    p = subparsers.add_parser(
        "pretrain", help="self-supervised masked-reconstruction pretraining (torchrun-ready)",
        description=(__doc__ or "").split("\n")[0])
    _add_args(p)
    p.set_defaults(func=_run_cli, handler=_run_cli)
    return p


PRETRAIN_HELP = "self-supervised masked-reconstruction pretraining (torchrun-ready)"


def _command() -> Any:
    from .cli import Command

    return Command(PRETRAIN_HELP, _add_args, _run_cli)


PRETRAIN_COMMAND = _command()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hsizoo.pretrain ...`` (the same as ``hsizoo pretrain ...``)."""
    parser = argparse.ArgumentParser(prog="hsizoo")
    sub = parser.add_subparsers(dest="command", required=True)
    register_cli(sub)
    args = parser.parse_args(["pretrain", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())


class _CallableModule(types.ModuleType):
    """``hsizoo.pretrain`` is both this module and its main function: whichever of the two the
    package attribute holds (it depends on import order), calling it pretrains."""

    def __call__(self, *args: Any, **kwargs: Any) -> PretrainResult:
        return pretrain(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
