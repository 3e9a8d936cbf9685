"""The one patch extractor: P x P neighbourhoods around pixels of a standardised scene.

Patch models classify a pixel from its P x P neighbourhood. Scenes are padded by reflection so
edge pixels have full patches; invalid pixels inside a patch are zero (the standardised mean),
never NaN.
"""
from __future__ import annotations

import numpy as np
import torch
from einops import rearrange


def prepare_cube(cube: np.ndarray, valid: np.ndarray | None, patch_size: int) -> torch.Tensor:
    """Standardised (H, W, B) cube -> padded (B, H + 2r, W + 2r) float32 tensor, r = P // 2.

    Args:
        cube: Standardised scene (see :func:`hsizoo.spectral.grid.band_stats`).
        valid: (H, W) validity mask; invalid pixels are set to 0 before padding.
        patch_size: P (odd).

    Returns:
        The padded tensor, bands first.
    """
    if patch_size % 2 == 0:
        raise ValueError(f"patch_size must be odd, got {patch_size}.")
    r = patch_size // 2
    h, w = np.shape(cube)[:2]
    if min(h, w) <= r:
        # Reflection needs the pad to be smaller than the side; tiny scenes are replicated.
        x = torch.as_tensor(np.ascontiguousarray(cube), dtype=torch.float32)
        if valid is not None:
            x = x * torch.as_tensor(np.asarray(valid), dtype=torch.float32)[..., None]
        x = rearrange(torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0), "h w b -> 1 b h w")
        return torch.nn.functional.pad(x, (r, r, r, r), mode="replicate")[0]
    # One output allocation, filled in place: a scene of several GB is not copied three more
    # times (masked, cleaned, padded). Same values as torch's reflection padding.
    out = torch.empty((np.shape(cube)[2], h + 2 * r, w + 2 * r), dtype=torch.float32)
    core = out[:, r:r + h, r:r + w]
    core.copy_(rearrange(torch.as_tensor(np.asarray(cube)), "h w b -> b h w"))
    if valid is not None:
        core.mul_(torch.as_tensor(np.asarray(valid), dtype=torch.float32))
    torch.nan_to_num_(core, nan=0.0, posinf=0.0, neginf=0.0)
    for p in range(r):  # columns of the core rows, then whole rows (corners reflect twice)
        out[:, r:r + h, p] = out[:, r:r + h, 2 * r - p]
        out[:, r:r + h, r + w + p] = out[:, r:r + h, r + w - 2 - p]
    for p in range(r):
        out[:, p] = out[:, 2 * r - p]
        out[:, r + h + p] = out[:, r + h - 2 - p]
    return out


def gather_patches(padded: torch.Tensor, rows: np.ndarray | torch.Tensor,
                   cols: np.ndarray | torch.Tensor, patch_size: int) -> torch.Tensor:
    """Patches centred on (rows, cols) of the unpadded grid from a :func:`prepare_cube` tensor.

    Args:
        padded: (B, H + 2r, W + 2r) tensor.
        rows: (N,) row indices in the unpadded scene.
        cols: (N,) column indices in the unpadded scene.
        patch_size: P.

    Returns:
        (N, B, P, P) patches.
    """
    rows = torch.as_tensor(np.asarray(rows), dtype=torch.long, device=padded.device)
    cols = torch.as_tensor(np.asarray(cols), dtype=torch.long, device=padded.device)
    off = torch.arange(patch_size, device=padded.device)
    # Row r of the unpadded grid is row r + radius of the padded one, so the patch starts at r.
    rr = (rows[:, None] + off[None, :])[:, :, None]  # (N, P, 1)
    cc = (cols[:, None] + off[None, :])[:, None, :]  # (N, 1, P)
    return rearrange(padded[:, rr, cc], "b n p q -> n b p q")
