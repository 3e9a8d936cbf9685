"""Verification of a checkpoint candidate: the one job of deciding whether a file may be loaded.

A checkpoint folder holds the files of a Hugging Face Hub model repository (DESIGN.md, "Weights
and the Hub"): :data:`WEIGHTS_NAME`, :data:`CONFIG_NAME` and :data:`CARD_NAME`. A candidate
``model.safetensors`` is accepted only when its sha256 equals every sha256 known for it (the one
pinned in the pretrained config and the one recorded in the ``config.json`` beside it) and it
opens as safetensors; pickles are refused before anything reads them. The sha256 is computed
from the file's bytes on every load (:func:`hsizoo.io.atomic.file_sha256`, never memoised): a
file tampered with in place can keep its size and modification time.

This module imports no other module of :mod:`hsizoo.hub`: the lookup (:mod:`hsizoo.hub.load`),
the shipped copies (:mod:`hsizoo.hub.shipped`), downloads and saving all build on it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hsizoo.io.atomic import file_sha256

__all__ = [
    "WEIGHTS_NAME",
    "CONFIG_NAME",
    "CARD_NAME",
    "PICKLE_SUFFIXES",
    "CheckpointError",
    "CheckpointNotFoundError",
    "Rejected",
    "read_config",
    "refuse_pickle",
    "check_candidate",
]

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
CARD_NAME = "README.md"
#: Extensions of pickle-based checkpoints, which hsizoo refuses to load (arbitrary code execution).
PICKLE_SUFFIXES = (".bin", ".pth", ".pt", ".pkl", ".pickle", ".ckpt", ".tar")


class CheckpointError(RuntimeError):
    """A checkpoint could not be found, verified or loaded; the message says what was tried."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """No place named by the pretrained config holds the checkpoint."""


class Rejected(Exception):
    """A candidate file exists but is unusable (checksum, corrupt, pickle).

    Attributes:
        checksum: True when the reason is a sha256 mismatch.
    """

    def __init__(self, reason: str, checksum: bool = False) -> None:
        super().__init__(reason)
        self.checksum = checksum


def read_config(folder: Path) -> dict[str, Any]:
    """The ``config.json`` of a checkpoint folder.

    Args:
        folder: The checkpoint folder.

    Returns:
        Its config.json, or an empty dict when the folder has none.

    Raises:
        Rejected: the file is not valid JSON or does not hold a JSON object.
    """
    cfg_path = folder / CONFIG_NAME
    if not cfg_path.is_file():
        return {}
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise Rejected(f"{cfg_path} is not valid JSON ({e})") from None
    if not isinstance(cfg, dict):
        raise Rejected(f"{cfg_path} does not hold a JSON object")
    return cfg


def refuse_pickle(path: Path) -> None:
    """Refuse a pickle-based checkpoint by its extension, before anything reads it.

    Args:
        path: The file named as a checkpoint.

    Raises:
        CheckpointError: the extension is one of :data:`PICKLE_SUFFIXES`.
    """
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise CheckpointError(
            f"Refusing to load {path}: '{path.suffix}' files are Python pickles, and unpickling "
            "can run arbitrary code. hsizoo loads only safetensors. Convert it once, on a machine "
            "and from a source you trust: state = torch.load(path, weights_only=True); "
            "safetensors.torch.save_file(state, 'model.safetensors')."
        )


def check_candidate(path: Path, expected_sha: str | None, config: dict[str, Any] | None = None
                    ) -> tuple[str, dict[str, Any]]:
    """Verify one candidate file.

    Args:
        path: A ``model.safetensors`` file.
        expected_sha: The sha256 the pretrained config pins, if any.
        config: The config.json beside it, when already read; read here when None.

    Returns:
        (its sha256, the config.json beside it).

    Raises:
        Rejected: a sha256 mismatch, an unreadable config.json, or not a valid safetensors file.
    """
    if config is None:
        config = read_config(path.parent)
    got = file_sha256(path)  # hashed on every load: size and mtime prove nothing
    for label, want in (("the pretrained config", expected_sha),
                        (str(path.parent / CONFIG_NAME), config.get("sha256"))):
        if want and want.lower() != got:
            raise Rejected(
                f"checksum mismatch: expected {want.lower()} (from {label}), got {got} for {path}; "
                "the file is corrupt or was tampered with; delete it and re-download it (Hub cache: "
                "hf_hub_download(..., force_download=True)) or restore it from a trusted copy",
                checksum=True,
            )
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            f.keys()
    except Exception as e:  # safetensors raises its own SafetensorError, or OSError
        raise Rejected(f"{path} is not a valid safetensors file ({e}); it is corrupt or "
                       "truncated: delete it and fetch it again") from None
    return got, config
