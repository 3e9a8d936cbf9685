"""Spatial regularisation of class-probability maps.

Neighbouring pixels of a scene mostly share their class, so a per-patch classifier's isolated
errors are removed by averaging each pixel's probabilities with its neighbours'. Two filters:

* :func:`smooth_probabilities`: a Gaussian over valid pixels (normalised convolution). Cheap,
  streamable window by window, but it also averages across field boundaries.
* :func:`guided_filter`: the edge-preserving guided filter (He, Sun and Tang, "Guided Image
  Filtering", TPAMI 2013), guided by the scene's first principal component
  (:func:`principal_guide`): inside a window the output is a linear function of the guide, so
  probabilities follow the scene's own edges. Its use on hyperspectral probability maps is the
  "edge-preserving filtering" of Kang, Li and Benediktsson (TGRS 2014).

Both return float32 maps whose rows sum to 1 on valid pixels and are 0 elsewhere.
"""
from __future__ import annotations

import numpy as np

__all__ = ["guided_filter", "principal_guide", "smooth_probabilities", "smoothing_radius"]


def smoothing_radius(sigma: float) -> int:
    """Pixels a Gaussian of ``sigma`` reaches (scipy's default truncation at 4 sigma)."""
    return int(4.0 * float(sigma) + 0.5) if sigma and sigma > 0 else 0


def smooth_probabilities(probs: np.ndarray, valid: np.ndarray, sigma: float) -> np.ndarray:
    """Spatially regularise a (h, w, K) probability map with a Gaussian over valid pixels.

    Neighbouring pixels of a scene mostly share their class, so averaging each pixel's class
    probabilities with its neighbours' (normalised convolution: invalid pixels carry no weight)
    removes isolated errors of a per-patch classifier. Classic, cheap and switchable
    (``sigma=0`` turns it off); benchmarks/finetune_bench.py measures what it adds.

    Args:
        probs: (h, w, K) probabilities, anything on invalid pixels.
        valid: (h, w) bool.
        sigma: Gaussian standard deviation in pixels; 0 returns ``probs`` unchanged.

    Returns:
        (h, w, K) float32 probabilities (rows sum to 1 on valid pixels, 0 elsewhere).
    """
    if not sigma or sigma <= 0:
        return probs
    from scipy.ndimage import gaussian_filter

    v = valid.astype(np.float32)
    num = gaussian_filter(probs.astype(np.float32) * v[..., None], sigma=(sigma, sigma, 0),
                          mode="constant", truncate=4.0)
    den = gaussian_filter(v, sigma=sigma, mode="constant", truncate=4.0)
    out = num / np.maximum(den, 1e-12)[..., None]
    out[~valid] = 0.0
    return out.astype(np.float32)


def principal_guide(cube: np.ndarray, valid: np.ndarray, max_samples: int = 20000) -> np.ndarray:
    """The scene's first principal component as a guide image in [0, 1].

    Bands are standardised over the valid pixels; the component is fitted on at most
    ``max_samples`` of them (evenly strided) and scaled so that its 1st and 99th percentiles map
    to 0 and 1 (clipped). Invalid pixels are 0.

    Args:
        cube: (H, W, B) scene.
        valid: (H, W) bool.
        max_samples: Pixels used to fit the component.

    Returns:
        (H, W) float64 guide.
    """
    valid = np.asarray(valid, dtype=bool)
    x = np.asarray(cube, dtype=np.float64)[valid]
    if x.shape[0] < 2:
        return np.zeros(valid.shape)
    from hsizoo.method.pca import principal_components

    x = (x - x.mean(0)) / np.maximum(x.std(0), 1e-12)
    pc = principal_components(x, 1, max_samples)[:, 0]
    lo, hi = np.percentile(pc, [1, 99])
    out = np.zeros(valid.shape)
    out[valid] = np.clip((pc - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    return out


def guided_filter(probs: np.ndarray, guide: np.ndarray, valid: np.ndarray, radius: int = 4,
                  eps: float = 1e-3) -> np.ndarray:
    """Edge-preserving smoothing of a (h, w, K) probability map, guided by a (h, w) image.

    In every (2r + 1)^2 window the output is ``a * guide + b`` with (a, b) the least-squares fit
    of the probabilities to the guide, regularised by ``eps`` (a larger eps smooths more across
    edges); the fits of overlapping windows are averaged. Box means run over valid pixels only.
    Negative outputs are clipped and each pixel renormalised.

    Args:
        probs: (h, w, K) probabilities (anything on invalid pixels).
        guide: (h, w) guide image, e.g. :func:`principal_guide`, in [0, 1].
        valid: (h, w) bool.
        radius: Window radius r in pixels; 0 returns ``probs`` unchanged.
        eps: Regularisation of the fit (in squared guide units).

    Returns:
        (h, w, K) float32 probabilities.
    """
    if radius <= 0:
        return probs
    from scipy.ndimage import uniform_filter

    m = np.asarray(valid, dtype=np.float64)
    size = 2 * int(radius) + 1
    den = np.maximum(uniform_filter(m, size, mode="constant"), 1e-12)

    def box(a: np.ndarray) -> np.ndarray:
        if a.ndim == 3:
            return uniform_filter(a * m[..., None], (size, size, 1), mode="constant") \
                / den[..., None]
        return uniform_filter(a * m, size, mode="constant") / den

    g = np.asarray(guide, dtype=np.float64)
    p = np.asarray(probs, dtype=np.float64)
    mean_g = box(g)
    var_g = box(g * g) - mean_g ** 2
    mean_p = box(p)
    a = (box(g[..., None] * p) - mean_g[..., None] * mean_p) / (var_g[..., None] + float(eps))
    b = mean_p - a * mean_g[..., None]
    q = np.clip(box(a) * g[..., None] + box(b), 0.0, None)
    q /= np.maximum(q.sum(-1, keepdims=True), 1e-12)
    q[~np.asarray(valid, dtype=bool)] = 0.0
    return q.astype(np.float32)
