"""The one principal-component projection, shared by the scene graph and the guided filter."""
from __future__ import annotations

import numpy as np

__all__ = ["principal_components"]


def principal_components(x: np.ndarray, n: int, max_fit_rows: int | None = None) -> np.ndarray:
    """Centred rows of ``x`` projected on their ``n`` leading principal axes.

    The axes are the eigenvectors of the d x d covariance (a cost linear in the number of rows),
    fitted on at most ``max_fit_rows`` evenly strided rows when given. Signs of the axes are
    arbitrary, as in any PCA; distances between projected rows do not depend on them.

    Args:
        x: (N, d) rows.
        n: Components kept (at most d and N - 1).
        max_fit_rows: Rows used to fit the axes (None = all).

    Returns:
        (N, n) float64 projections.
    """
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean(0)
    fit = x if max_fit_rows is None else x[:: max(1, x.shape[0] // int(max_fit_rows))]
    n = min(n, x.shape[1], max(1, fit.shape[0] - 1))
    _, vecs = np.linalg.eigh(fit.T @ fit / max(1, fit.shape[0] - 1))
    return x @ vecs[:, ::-1][:, :n]
