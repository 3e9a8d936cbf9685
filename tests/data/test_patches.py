"""The padded scene of hsizoo.data.patches: built in place, equal to torch's padding of the
masked, cleaned cube (reflection, or replication when the scene is smaller than the pad)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hsizoo.data.patches import prepare_cube


def _reference(cube: np.ndarray, valid: np.ndarray | None, P: int) -> torch.Tensor:
    x = torch.as_tensor(cube.astype(np.float32))
    if valid is not None:
        x = x * torch.as_tensor(valid, dtype=torch.float32)[..., None]
    x = torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0).permute(2, 0, 1)[None]
    r = P // 2
    mode = "reflect" if min(x.shape[-2:]) > r else "replicate"
    return F.pad(x, (r, r, r, r), mode=mode)[0]


@pytest.mark.parametrize("h,w,P", [(13, 11, 5), (4, 9, 7), (3, 3, 7), (8, 8, 9), (20, 17, 3)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_padded_cube_equals_torch_padding(h: int, w: int, P: int, dtype) -> None:
    rng = np.random.default_rng(h * w + P)
    cube = rng.normal(size=(h, w, 6)).astype(dtype)
    cube[1, 2, 3], cube[0, 0, 0] = np.nan, np.inf
    valid = rng.random((h, w)) > 0.2
    for v in (None, valid):
        out = prepare_cube(cube, v, P)
        assert out.dtype == torch.float32 and out.shape == (6, h + P - 1, w + P - 1)
        assert torch.equal(out, _reference(cube, v, P))
    assert np.isnan(cube[1, 2, 3])  # the caller's cube is not modified
