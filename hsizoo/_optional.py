"""Optional dependencies: import them where they are needed, or say which extra installs them.

hsizoo's core (models, reading scenes, fine-tuning, maps) needs torch, timm, rasterio, numpy and
scipy. The rest is installed with an extra, e.g. ``pip install "hsizoo[plot]"``:

========== ======================== ===============================================
extra      packages                 used by
========== ======================== ===============================================
simulate   earthlib (with pandas)   simulated scenes (``hsizoo demo``, ``simulate_scene``)
plot       matplotlib               quicklook PNGs, loss curves, report figures
matlab     h5py                     MATLAB v7.3 .mat files (v5 files need only scipy)
xarray     xarray, rioxarray        ``hsizoo.io.from_xarray`` / ``to_xarray``
torchgeo   torchgeo                 ``hsizoo.data.torchgeo_dataset``
bench      scikit-learn             the benchmark's SVM and random-forest baselines
export     onnx, onnxscript, ...    ONNX export
========== ======================== ===============================================
"""
from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["EXTRAS", "MissingExtraError", "require"]

#: module -> (extra, pip package)
EXTRAS: dict[str, tuple[str, str]] = {
    "earthlib": ("simulate", "earthlib"),
    "pandas": ("simulate", "pandas"),
    "matplotlib": ("plot", "matplotlib"),
    "h5py": ("matlab", "h5py"),
    "xarray": ("xarray", "xarray"),
    "rioxarray": ("xarray", "rioxarray"),
    "torchgeo": ("torchgeo", "torchgeo"),
    "sklearn": ("bench", "scikit-learn"),
}


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the extra that installs it."""


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` (e.g. ``"matplotlib.pyplot"``), or say which extra installs it.

    Args:
        module: The module to import.
        purpose: What needs it, for the message (e.g. "Writing a quicklook PNG").

    Returns:
        The module.

    Raises:
        MissingExtraError: the package is not installed (an ImportError).
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        top = module.split(".")[0]
        missing = (getattr(err, "name", None) or top).split(".")[0]
        extra, package = EXTRAS.get(missing, EXTRAS.get(top, (None, missing)))
        how = (f'pip install "hsizoo[{extra}]" (or pip install {package})' if extra
               else f"pip install {package}")
        raise MissingExtraError(
            f"{purpose} needs the optional package {package!r}, which is not installed: {how}."
        ) from err
