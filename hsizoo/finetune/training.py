"""The few-shot training loop's parts: augmentation, optimiser, head warm-up."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from hsizoo.runtime.device import autocast, resolve_device

__all__ = ["augment", "dihedral", "fit_head", "layer_decay_optimizer", "resolve_device"]


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """One of the 8 flips/rotations of (B, C, P, P) patches; a patch's class does not change."""
    x = torch.rot90(x, k % 4, dims=(2, 3))
    return x.flip(3) if k >= 4 else x


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random flip/rotation per sample, plus a small random brightness scale per sample."""
    ks = torch.randint(0, 8, (x.shape[0],), generator=gen)
    out = torch.empty_like(x)
    for k in range(8):
        sel = ks == k
        if sel.any():
            out[sel] = dihedral(x[sel], k)
    return out


def layer_decay_optimizer(model: nn.Module, lr: float, layer_decay: float,
                          weight_decay: float) -> torch.optim.Optimizer:
    """AdamW with layer-wise learning-rate decay (MAE / BEiT): later blocks and the head learn
    fastest.

    timm builds the groups from the model's ``group_matcher()`` (S2Former: the stem is layer 0,
    block i layer i + 1, the final norms and the head layer depth + 1) with learning rate
    ``lr * layer_decay ** (depth + 1 - layer)``, and no weight decay for 1-D parameters and the
    model's ``no_weight_decay()`` names.

    Args:
        model: The model to train (parameters that do not require gradients are left out).
        lr: Learning rate of the last layer (the final norms and the head).
        layer_decay: Learning-rate factor per layer towards the input.
        weight_decay: AdamW weight decay of the weights with more than one dimension.

    Returns:
        The optimiser; each group's ``lr_scale`` is its layer's factor, which timm's scheduler
        (:func:`hsizoo.runtime.optim.warmup_cosine`) applies to the scheduled rate.
    """
    from timm.optim import create_optimizer_v2

    return create_optimizer_v2(model, "adamw", lr=lr, weight_decay=weight_decay,
                               layer_decay=layer_decay)


@torch.no_grad()
def fit_head(model: nn.Module, x: torch.Tensor, y: torch.Tensor, wavelengths: np.ndarray,
              steps: int, lr: float, label_smoothing: float, precision: str = "fp32") -> float:
    """Head warm-up on frozen features of the 8 dihedral views of every shot.

    The features are computed under ``precision``'s autocast; the head trains in float32.
    """
    model.eval()
    device = next(model.parameters()).device
    x, y = x.to(device), y.to(device)
    with autocast(device, precision):
        feats = torch.cat([model.forward_head(model.forward_features(dihedral(x, k), wavelengths),
                                              pre_logits=True) for k in range(8)])
    feats = feats.float()
    ys = y.repeat(8)
    head = model.head
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-4)
    loss = torch.zeros(())
    with torch.enable_grad():
        for _ in range(steps):
            loss = nn.functional.cross_entropy(head(feats), ys, label_smoothing=label_smoothing)
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.train()
    return float(loss)

