"""Reconstruction and frequency-domain-constraint losses (hsizoo.method.losses)."""
from __future__ import annotations

import math

import pytest
import torch

from hsizoo.method import losses as L


def test_frequency_weights_rise_from_dc_to_nyquist() -> None:
    w = L.frequency_weights_1d(16, hf_gain=1.0)
    assert w.shape == (9,)
    assert w[0] == pytest.approx(1.0) and w[-1] == pytest.approx(2.0)
    assert torch.all(w[1:] > w[:-1])
    w2 = L.frequency_weights_2d(5, 5, hf_gain=3.0)
    assert w2.shape == (5, 3)
    assert w2[0, 0] == pytest.approx(1.0)
    assert w2.max() > 3.0 and w2.max() <= 4.0 + 1e-6
    assert torch.allclose(L.frequency_weights_1d(10, hf_gain=0.0), torch.ones(6))


def test_masked_mse_and_ratio_give_exact_means_over_parts() -> None:
    pred = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    target = torch.zeros(2, 2)
    w = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    s, n = L.masked_mse(pred, target, w)
    assert s.item() == pytest.approx(1 + 9 + 16) and n.item() == 3
    # Two parts combine into the mean over all their elements, not the mean of means.
    s2, n2 = L.masked_mse(torch.tensor([2.0]), torch.zeros(1), torch.ones(1))
    assert L.ratio([(s, n), (s2, n2)]).item() == pytest.approx((26 + 4) / 4)


def _tone(n: int, k: int) -> torch.Tensor:
    return torch.cos(2 * math.pi * k * torch.arange(n) / n)


def test_spectral_fft_loss_weighs_high_frequency_errors_more() -> None:
    n = 64
    target = torch.zeros(1, n)
    present = torch.ones(n, dtype=torch.bool)
    low = L.ratio([L.spectral_fft_loss(target + 0.1 * _tone(n, 2), target, present)])
    high = L.ratio([L.spectral_fft_loss(target + 0.1 * _tone(n, 30), target, present)])
    assert low > 0 and high > 1.5 * low  # equal energy, near-Nyquist error costs more
    # hf_gain=0: frequency-blind, equal-energy errors cost the same.
    flat_lo = L.ratio([L.spectral_fft_loss(target + 0.1 * _tone(n, 2), target, present, 0.0)])
    flat_hi = L.ratio([L.spectral_fft_loss(target + 0.1 * _tone(n, 30), target, present, 0.0)])
    assert flat_hi.item() == pytest.approx(flat_lo.item(), rel=1e-4)


def test_spectral_fft_loss_ignores_missing_grid_points() -> None:
    g = torch.Generator().manual_seed(0)
    target = torch.randn(4, 40, generator=g)
    present = torch.ones(40, dtype=torch.bool)
    present[10:18] = False
    target = target * present  # canonicalize writes 0 at missing points
    pred = target + 5.0 * (~present)  # wrong only where the sensor measured nothing
    s, _ = L.spectral_fft_loss(pred, target, present)
    assert s.item() == pytest.approx(0.0, abs=1e-4)
    s_bad, _ = L.spectral_fft_loss(pred + 0.1 * present, target, present)
    assert s_bad.item() > 0.1


def test_spatial_fft_loss_high_frequency_and_channel_weights() -> None:
    P = 9
    target = torch.zeros(1, 2, P, P)
    yy, xx = torch.meshgrid(torch.arange(P), torch.arange(P), indexing="ij")
    smooth = torch.cos(2 * math.pi * xx / P)[None, None].repeat(1, 2, 1, 1) * 0.1
    checker = ((-1.0) ** (xx + yy))[None, None].repeat(1, 2, 1, 1) * 0.1
    cw = torch.ones(2)
    lo = L.ratio([L.spatial_fft_loss(target + smooth, target, cw)])
    hi = L.ratio([L.spatial_fft_loss(target + checker, target, cw)])
    assert lo > 0 and hi > 1.3 * lo
    # A channel with weight 0 (a missing grid point) contributes nothing.
    pred = target.clone()
    pred[:, 1] += checker[:, 1]
    s, n = L.spatial_fft_loss(pred, target, torch.tensor([1.0, 0.0]))
    assert s.item() == 0.0 and n.item() > 0
