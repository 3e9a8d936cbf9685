"""Scene adaptation: the pretraining objective run for a few steps on the user's own scene."""
from __future__ import annotations

import time
from typing import Any, Sequence

import torch
import torch.nn as nn

from hsizoo.pretrain.config import NonFiniteLossError, PretrainConfig
from hsizoo.pretrain.data import PretrainData, SubBatch
from hsizoo.method.objective import MaskedS2Former
from hsizoo.runtime.optim import weight_decay_groups

# Step indices of the fixed evaluation batches of adapt_to_scene: far beyond any training step,
# so that the counter-based sampler never draws them for training.
_EVAL_STEP = 1 << 40


def _eval_terms(model: MaskedS2Former, batches: Sequence[Sequence[SubBatch]]) -> dict[str, float]:
    """Mean loss terms of ``model`` over fixed batches, in eval mode and without gradient."""
    was = model.training
    model.eval()
    keys = ("loss", "rec_spatial", "rec_spectral", "fdc", "contrast")
    acc: dict[str, float] = {}
    with torch.no_grad():
        for b in batches:
            out = model(b)
            for k in keys:
                if k in out:
                    acc[k] = acc.get(k, 0.0) + float(out[k]) / len(batches)
    model.train(was)
    return acc


def adapt_to_scene(net: nn.Module, scene: Any, steps: int = 50, seed: int = 0,
                   progress: bool = False, *, stats: Any = None, batch_size: int = 32,
                   lr: float = 1e-4, decoder_lr: float = 1e-3, weight_decay: float = 0.05,
                   mask_ratio: float = 0.7, spectral_mask_ratio: float = 0.4,
                   fdc_weight: float = 0.5, fdc_hf_gain: float = 1.0,
                   spectral_loss_weight: float = 1.0, decoder_dim: int | None = None,
                   decoder_depth: int = 1, grad_clip: float = 1.0, eval_batches: int = 4,
                   contrast_weight: float = 1.0, contrast_temperature: float = 0.2,
                   view_offset: int = 2) -> dict[str, Any]:
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
        stats: :class:`~hsizoo.spectral.grid.BandStats` to standardise the scene with (default: the
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
        contrast_weight: Weight of the view-agreement term every published checkpoint was
            pretrained with (:class:`~hsizoo.method.objective.MaskedS2Former`; its projector
            starts fresh, at ``decoder_lr``); 0 = reconstruction and FDC only. The default
            continues the checkpoints' own objective: adapting with reconstruction and FDC
            alone pulls the encoder away from what the term taught it (issue 19: on the
            simulated Pavia layout, 5 shots, the full method fell 2.9 points after 300 such
            steps, and 0.6 with the term).
        contrast_temperature: Its temperature.
        view_offset: Its second view is centred up to this many pixels away.

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
                   fdc_weight=fdc_weight, lr=lr, contrast_weight=contrast_weight,
                   contrast_temperature=contrast_temperature,
                   view_offset=view_offset)  # validates the options with its messages
    t0 = time.perf_counter()
    dev = next(net.parameters()).device
    # Seed the decoders without disturbing the caller's random stream.
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(seed)
        model = MaskedS2Former(net, decoder_dim, decoder_depth, fdc_weight, fdc_hf_gain,
                               spectral_loss_weight, contrast_weight, contrast_temperature)
    fresh = [m for m in (model.decoder_sp, model.decoder_se, getattr(model, "decoder_proj", None))
             if m is not None]
    for m in fresh:
        m.to(dev)
    data = PretrainData([scene], net, device=dev, stats=None if stats is None else [stats])

    head = net.get_classifier() if hasattr(net, "get_classifier") else None
    head_ids = {id(p) for p in head.parameters()} if isinstance(head, nn.Module) else set()
    skip = list(net.no_weight_decay()) if hasattr(net, "no_weight_decay") else []
    enc = [dict(g, params=[p for p in g["params"] if id(p) not in head_ids], kind="encoder")
           for g in weight_decay_groups(net, weight_decay, skip)]
    dec = [p for m in fresh for p in m.parameters()]
    optimizer = torch.optim.AdamW(
        enc + [{"params": dec, "weight_decay": weight_decay, "kind": "decoder"}],
        lr=lr, betas=(0.9, 0.95))
    trainable = [p for g in optimizer.param_groups for p in g["params"]]

    def sample(step: int) -> list[SubBatch]:
        return data.sample(step, seed, batch_size, mask_ratio, spectral_mask_ratio,
                           view_offset=view_offset if contrast_weight > 0 else None)

    held_out = [sample(_EVAL_STEP + i) for i in range(max(1, eval_batches))]
    was_training = net.training
    before = _eval_terms(model, held_out)
    warm = max(1, steps // 2)
    curve: list[float] = []
    bar = None
    if progress:
        from hsizoo.runtime.progress import progress_bar

        bar = progress_bar(total=steps, desc="adapt", unit="step", leave=False, dynamic_ncols=True)
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
                fdc_weight=fdc_weight, contrast_weight=contrast_weight, first_loss=curve[0], last_loss=curve[-1],
                loss_curve=curve, eval_before=before, eval_after=after,
                seconds=time.perf_counter() - t0)
