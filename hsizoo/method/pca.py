"""The one principal-component projection, shared by the scene graph and the guided filter."""
from __future__ import annotations

import numpy as np

__all__ = ["principal_components"]


def principal_components(x: np.ndarray, n: int, max_fit_rows: int | None = None,
                         dtype: type = np.float64, block_rows: int = 65536) -> np.ndarray:
    """Centred rows of ``x`` projected on their ``n`` leading principal axes.

    The axes are the eigenvectors of the d x d covariance (a cost linear in the number of rows),
    fitted on at most ``max_fit_rows`` evenly strided rows when given. Signs of the axes are
    arbitrary, as in any PCA; distances between projected rows do not depend on them. The rows
    are read ``block_rows`` at a time (float64 inside each block), so memory beyond ``x`` and the
    result stays bounded: a 2000 x 2000 x 200 scene is not copied to float64 (6.4 GB) twice.

    Args:
        x: (N, d) rows.
        n: Components kept (at most d and N - 1).
        max_fit_rows: Rows used to fit the axes (None = all).
        dtype: dtype of the result.
        block_rows: Rows per block.

    Returns:
        (N, n) projections.
    """
    x = np.asarray(x)
    N, d = x.shape
    blocks = range(0, N, max(1, int(block_rows)))
    mean = sum(x[i:i + block_rows].sum(0, dtype=np.float64) for i in blocks) / max(1, N)
    fit = x if max_fit_rows is None else x[:: max(1, N // int(max_fit_rows))]
    cov = np.zeros((d, d))
    for i in range(0, fit.shape[0], max(1, int(block_rows))):
        c = fit[i:i + block_rows].astype(np.float64) - mean
        cov += c.T @ c
    n = min(n, d, max(1, fit.shape[0] - 1))
    _, vecs = np.linalg.eigh(cov / max(1, fit.shape[0] - 1))
    axes = vecs[:, ::-1][:, :n]
    out = np.empty((N, n), dtype=dtype)
    for i in blocks:
        out[i:i + block_rows] = (x[i:i + block_rows].astype(np.float64) - mean) @ axes
    return out
