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
        normalisation: What the input must be before ``forward``, in words (timm's ``mean`` and
            ``std`` say it in numbers, see :func:`hsi_cfg`).
    """

    hf_hub_revision: str | None = None
    sha256: str | None = None
    sensor: str | None = None
    pretraining: str | None = None
    normalisation: str | None = None


#: What every hsizoo model takes as input (hsizoo.spectral.grid.band_stats, read by the data
#: pipeline: hsizoo.finetune, hsizoo.predict, the patch extractor).
NORMALISATION = ("per-band standardisation of each scene with its own valid-pixel mean and std "
                 "(hsizoo.spectral.grid.band_stats), applied before the model; timm's mean 0 / "
                 "std 1 per band describe the standardised input, so timm's Normalize is the "
                 "identity on it")


def data_cfg_fields(bands: int) -> dict[str, Any]:
    """timm's preprocessing fields that are true for an hsizoo model with ``bands`` input bands.

    The models take patches standardised per band with the statistics of their own scene
    (:data:`NORMALISATION`); no fixed per-band mean/std belongs to a checkpoint, because every
    scene (sensor, radiance or reflectance, season) has its own. What the model sees therefore
    has mean 0 and std 1 in every band, which is what ``mean``/``std`` state (one value per band,
    so ``timm.data.resolve_data_config`` reports them instead of ImageNet's RGB defaults, and
    timm's ``Normalize`` with them leaves a standardised cube unchanged). Patches are cut at the
    sensor's own ground sampling distance and never resized or cropped: ``crop_pct`` 1 and
    ``interpolation`` "nearest" (a resize, if a tool makes one, keeps each pixel's spectrum
    instead of mixing neighbours).

    Args:
        bands: The band count of ``input_size``.

    Returns:
        ``mean``, ``std``, ``interpolation``, ``crop_pct``, ``crop_mode`` and ``normalisation``.
    """
    return dict(mean=(0.0,) * int(bands), std=(1.0,) * int(bands), interpolation="nearest",
                crop_pct=1.0, crop_mode="center", normalisation=NORMALISATION)


def grid_band_count(grid: Sequence[float] | None = None) -> int:
    """Points of a canonical grid (start, stop, step): the band count of an input on that grid."""
    from hsizoo.spectral.grid import CANONICAL_GRID, make_grid

    return int(make_grid(tuple(grid or CANONICAL_GRID)).size)


def hsi_cfg(patch_size: int = 9, sensor: str | None = None, **kwargs: Any) -> HsiPretrainedCfg:
    """Default pretrained config for hsizoo models (patch input, per-scene standardisation).

    ``input_size`` is (bands, P, P) of a typical input: the bands of ``sensor`` when the weights
    were trained on one sensor, else the points of the canonical grid (400-2500 nm every 10 nm,
    211 bands). Any band count works as long as the wavelengths are given; P is an architecture
    argument, so the spatial size is fixed (``fixed_input_size`` True, timm's meaning: H x W).
    The preprocessing fields are :func:`data_cfg_fields`'s.

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
        fixed_input_size=True,  # P x P is an architecture argument; the bands are free
        **data_cfg_fields(bands),
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
    if out.get("input_size"):
        # One mean/std per band of input_size (timm checks the count), whatever the base said.
        out.update({k: v for k, v in data_cfg_fields(int(out["input_size"][0])).items()
                    if k in names})
    names_ = config.get("class_names")
    if names_ and out["num_classes"]:
        out["label_names"] = list(names_)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


#: hsizoo's pins of a published file: they describe that file, never another one.
_PIN_KEYS = ("sha256", "hf_hub_revision")


def prepare_builder_cfg(kwargs: dict[str, Any]) -> bool:
    """Make the ``pretrained_cfg`` / ``pretrained_cfg_overlay`` a builder receives loadable.

    Two cases where timm's plain handling would mislead:

    * A ``pretrained_cfg`` dict read from a config.json (``timm.create_model("hf-hub:...")`` or
      ``"local-dir:..."``; ``source`` says so) may carry hsizoo's fields, written there by
      ``timm.models.save_for_hf`` from ``model.pretrained_cfg``: it becomes an
      :class:`HsiPretrainedCfg` (timm's ``PretrainedCfg(**cfg)`` would refuse them), unknown
      keys dropped, and its ``sha256``/``hf_hub_revision`` dropped, since they pin the file the
      exported model was first loaded from, not this repository's; the sha256 this repository
      records at the top of its config.json is still checked (:mod:`hsizoo.hub.load`).
    * A ``pretrained_cfg_overlay`` naming a ``file`` of the user's own without a ``sha256``
      (``timm.create_model("s2former_tiny", pretrained=True,
      pretrained_cfg_overlay=dict(file="my.safetensors"))``): the registry's sha256 pins the
      published file, so it is cleared for this one (still safetensors only, never a pickle).

    Args:
        kwargs: The builder's keyword arguments, changed in place.

    Returns:
        True when the weights come from a file the user named, unpinned.
    """
    cfg = kwargs.get("pretrained_cfg")
    if isinstance(cfg, Mapping):
        names = {f.name for f in fields(HsiPretrainedCfg)}
        cfg = {k: v for k, v in cfg.items() if k in names}
        if cfg.get("source") in ("hf-hub", "local-dir"):
            for k in _PIN_KEYS:
                cfg.pop(k, None)
        kwargs["pretrained_cfg"] = HsiPretrainedCfg(**cfg)
    overlay = dict(kwargs.get("pretrained_cfg_overlay") or {})
    user_file = bool(overlay.get("file")) and "sha256" not in overlay
    if user_file:
        overlay["sha256"] = None
        kwargs["pretrained_cfg_overlay"] = overlay
    return user_file
