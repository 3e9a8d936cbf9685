"""Pretrained-weight configuration: timm's PretrainedCfg plus what hsizoo pins and verifies."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from timm.models import PretrainedCfg


@dataclass
class HsiPretrainedCfg(PretrainedCfg):
    """timm's pretrained config with the fields hsizoo needs for honest, offline-first loading.

    Attributes:
        hf_hub_revision: Pinned revision (commit sha, tag or branch) of ``hf_hub_id``.
        sha256: sha256 of ``model.safetensors``; checked after every load.
        sensor: Sensor preset the weights were trained on, when they have one.
        pretraining: Short description of the pretraining data and recipe.
    """

    hf_hub_revision: str | None = None
    sha256: str | None = None
    sensor: str | None = None
    pretraining: str | None = None


def hsi_cfg(**kwargs: Any) -> HsiPretrainedCfg:
    """Default pretrained config for hsizoo models (patch input, no image normalisation)."""
    defaults: dict[str, Any] = dict(
        num_classes=0,
        input_size=(0, 9, 9),  # (bands, P, P): bands are free, wavelengths carry spectral identity
        mean=(),
        std=(),
        interpolation="",
        crop_pct=1.0,
        fixed_input_size=False,  # patch size is an architecture argument, not an img_size
        classifier="head",
        license="apache-2.0",
        paper_ids="arXiv:2601.18088",
        paper_name="Cross-Domain Transfer with Self-Supervised Spectral-Spatial Modeling for "
        "Hyperspectral Image Classification",
    )
    defaults.update(kwargs)
    return HsiPretrainedCfg(**defaults)
