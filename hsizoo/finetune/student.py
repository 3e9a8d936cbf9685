"""Stage 3 of fine-tuning, the student: full fine-tuning with DAFT against the teacher.

Layer-wise learning-rate decay on class-balanced shots and pseudo-labels, with DAFT's
diffusion-noised feature alignment and prediction agreement against an EMA teacher
(:mod:`hsizoo.method.daft`). At each refresh the teacher classifies the scene once (shared
computation) and the pseudo-labels are renewed (:mod:`hsizoo.finetune.pseudo`).
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from hsizoo.data.patches import gather_patches
from hsizoo.finetune.prepare import Prepared
from hsizoo.finetune.pseudo import PseudoLabels
from hsizoo.finetune.recipe import FinetuneRecipe
from hsizoo.finetune.training import augment, layer_decay_optimizer
from hsizoo.method.daft import Teacher, cosine_alpha_bar, daft_losses
from hsizoo.runtime.device import autocast, grad_scaler
from hsizoo.runtime.optim import set_step_lr, warmup_cosine

__all__ = ["scene_embeddings", "scene_outputs", "train_student"]


def scene_embeddings(net: torch.nn.Module, padded: torch.Tensor, valid: np.ndarray,
                     wavelengths: np.ndarray, precision: str = "fp32") -> torch.Tensor:
    """Pooled embeddings (N_valid, D) of the valid pixels, one shared-computation pass."""
    from hsizoo.predict.engine import SharedPredictor

    rows, cols = np.nonzero(valid)
    return SharedPredictor(net, wavelengths, 1024, precision).predict_padded(
        padded, rows, cols, pre_logits=True)


def scene_outputs(net: torch.nn.Module, padded: torch.Tensor, valid: np.ndarray,
                  wavelengths: np.ndarray, sigma: float, precision: str = "fp32"
                  ) -> tuple[np.ndarray, np.ndarray]:
    """One shared-computation pass over the valid pixels: (embeddings, smoothed probabilities)."""
    from hsizoo.method.smoothing import smooth_probabilities

    rows, cols = np.nonzero(valid)
    feats = scene_embeddings(net, padded, valid, wavelengths, precision)
    with torch.inference_mode():
        probs = net.head(feats.to(next(net.parameters()).device)).softmax(1).cpu().numpy()
    grid = np.zeros(valid.shape + (probs.shape[1],), np.float32)
    grid[rows, cols] = probs
    return feats.numpy(), smooth_probabilities(grid, valid, sigma)[rows, cols]


def _batch(inputs: Prepared, recipe: FinetuneRecipe, pseudo: PseudoLabels | None,
           by_class: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """One step's class-balanced shots, unlabelled patches and pseudo-labelled patches."""
    gen, P, y, cfg = inputs.gen, inputs.patch_size, inputs.y, recipe.daft
    # Class-balanced sampling: each class equally likely, then a shot of that class.
    cls_pick = torch.randint(0, len(by_class), (recipe.batch_size,), generator=gen)
    pick = torch.stack([by_class[k][torch.randint(0, by_class[k].numel(), (1,),
                                                  generator=gen)][0] for k in cls_pick])
    xb, yb = augment(inputs.x_lab[pick], gen), y[pick]
    ur, uc = inputs.unlabelled
    xu = None
    if cfg.enabled and cfg.use_unlabelled and ur.size > 0 and cfg.unlabelled_batch > 0 \
            and (cfg.align_weight > 0 or cfg.agree_weight > 0):
        ui = inputs.rng.integers(0, ur.size, cfg.unlabelled_batch)
        xu = augment(gather_patches(inputs.padded, ur[ui], uc[ui], P), gen)
    xp = yp = None
    if pseudo is not None and pseudo.available:
        n = recipe.batch_size if recipe.pseudo_batch_size is None else recipe.pseudo_batch_size
        pi = torch.randint(0, pseudo.rc[0].size, (n,), generator=gen)
        rows, cols = pseudo.rc[0][pi.numpy()], pseudo.rc[1][pi.numpy()]
        xp, yp = augment(gather_patches(inputs.padded, rows, cols, P), gen), pseudo.y[pi]
    return tuple(None if t is None else t.to(inputs.device) for t in (xb, yb, xu, xp, yp))


def train_student(inputs: Prepared, recipe: FinetuneRecipe, pseudo: PseudoLabels | None,
                  t_start: float) -> dict[str, Any]:
    """Fine-tune ``inputs.net`` in place; returns the history of the run (steps, loss curve)."""
    from hsizoo.runtime.progress import progress_bar

    net, cfg, dev, precision = inputs.net, recipe.daft, inputs.device, inputs.precision
    teacher = Teacher(net, cfg.teacher, cfg.ema_decay) if cfg.enabled else None
    alpha_bar = cosine_alpha_bar(cfg.timesteps)
    opt = layer_decay_optimizer(net, recipe.lr, recipe.layer_decay, recipe.weight_decay)
    schedule = warmup_cosine(opt, recipe.steps)
    scaler = grad_scaler(dev, precision)
    steps, rounds = recipe.steps, recipe.pseudo_rounds
    refresh = {int(steps * (i + 1) / (rounds + 1)) for i in range(rounds)} \
        if pseudo is not None else set()
    by_class = [ix for ix in (torch.nonzero(inputs.y == k).view(-1)
                              for k in range(inputs.num_classes)) if ix.numel() > 0]
    curve: list[float] = []
    net.train()
    bar = progress_bar(range(steps), disable=not recipe.progress, desc="finetune", leave=False)
    for step in bar:
        if recipe.time_budget is not None and time.perf_counter() - t_start > recipe.time_budget:
            break
        if step in refresh and teacher is not None:
            pseudo.refresh(*scene_outputs(teacher.model, inputs.padded, inputs.scene.valid,
                                          inputs.wavelengths, recipe.smooth_sigma, precision))
            net.train()
        # The schedule follows the step count, also past a step fp16's scaler skipped.
        set_step_lr(schedule, step)
        xb, yb, xu, xp, yp = _batch(inputs, recipe, pseudo, by_class)
        with autocast(dev, precision):
            loss, terms = daft_losses(net, teacher, xb, yb, xu, inputs.wavelengths, cfg,
                                      alpha_bar, xp, yp, recipe.label_smoothing)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        scaler.step(opt)
        scaler.update()
        if teacher is not None:
            teacher.update(net)
        curve.append(float(loss.detach()))
        if recipe.progress and step % 10 == 0:
            bar.set_postfix({k: f"{v:.3f}" for k, v in terms.items()})
    bar.close()
    net.eval()
    return dict(steps_done=len(curve), loss_curve=curve, final_loss=curve[-1] if curve else None)
