"""Reconstruction losses of masked pretraining and the frequency-domain constraint (FDC).

DESIGN.md, "S2Former: our reading of the paper", item 5: besides the pixel-domain reconstruction
loss, prediction and target are compared after a real FFT, along the canonical spectral axis
(:func:`torch.fft.rfft`) and over the P x P patch (:func:`torch.fft.rfft2`), as the difference of
their magnitudes weighted towards high frequencies, which carry edges and narrow absorption
features.

Weighting. A frequency bin at normalised frequency ``f`` in [0, 1] (0 = DC, 1 = Nyquist; for the
2-D transform the radial frequency ``sqrt(fy^2 + fx^2) / sqrt(2)``) gets the weight
``1 + hf_gain * f``: with the default ``hf_gain=1`` the Nyquist bin counts twice the DC bin. The
weighted sum is divided by the sum of the weights, so ``hf_gain`` changes where the loss looks,
not its scale. Transforms use ``norm="ortho"``, so magnitudes are on the scale of the data.

Missing canonical points. Grid points a sensor does not cover are 0 in the canonical spectrum
(:meth:`hsizoo.models.S2Former.canonicalize`). The spectral FFT zeroes them in *both* the
prediction and the target before transforming, so the constraint compares only what the sensor
measured: a prediction that equals the target on every covered point has zero FDC loss, whatever
it predicts on gaps. Whole missing channels are likewise zero in both patches of the 2-D
transform and are excluded from its average.

All losses return ``(sum, weight)`` pairs so that sub-batches of different sensors (different
covered points) can be combined into one exact mean: ``sum(sums) / sum(weights)``.
"""
from __future__ import annotations

import torch

__all__ = [
    "frequency_weights_1d",
    "frequency_weights_2d",
    "masked_mse",
    "spectral_fft_loss",
    "spatial_fft_loss",
    "ratio",
]


def ratio(parts: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """Combine ``(sum, weight)`` pairs into one mean (0 when there is no weight at all)."""
    total = torch.stack([p[0] for p in parts]).sum()
    weight = torch.stack([p[1].to(total.dtype) for p in parts]).sum()
    return total / weight.clamp_min(1e-12)


def frequency_weights_1d(n: int, hf_gain: float = 1.0, device: torch.device | None = None
                         ) -> torch.Tensor:
    """Weights ``1 + hf_gain * f`` of the ``n // 2 + 1`` bins of an rFFT of length ``n``.

    Args:
        n: Length of the transformed signal.
        hf_gain: Extra weight at the Nyquist frequency relative to DC (0 = flat).
        device: Device of the result.

    Returns:
        (n // 2 + 1,) float32 weights.
    """
    k = torch.arange(n // 2 + 1, dtype=torch.float32, device=device)
    f = k / max(n / 2.0, 1.0)
    return 1.0 + hf_gain * f


def frequency_weights_2d(h: int, w: int, hf_gain: float = 1.0,
                         device: torch.device | None = None) -> torch.Tensor:
    """Weights ``1 + hf_gain * f_radial`` of the (h, w // 2 + 1) bins of an rfft2.

    Args:
        h: Height of the transformed patch.
        w: Width of the transformed patch.
        hf_gain: Extra weight at the highest radial frequency relative to DC.
        device: Device of the result.

    Returns:
        (h, w // 2 + 1) float32 weights.
    """
    fy = torch.fft.fftfreq(h, device=device).abs() / 0.5  # in [0, 1]
    fx = torch.fft.rfftfreq(w, device=device) / 0.5
    radial = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2) / (2.0 ** 0.5)
    return 1.0 + hf_gain * radial.float()


def masked_mse(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared error summed over the elements where ``weight`` is non-zero.

    Args:
        pred: Prediction, any shape.
        target: Target, broadcastable to ``pred``.
        weight: 0/1 (or real) weights broadcastable to ``pred``.

    Returns:
        (sum of weighted squared errors, sum of weights), for :func:`ratio`.
    """
    weight = torch.broadcast_to(weight.to(pred.dtype), pred.shape)
    return ((pred - target) ** 2 * weight).sum(), weight.sum()


def spectral_fft_loss(pred: torch.Tensor, target: torch.Tensor, present: torch.Tensor,
                      hf_gain: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """High-frequency-weighted magnitude difference of spectra along the canonical axis.

    Args:
        pred: (N, G) predicted canonical spectra.
        target: (N, G) target canonical spectra.
        present: (G,) or (N, G) bool, covered grid points; the others are zeroed in both.
        hf_gain: See :func:`frequency_weights_1d`.

    Returns:
        (sum of weighted |\\|F(pred)\\| - \\|F(target)\\||, sum of weights), for :func:`ratio`.
    """
    if pred.shape[0] == 0:
        zero = pred.float().sum() * 0.0
        return zero, zero.detach()
    # FFTs in float32 whatever the autocast (cuFFT has no bf16, and fp16 only for powers of 2).
    pred, target = pred.float(), target.float()
    keep = present.to(pred.dtype)
    fp = torch.fft.rfft(pred * keep, dim=-1, norm="ortho").abs()
    ft = torch.fft.rfft(target * keep, dim=-1, norm="ortho").abs()
    w = frequency_weights_1d(pred.shape[-1], hf_gain, pred.device).to(pred.dtype)
    w = w.expand_as(fp)
    return ((fp - ft).abs() * w).sum(), w.sum()


def spatial_fft_loss(pred: torch.Tensor, target: torch.Tensor, channel_weight: torch.Tensor,
                     hf_gain: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """High-frequency-weighted magnitude difference of patches after an rfft2 over (P, P).

    Args:
        pred: (B, G, P, P) reconstructed patches (the caller composites visible pixels from the
            target, so only reconstructed pixels can differ).
        target: (B, G, P, P) target patches.
        channel_weight: (G,) or (B, G) weights of the channels (0 for missing grid points).
        hf_gain: See :func:`frequency_weights_2d`.

    Returns:
        (sum of weighted magnitude differences, sum of weights), for :func:`ratio`.
    """
    pred, target = pred.float(), target.float()  # see spectral_fft_loss
    fp = torch.fft.rfft2(pred, norm="ortho").abs()
    ft = torch.fft.rfft2(target, norm="ortho").abs()
    w = frequency_weights_2d(pred.shape[-2], pred.shape[-1], hf_gain, pred.device).to(pred.dtype)
    cw = channel_weight.to(pred.dtype)
    cw = cw.view(1, -1, 1, 1) if cw.ndim == 1 else cw[..., None, None]
    full = torch.broadcast_to(w * cw, fp.shape)
    return ((fp - ft).abs() * full).sum(), full.sum()
