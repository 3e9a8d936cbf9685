"""Small synthetic scenes shared by the tests."""
from __future__ import annotations

import numpy as np

from hsizoo.io import Scene

WL = np.linspace(450.0, 2300.0, 12)


def three_class_scene(h: int = 20, w: int = 18, seed: int = 0) -> Scene:
    """Three classes in bands of columns, each with its own spectral shape, plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((h, w), np.int64)
    labels[:, : w // 3], labels[:, w // 3: 2 * w // 3], labels[:, 2 * w // 3:] = 1, 2, 3
    x = np.linspace(0, 1, WL.size)
    spectra = np.stack([1 + x, 2 - x, 1 + np.sin(6 * x)])
    cube = spectra[labels - 1] + rng.normal(0, 0.15, (h, w, WL.size))
    return Scene(cube=cube.astype(np.float32), wavelengths=WL, labels=labels,
                 class_names=["rising", "falling", "wavy"])
