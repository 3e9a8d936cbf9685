"""The few-shot training loop's parts: augmentation, parameter groups, head warm-up."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn

from .._device import autocast, resolve_device

__all__ = ["augment", "dihedral", "fit_head", "param_groups", "resolve_device"]


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


def param_groups(model: nn.Module, lr: float, layer_decay: float, weight_decay: float
                  ) -> list[dict[str, Any]]:
    """Layer-wise learning-rate decay (MAE / BEiT): later blocks and the head learn fastest."""
    depth = len(model.blocks)
    no_wd = model.no_weight_decay() if hasattr(model, "no_weight_decay") else set()
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name.startswith("blocks."):
            layer = int(name.split(".")[1]) + 1
        elif name.startswith(("head", "norm_sp", "norm_se")):
            layer = depth + 1
        else:
            layer = 0
        decay = not (p.ndim == 1 or name in no_wd or name.endswith(".bias"))
        g = groups.setdefault((layer, decay), {
            "params": [], "lr": lr * layer_decay ** (depth + 1 - layer),
            "weight_decay": weight_decay if decay else 0.0})
        g["params"].append(p)
    for g in groups.values():
        g["base_lr"] = g["lr"]
    return list(groups.values())


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

