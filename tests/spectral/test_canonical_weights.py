"""canonical_weights (torch ops, run inside the models' graphs) against a plain per-point loop:
the same weights to the bit, for every sensor preset and for random band sets."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hsizoo.spectral.grid import canonical_resampler, canonical_weights, make_grid
from hsizoo.spectral.sensors import get_sensor, list_sensors

GRID = (400.0, 2500.0, 10.0)


def loop_reference(wl: np.ndarray, grid=GRID, max_gap: float | None = None):
    """The resampling rules one grid point at a time (hsizoo's original numpy implementation)."""
    wl = np.array([float(round(v, 4)) for v in wl])
    lams, step = make_grid(grid), grid[2]
    if max_gap is None:
        spacing = np.median(np.diff(wl)) if wl.size > 1 else step
        max_gap = float(max(3.0 * spacing, 2.5 * step))
    W = np.zeros((lams.size, wl.size))
    present = np.zeros(lams.size, dtype=bool)
    for g, lam in enumerate(lams):
        inside = np.nonzero(np.abs(wl - lam) <= step / 2)[0]
        hi = int(np.searchsorted(wl, lam))
        if inside.size >= 2:
            W[g, inside] = 1.0 / inside.size
        elif hi < wl.size and wl[hi] == lam:
            W[g, hi] = 1.0
        elif 0 < hi < wl.size:
            lo = hi - 1
            if wl[hi] - wl[lo] <= max_gap:
                t = (lam - wl[lo]) / (wl[hi] - wl[lo])
                W[g, lo], W[g, hi] = 1.0 - t, t
            elif min(lam - wl[lo], wl[hi] - lam) <= step / 2:
                W[g, lo if lam - wl[lo] <= wl[hi] - lam else hi] = 1.0
            else:
                continue
        else:
            edge = 0 if hi == 0 else wl.size - 1
            if abs(wl[edge] - lam) > step / 2:
                continue
            W[g, edge] = 1.0
        present[g] = True
    return W.astype(np.float32), present


def _band_sets() -> list[np.ndarray]:
    sets = [get_sensor(s).wavelengths for s in list_sensors()]
    sets += [np.linspace(400, 2500, 211), np.linspace(430, 860, 103), np.array([700.0]),
             np.array([395.0, 405.0, 2496.0, 2505.0]), np.array([400.0, 2500.0])]
    rng = np.random.default_rng(0)
    for _ in range(40):
        lo = rng.uniform(300, 2400)
        wl = np.unique(np.round(np.sort(rng.uniform(lo, lo + rng.uniform(5, 2500),
                                                    int(rng.integers(1, 300)))), 3))
        if rng.random() < 0.3:
            wl = np.unique(np.round(wl / 5) * 5)  # ties on grid points and cell edges
        if rng.random() < 0.3:
            wl = wl[(wl < 1300) | (wl > 1500)]  # a removed absorption band range
        if wl.size:
            sets.append(wl)
    return sets


@pytest.mark.parametrize("max_gap", [None, 25.0])
def test_torch_weights_equal_the_loop_to_the_bit(max_gap: float | None) -> None:
    for wl in _band_sets():
        W_ref, p_ref = loop_reference(wl, max_gap=max_gap)
        for dtype in (torch.float64, torch.float32):
            if dtype == torch.float32 and not np.array_equal(wl, wl.astype(np.float32)):
                continue  # float32 wavelengths are other wavelengths
            W, present = canonical_weights(torch.tensor(wl, dtype=dtype), GRID, max_gap)
            np.testing.assert_array_equal(W.numpy(), W_ref)
            np.testing.assert_array_equal(present.numpy(), p_ref)


def test_numpy_api_is_the_same_computation() -> None:
    wl = get_sensor("aviris_indian_pines").wavelengths
    res = canonical_resampler(wl)
    W, present = canonical_weights(torch.tensor(wl))
    assert np.array_equal(res.weights, W.numpy()) and np.array_equal(res.present, present.numpy())
