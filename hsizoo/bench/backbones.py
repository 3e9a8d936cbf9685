"""The backbones a benchmark measures, named by spec: an architecture (random init), an
``arch.tag`` with weights, a model folder or a pretraining run folder; and the sha256 of the
weights each spec loads, so that stored results are never taken for retrained weights.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

__all__ = ["load_backbone", "weights_sha256"]


def load_backbone(spec: str, seed: int = 0) -> tuple[torch.nn.Module, str]:
    """A frozen-feature backbone (``num_classes=0``) from a spec.

    Args:
        spec: A registered architecture (``"s2former_tiny"``: random initialisation, created with
            ``torch.manual_seed(seed)``), a registered ``arch.tag`` with weights, a folder
            written by ``save_pretrained`` / ``export_pretrained`` (config.json +
            model.safetensors), or a pretraining run folder (its latest checkpoint's encoder,
            so a run can be probed while it trains).
        seed: Initialisation seed for a bare architecture.

    Returns:
        (model in eval mode, description of the weights).

    Raises:
        ValueError: the spec is none of these.
    """
    from hsizoo.models._factory import create_model, list_models, list_pretrained

    p = Path(spec).expanduser()
    if p.is_dir() and (p / "checkpoint.json").is_file() and not (p / "config.json").is_file():
        from hsizoo.pretrain.checkpoints import MANIFEST, load_checkpoint

        manifest, tensors = load_checkpoint(p)
        cfg = manifest["config"]
        model = create_model(cfg["model"], num_classes=0, **cfg.get("model_kwargs", {}))
        pre = "model.encoder."
        model.load_state_dict({k[len(pre):]: v for k, v in tensors.items() if k.startswith(pre)})
        return model.eval(), f"{p} ({MANIFEST} step {manifest['step']})"
    if p.is_dir():
        if not (p / "model.safetensors").is_file() or not (p / "config.json").is_file():
            raise ValueError(f"{spec}: neither a model folder (config.json and "
                             "model.safetensors) nor a pretraining run folder (checkpoint.json).")
        return create_model(str(p), checkpoint_path=str(p), num_classes=0).eval(), str(p)
    if "." in spec:
        if spec not in list_pretrained():
            raise ValueError(f"{spec!r} has no pretrained weights (registered: "
                             f"{', '.join(list_pretrained()) or 'none'}).")
        return create_model(spec, pretrained=True, num_classes=0).eval(), spec
    if spec not in list_models():
        raise ValueError(f"Unknown model {spec!r}: give an architecture ({', '.join(list_models())}"
                         "), an arch.tag with weights, or a model folder.")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = create_model(spec, pretrained=False, num_classes=0)
    return model.eval(), f"{spec} random init (seed {seed})"


def weights_sha256(spec: str) -> str | None:
    """sha256 of the weights a backbone spec loads (None for a bare architecture), so that a
    stored result is never taken for weights retrained under the same name."""
    from hsizoo.io.atomic import file_sha256

    p = Path(spec).expanduser()
    if p.is_dir() and (p / "checkpoint.json").is_file() and not (p / "config.json").is_file():
        return json.loads((p / "checkpoint.json").read_text()).get("sha256")
    if p.is_dir():
        return file_sha256(p / "model.safetensors") if (p / "model.safetensors").is_file() \
            else None
    if "." in spec:
        from timm.models import get_pretrained_cfg

        cfg = get_pretrained_cfg(spec)
        return cfg.to_dict().get("sha256") if cfg is not None else None
    return None
