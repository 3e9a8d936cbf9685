"""Saving and publishing checkpoints: a Hub-ready folder, checked, then uploaded.

:func:`save_pretrained` writes the folder that :mod:`hsizoo.hub.load` reads (DESIGN.md,
"Weights and the Hub"): ``model.safetensors``, a ``config.json`` whose facts about the weights
(sha256, model_args, sizes, versions) are computed from the model rather than taken from the
caller, and the model card rendered from it by :mod:`hsizoo.hub.card`. The folder is swapped
in whole (:mod:`hsizoo.io.atomic`). :func:`verify_folder` checks a folder is complete and
consistent, and :func:`push_to_hub` uploads it as the content of a Hub model repository.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from hsizoo.hub.fetch import hsizoo_version
from hsizoo.hub.verify import (
    CARD_NAME,
    CONFIG_NAME,
    PICKLE_SUFFIXES,
    WEIGHTS_NAME,
    CheckpointError,
    CheckpointNotFoundError,
    Rejected,
    check_candidate,
    read_config,
)

__all__ = ["check_save_folder", "save_pretrained", "verify_folder", "push_to_hub"]

_logger = logging.getLogger(__name__)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().tolist()
    if hasattr(obj, "tolist"):  # numpy arrays and scalars
        return obj.tolist()
    if isinstance(obj, (Path, torch.dtype, torch.device)):
        return str(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable: {obj!r}")


def _cpu_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    # safetensors refuses tensors that share storage (tied weights) and non-contiguous ones.
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for k, v in model.state_dict().items():
        t = v.detach().to("cpu").contiguous()
        ptr = t.untyped_storage().data_ptr() if t.numel() else -1
        if ptr in seen:
            t = t.clone()
        elif ptr != -1:
            seen.add(ptr)
        out[k] = t
    return out


def _holds_model(folder: Path) -> list[str]:
    return [n for n in (WEIGHTS_NAME, CONFIG_NAME) if (folder / n).exists()]


def check_save_folder(folder: str | os.PathLike[str], overwrite: bool,
                      estimated_bytes: int = 0) -> Path:
    """Check where :func:`save_pretrained` would write, before the work that produces the model.

    Args:
        folder: The destination folder (created if needed).
        overwrite: Whether a saved model in it may be replaced.
        estimated_bytes: Expected size of the weights.

    Returns:
        The folder, with ``~`` expanded.

    Raises:
        FileExistsError: the folder holds a saved model and ``overwrite`` is False.
        OutputError: the folder is a file, cannot be created or written, or lacks the space.
    """
    from hsizoo.io.atomic import OutputExistsError, check_output

    p = check_output(folder, overwrite=overwrite, estimated_bytes=estimated_bytes, folder=True,
                     create_parents=True)
    existing = _holds_model(p) if p.is_dir() else []
    if existing and not overwrite:
        raise OutputExistsError(
            f"{p} already holds a saved model ({', '.join(existing)}); pass overwrite=True (CLI: "
            "--overwrite) to replace it, or choose another folder.")
    return p


_COMPUTED = ("sha256", "num_classes", "num_features", "num_parameters", "hsizoo_version",
             "torch_version", "model_args", "format")


def save_pretrained(model: nn.Module, folder: str | os.PathLike[str], *,
                    config: Mapping[str, Any] | None = None, overwrite: bool = False) -> Path:
    """Write a model as a Hub-ready folder: model.safetensors, config.json and README.md.

    Args:
        model: An hsizoo model (``model.architecture`` and ``model.model_args`` are recorded).
        folder: Destination; created if needed. Other files already in it are kept. The folder
            is written whole as a hidden sibling and swapped in at once (:mod:`hsizoo.io.atomic`),
            so a process killed at any point leaves the previous model loadable.
        config: Extra fields for config.json and the model card: ``tag``, ``hf_hub_id``,
            ``license``, ``sensor``, ``class_names``, ``normalisation``, ``training`` (steps,
            wall time, hardware, final loss), ``data`` / ``datasets``, ``results``,
            ``loss_curve``, ...
        overwrite: Replace existing model files.

    Returns:
        The folder.

    Raises:
        FileExistsError: the folder already holds model files and ``overwrite`` is False (also
            when another process filled it while this one was writing).
        OutputError: the folder is a file, is not writable, or lacks the space.
        ValueError: ``config`` names another architecture, or the model has no architecture.

    Fields computed from the model (sha256, model_args, num_classes, num_features, versions)
    replace any value ``config`` gives for them.
    """
    from safetensors.torch import save

    from hsizoo.io.atomic import atomic_folder
    from hsizoo.hub.card import render_model_card
    from hsizoo.hub.cfg import hub_pretrained_cfg

    state = _cpu_state_dict(model)
    folder = check_save_folder(folder, overwrite,
                               sum(t.numel() * t.element_size() for t in state.values()))

    user = dict(config or {})
    pcfg = getattr(model, "pretrained_cfg", None) or {}
    arch = getattr(model, "architecture", None) or pcfg.get("architecture")
    if user.get("architecture") and arch and user["architecture"] != arch:
        raise ValueError(f"config architecture={user['architecture']!r} contradicts the model's "
                         f"architecture {arch!r}.")
    arch = arch or user.get("architecture")
    if not arch:
        raise ValueError("Cannot tell the model's architecture: set model.architecture (hsizoo "
                         "models do) or pass config={'architecture': ...}.")

    # Weights first: config.json records their sha256.
    weights = save(state, metadata={"format": "pt"})
    computed: dict[str, Any] = dict(
        format="hsizoo",
        architecture=arch,
        model_args=dict(getattr(model, "model_args", None) or {}),
        # timm's block: timm.create_model("hf-hub:<repo>") reads architecture, model_args, this.
        pretrained_cfg=hub_pretrained_cfg(model, {**user, "architecture": arch}),
        num_classes=int(getattr(model, "num_classes", 0) or 0),
        num_features=int(getattr(model, "num_features", 0) or 0),
        num_parameters=int(sum(v.numel() for v in state.values())),
        sha256=hashlib.sha256(weights).hexdigest(),
        hsizoo_version=hsizoo_version(),
        torch_version=torch.__version__.split("+")[0],
    )
    grid = getattr(model, "grid", None)
    if grid is not None:
        computed["grid"] = _jsonable(grid) if not isinstance(grid, (list, tuple)) else list(grid)
    # Computed facts win over the caller's config (which may be a stale config.json of another
    # save): the file must describe exactly these weights.
    for k in _COMPUTED:
        if k in user and json.dumps(user[k], default=_jsonable) != json.dumps(computed.get(k), default=_jsonable):
            if k not in ("sha256", "hsizoo_version", "torch_version", "num_parameters"):
                _logger.warning("save_pretrained: config[%r]=%r replaced by the value computed from "
                                "the model, %r", k, user[k], computed.get(k))
    out = {**computed, **{k: v for k, v in user.items() if k not in computed}}
    text = json.dumps(out, indent=2, default=_jsonable, sort_keys=False) + "\n"
    # The folder is written whole beside the target and swapped in at once: a process killed at
    # any point leaves either the previous model or the new one, never a mix (no "tampered").
    with atomic_folder(folder, may_replace=lambda f: overwrite or not _holds_model(f)) as new:
        (new / WEIGHTS_NAME).write_bytes(weights)
        (new / CONFIG_NAME).write_text(text, encoding="utf-8")
        (new / CARD_NAME).write_text(render_model_card(json.loads(text)), encoding="utf-8")
    _logger.info("saved %s (%s, sha256 %s) to %s", arch, WEIGHTS_NAME, computed["sha256"][:12],
                 folder)
    return folder


def verify_folder(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """Check that a folder is a complete, consistent hsizoo checkpoint before publishing it.

    Args:
        folder: A folder written by :func:`save_pretrained`.

    Returns:
        Its config.json.

    Raises:
        CheckpointError: a file is missing, the sha256 does not match, the weights are not valid
            safetensors, or the folder holds pickles.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointNotFoundError(f"{folder} is not a folder.")
    missing = [n for n in (WEIGHTS_NAME, CONFIG_NAME, CARD_NAME) if not (folder / n).is_file()]
    if missing:
        raise CheckpointError(f"{folder} is not a complete checkpoint: missing {missing}; write "
                              "it with hsizoo.save_pretrained.")
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
    if pickles:
        raise CheckpointError(f"{folder} holds pickle files {pickles}; remove them, hsizoo "
                              "publishes only safetensors.")
    try:
        cfg = read_config(folder)
        if not cfg.get("sha256"):
            raise Rejected(f"{folder / CONFIG_NAME} records no sha256")
        for k in ("architecture", "model_args"):
            if k not in cfg:
                raise Rejected(f"{folder / CONFIG_NAME} has no {k!r}")
        check_candidate(folder / WEIGHTS_NAME, None, cfg)
    except Rejected as e:
        raise CheckpointError(f"{folder} cannot be published: {e}") from None
    return cfg


def push_to_hub(folder: str | os.PathLike[str], repo_id: str, *, revision: str | None = None,
                token: str | None = None, private: bool = False,
                commit_message: str | None = None) -> str:
    """Verify a saved folder and upload it as the content of a Hub model repository.

    Args:
        folder: A folder written by :func:`save_pretrained`.
        repo_id: ``org/name`` of the repository; created if it does not exist.
        revision: Branch to commit to (default: the repository's main branch).
        token: Hub token; default: huggingface_hub's usual lookup (HF_TOKEN, ``hf auth login``).
        private: Create the repository as private.
        commit_message: Default: "Upload <architecture> (sha256 <first 12>)".

    Returns:
        The commit URL; pin the commit id it ends with as ``hf_hub_revision``.

    Raises:
        CheckpointError: the folder is incomplete or inconsistent.
    """
    import huggingface_hub

    cfg = verify_folder(folder)
    message = commit_message or f"Upload {cfg['architecture']} (sha256 {cfg['sha256'][:12]})"
    huggingface_hub.create_repo(repo_id, token=token, private=private, exist_ok=True, repo_type="model")
    info = huggingface_hub.upload_folder(
        repo_id=repo_id, folder_path=str(folder), revision=revision, token=token,
        commit_message=message, repo_type="model",
        # Editor and OS droppings and temp files of an interrupted save never go to the Hub.
        ignore_patterns=[".*", "*.tmp", "__pycache__/*", *[f"*{s}" for s in PICKLE_SUFFIXES]],
    )
    url = str(getattr(info, "commit_url", info))
    _logger.info("pushed %s to %s: %s", folder, repo_id, url)
    return url
