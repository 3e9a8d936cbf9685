"""hsizoo: a PyTorch model zoo for hyperspectral image classification.

S2Former backbones pretrained without labels (masked reconstruction with a frequency-domain
constraint) and few-shot DAFT fine-tuning, after arXiv 2601.18088. Importing hsizoo registers its
models in timm's registry, so ``timm.create_model("s2former_base")`` works too.
"""
from __future__ import annotations

__version__ = "0.1.0"

from . import models  # noqa: F401  (registers models with timm)
from .io.scene import Scene
from .models import S2Former

__all__ = ["__version__", "S2Former", "Scene"]
