"""hsizoo: a PyTorch model zoo for hyperspectral image classification.

S2Former backbones pretrained without labels (masked reconstruction with a frequency-domain
constraint) and few-shot DAFT fine-tuning, after arXiv 2601.18088. Importing hsizoo registers its
models in timm's registry, so ``timm.create_model("s2former_base")`` works too (the registration
happens when timm is imported, before or after hsizoo; :mod:`hsizoo._timm_hook`).

The package, in the order a newcomer needs it:

* :mod:`hsizoo.io`: reading scenes (GeoTIFF, ENVI, .mat) and writing class maps;
* :mod:`hsizoo.spectral`: spectral identity (the canonical wavelength grid, sensor presets);
* :mod:`hsizoo.data`: scene data (benchmark catalogue, simulated scenes, splits, patches, metrics);
* :mod:`hsizoo.models`: the model families (S2Former, HybridSN) in timm's registry;
* :mod:`hsizoo.hub`: the weights hub (configs, verified loading, download, save, model cards);
* :mod:`hsizoo.method`: the method's parts (pretraining objective and FDC, DAFT, transduction);
* :mod:`hsizoo.pretrain` and :mod:`hsizoo.finetune`: the two runs that use those parts;
* :mod:`hsizoo.predict`: whole-scene prediction with shared computation;
* :mod:`hsizoo.bench`: the benchmark harness (baselines, ablations, probes, report);
* :mod:`hsizoo.cli`: the ``hsizoo`` command line; :mod:`hsizoo.runtime`: device and precision.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

from hsizoo.io.scene import Scene  # noqa: E402
from hsizoo._timm_hook import register_with_timm  # noqa: E402

# The models enter timm's registry when timm is imported (now, if it already is): `import hsizoo`
# itself needs neither torch nor timm, so `hsizoo --help` starts in a fraction of a second.
register_with_timm()

# Public functions, imported on first use so that `import hsizoo` stays light.
_LAZY = {
    "create_model": "hsizoo.models._factory",
    "list_models": "hsizoo.models._factory",
    "list_pretrained": "hsizoo.models._factory",
    "save_pretrained": "hsizoo.hub.save",
    "load_pretrained": "hsizoo.hub.load",
    "push_to_hub": "hsizoo.hub.save",
    "download_pretrained": "hsizoo.hub.download",
    "read_scene": "hsizoo.io",
    "load_dataset": "hsizoo.data.download",
    "list_datasets": "hsizoo.data.catalogue",
    "few_shot_split": "hsizoo.data.splits",
    "simulate_scene": "hsizoo.data.simulate",
    "get_sensor": "hsizoo.spectral.sensors",
    "list_sensors": "hsizoo.spectral.sensors",
    "pretrain": "hsizoo.pretrain",
    "finetune": "hsizoo.finetune",
}


def __getattr__(name: str) -> Any:
    if name == "models":
        return importlib.import_module("hsizoo.models")
    if name == "S2Former":
        value = importlib.import_module("hsizoo.models").S2Former
        globals()[name] = value
        return value
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hsizoo' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, "models", "S2Former"})


__all__ = ["__version__", "S2Former", "Scene", *_LAZY]
