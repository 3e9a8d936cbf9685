"""Model factory: create hsizoo models by registry name or from a saved folder; list the zoo.

timm's registry is the only list of models (STYLE.md, habit 1): :func:`list_models` reads it, so a
model registered by any module under ``hsizoo.`` appears here the moment it is imported.
"""
from __future__ import annotations

import difflib
import importlib
import json
import os
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

__all__ = ["create_model", "list_models", "list_pretrained", "count_flops_per_pixel",
           "is_hsizoo_model"]


def _ensure_registered() -> None:
    # Importing hsizoo.models runs the @register_model decorators of every model family.
    importlib.import_module("hsizoo.models")


def _hsizoo_archs() -> dict[str, str]:
    """{architecture name: registry module name} of the models registered from hsizoo modules."""
    import timm
    from timm.models import model_entrypoint

    _ensure_registered()
    out: dict[str, str] = {}
    for name in timm.list_models():
        module = getattr(model_entrypoint(name), "__module__", "") or ""
        if module == "hsizoo" or module.startswith("hsizoo."):
            out[name] = module.rsplit(".", 1)[-1]
    return out


def is_hsizoo_model(name: str) -> bool:
    """Whether ``name`` (``arch`` or ``arch.tag``) is an architecture registered by hsizoo.

    Args:
        name: Model name, optionally with a pretrained tag.

    Returns:
        True for hsizoo's architectures.
    """
    from timm.models import split_model_name_tag

    return split_model_name_tag(name)[0] in _hsizoo_archs()


def list_models(filter: str | Sequence[str] = "*", pretrained: bool = False) -> list[str]:
    """Names of hsizoo's registered models.

    Args:
        filter: fnmatch pattern(s), e.g. ``"s2former_*"``.
        pretrained: Only models with published weights, as ``architecture.tag`` names.

    Returns:
        Sorted names.
    """
    import timm
    from timm.models import split_model_name_tag

    archs = _hsizoo_archs()
    names = timm.list_models(filter or "", module=sorted(set(archs.values())), pretrained=pretrained)
    # Registry module names are only the last component: keep hsizoo's entrypoints only.
    return [n for n in names if split_model_name_tag(n)[0] in archs]


def list_pretrained(filter: str | Sequence[str] = "*") -> list[str]:
    """``architecture.tag`` names of hsizoo models that have pretrained weights.

    Args:
        filter: fnmatch pattern(s).

    Returns:
        Sorted names.
    """
    return list_models(filter, pretrained=True)


def _unknown_model_error(name: str) -> ValueError:
    known = list_models()
    close = difflib.get_close_matches(name.split(".")[0], known, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return ValueError(
        f"Unknown model {name!r}.{hint} hsizoo models: {', '.join(known) or 'none registered'}. "
        "A folder written by hsizoo.save_pretrained (with config.json) is accepted too.")


def _looks_like_path(name: str) -> bool:
    return os.sep in name or "/" in name or name.startswith(("~", ".")) or Path(name).exists()


def create_model(model_name_or_path: str | os.PathLike[str], pretrained: bool = False, *,
                 checkpoint_path: str | os.PathLike[str] | None = None, **kwargs: Any) -> nn.Module:
    """Create an hsizoo model from the registry, or from a folder written by ``save_pretrained``.

    Args:
        model_name_or_path: A registered name (``"s2former_base"``, or ``"arch.tag"`` for a
            given pretrained config), timm's ``"hf-hub:org/name[@revision]"`` (offline, a
            mirror or shipped copy of that repository, see :mod:`hsizoo.hub.hf_names`) or
            ``"local-dir:DIR"``, or a saved folder holding config.json and
            model.safetensors: the folder's architecture and ``model_args`` are rebuilt and its
            weights loaded (verified against the sha256 in its config.json).
        pretrained: Load the registered pretrained weights (offline-first, see
            :mod:`hsizoo.hub.load`).
        checkpoint_path: Load weights from this ``model.safetensors`` or saved folder instead
            (implies ``pretrained=True``).
        **kwargs: Model arguments (override the variant's or the folder's), and timm's
            ``pretrained_cfg`` / ``pretrained_cfg_overlay``.

    Returns:
        The model (in training mode, like timm's).

    Raises:
        ValueError: unknown model name or tag.
        CheckpointError: weights requested but not found or not verified.
    """
    import timm

    name = os.fspath(model_name_or_path)
    from hsizoo.hub.hf_names import create_from_hf_name, is_hf_name

    if is_hf_name(name):
        if checkpoint_path is not None:
            raise ValueError(f"{name} names its own weights: drop checkpoint_path, or pass the "
                             "architecture's name with checkpoint_path=.")
        return create_from_hf_name(name, pretrained=pretrained, **kwargs)
    folder = Path(name).expanduser()
    if folder.is_dir():
        return _create_from_folder(folder, checkpoint_path=checkpoint_path, **kwargs)
    if folder.is_file():
        raise ValueError(f"{name} is a file: pass the folder that holds it, or a model name with "
                         f"checkpoint_path={name!r} (e.g. create_model('s2former_base', "
                         "checkpoint_path=...)).")
    if _looks_like_path(name) and not is_hsizoo_model(name):
        raise FileNotFoundError(f"{name} does not exist: pass a registered model name "
                                f"({', '.join(list_models())}) or a folder written by save_pretrained.")

    from timm.models import get_arch_pretrained_cfgs, split_model_name_tag

    arch, tag = split_model_name_tag(name)
    if arch not in _hsizoo_archs():
        raise _unknown_model_error(name)
    cfgs = get_arch_pretrained_cfgs(arch)
    if tag and f"{arch}.{tag}" not in cfgs:
        raise ValueError(f"{arch} has no pretrained tag {tag!r}; its tags: "
                         f"{', '.join(sorted(cfgs)) or 'none'}.")

    overlay = dict(kwargs.pop("pretrained_cfg_overlay", None) or {})
    if checkpoint_path is not None:
        # The registry's sha256 describes the published file, not the user's own checkpoint;
        # the config.json beside their file (if any) is still checked.
        overlay.setdefault("sha256", None)
        overlay["file"] = os.fspath(checkpoint_path)
        pretrained = True
    return timm.create_model(name, pretrained=pretrained,
                             pretrained_cfg_overlay=overlay or None, **kwargs)


def _create_from_folder(folder: Path, checkpoint_path: str | os.PathLike[str] | None = None,
                        **kwargs: Any) -> nn.Module:
    import timm

    from hsizoo.hub.verify import CONFIG_NAME, CheckpointError

    cfg_path = folder / CONFIG_NAME
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{folder} has no {CONFIG_NAME}: it is not a folder written by "
                                "hsizoo.save_pretrained (or a copy of an hsizoo Hub repository).")
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
        arch = cfg["architecture"]
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{cfg_path} is not a valid hsizoo config ({e!r}).") from None
    if split_arch(arch) not in _hsizoo_archs():
        raise _unknown_model_error(arch)
    args = {**dict(cfg.get("model_args") or {}), **kwargs}
    overlay = dict(args.pop("pretrained_cfg_overlay", None) or {})
    overlay.update(file=os.fspath(checkpoint_path or folder), sha256=None, hf_hub_id=None)
    return timm.create_model(arch, pretrained=True, pretrained_cfg_overlay=overlay, **args)


def split_arch(name: str) -> str:
    """Architecture part of ``arch.tag``."""
    from timm.models import split_model_name_tag

    return split_model_name_tag(name)[0]


def count_flops_per_pixel(model: nn.Module, wavelengths: Sequence[float],
                          patch_size: int | None = None) -> int:
    """FLOPs of classifying one pixel: one forward pass on its P x P patch.

    Counted with :class:`torch.utils.flop_counter.FlopCounterMode` (matrix products and
    convolutions; one multiply-add = 2 FLOPs), in eval mode without gradients. This is the naive
    per-patch cost; shared whole-scene inference is cheaper per pixel.

    Args:
        model: An hsizoo model taking ``forward(x, wavelengths=...)``.
        wavelengths: Band centres in nm of the input (B,).
        patch_size: P; default ``model.patch_size``.

    Returns:
        FLOPs per pixel.
    """
    from torch.utils.flop_counter import FlopCounterMode

    p = int(patch_size or getattr(model, "patch_size", 0) or 9)
    wl = [float(w) for w in wavelengths]
    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, len(wl), p, p, generator=gen).to(device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x, wavelengths=wl)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())
