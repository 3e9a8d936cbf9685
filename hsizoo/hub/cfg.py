"""Pretrained-weight configuration: timm's PretrainedCfg plus what hsizoo pins and verifies."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping, Sequence

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


def grid_band_count(grid: Sequence[float] | None = None) -> int:
    """Points of a canonical grid (start, stop, step): the band count of an input on that grid."""
    from hsizoo.spectral.grid import CANONICAL_GRID, make_grid

    return int(make_grid(tuple(grid or CANONICAL_GRID)).size)


def hsi_cfg(patch_size: int = 9, sensor: str | None = None, **kwargs: Any) -> HsiPretrainedCfg:
    """Default pretrained config for hsizoo models (patch input, no image normalisation).

    ``input_size`` is (bands, P, P) of a typical input: the bands of ``sensor`` when the weights
    were trained on one sensor, else the points of the canonical grid (400-2500 nm every 10 nm,
    211 bands). The band dimension is variable like timm's ``dynamic_img_size`` models: any band
    count works as long as the wavelengths are given, which is why ``fixed_input_size`` is False.

    Args:
        patch_size: P of the architecture.
        sensor: Sensor preset of the training data, if any.
        **kwargs: Other :class:`HsiPretrainedCfg` fields.
    """
    if sensor is not None:
        from hsizoo.spectral.sensors import get_sensor

        bands = int(get_sensor(sensor).num_bands)
    else:
        bands = grid_band_count()
    defaults: dict[str, Any] = dict(
        num_classes=0,
        input_size=(bands, patch_size, patch_size),
        mean=(),
        std=(),
        interpolation="",
        crop_pct=1.0,
        fixed_input_size=False,  # patch size is an architecture argument, bands are free
        classifier="head",
        license="apache-2.0",
        paper_ids="arXiv:2601.18088",
        paper_name="Cross-Domain Transfer with Self-Supervised Spectral-Spatial Modeling for "
        "Hyperspectral Image Classification",
        sensor=sensor,
    )
    defaults.update(kwargs)
    return HsiPretrainedCfg(**defaults)


#: Source fields timm's own export drops from config.json (timm.models._pretrained.filter_pretrained_cfg).
_SOURCE_KEYS = ("url", "file", "hf_hub_id", "hf_hub_filename", "source", "state_dict")


def hub_pretrained_cfg(model: Any, config: Mapping[str, Any]) -> dict[str, Any]:
    """The ``pretrained_cfg`` block of a checkpoint's config.json, in timm's format.

    ``timm.create_model("hf-hub:org/name")`` reads config.json's ``architecture``,
    ``model_args`` and ``pretrained_cfg`` (``timm.models._hub.load_model_config_from_hf``) and
    builds ``timm.models.PretrainedCfg(**pretrained_cfg)``, so only timm's fields may appear here;
    hsizoo's own fields (sha256, sensor, provenance) stay at the top level of config.json.

    Args:
        model: The model being saved (its ``pretrained_cfg``, ``architecture``, ``num_classes``,
            ``patch_size`` and default wavelengths are read).
        config: The other config.json fields (``tag``, ``license``, ``class_names``,
            ``sensor``: the training sensor, whose band count is the typical input's).

    Returns:
        A JSON-able dict of timm PretrainedCfg fields.
    """
    names = {f.name for f in fields(PretrainedCfg)}
    base = dict(getattr(model, "pretrained_cfg", None) or {})
    out = {k: v for k, v in base.items()
           if k in names and k not in _SOURCE_KEYS and v is not None}
    out["architecture"] = getattr(model, "architecture", None) or config.get("architecture") \
        or base.get("architecture")
    if config.get("tag"):
        out["tag"] = config["tag"]
    if config.get("license"):
        out["license"] = config["license"]
    out["num_classes"] = int(getattr(model, "num_classes", 0) or 0)
    wl = getattr(model, "default_wavelengths", None)
    p = getattr(model, "patch_size", None)
    if p:
        # The model's own default bands, else the registry's (a sensor's), else the grid's.
        base_size = tuple(base.get("input_size") or ())
        if wl is None and config.get("sensor"):
            # Weights trained on one sensor: a typical input has that sensor's bands.
            from hsizoo.spectral.sensors import get_sensor

            wl = get_sensor(str(config["sensor"])).wavelengths
        bands = (len(wl) if wl is not None else int(base_size[0]) if base_size and base_size[0]
                 else grid_band_count(getattr(model, "grid", None)))
        out["input_size"] = (bands, int(p), int(p))
    names_ = config.get("class_names")
    if names_ and out["num_classes"]:
        out["label_names"] = list(names_)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}
