"""Published checkpoints shipped inside the package: found offline, before any mirror or Hub.

Every published checkpoint lives in exactly one place in the source tree, as a folder of
``hsizoo/weights/`` whose content is exactly its Hub repository (DESIGN.md, "Weights and the
Hub")::

    hsizoo/weights/<architecture>.<tag>/
        model.safetensors   the weights (safetensors only, never a pickle)
        config.json         architecture, model_args, sha256 of the weights, hf_hub_id, provenance
        README.md           the model card rendered from config.json (hsizoo.hub.card)
        ...                 files the card links to (loss_curve.png)

The folder name is the repository part of its ``hf_hub_id`` (``hsizoo/s2former_tiny.ssl_simulated``
-> ``s2former_tiny.ssl_simulated``), and its config.json records that ``hf_hub_id``. The folders
are package data (``[tool.setuptools.package-data]`` in pyproject.toml, ``weights/*/*``), so a
wheel carries them and ``pip install hsizoo`` loads every published tag with no network. To
publish a new checkpoint: write it with ``hsizoo.save_pretrained(model, "hsizoo/weights/<arch>.<tag>",
config=dict(tag=..., hf_hub_id="hsizoo/<arch>.<tag>", ...))``, register the tag with its sha256
in the model family's ``default_cfgs``, and run ``tests/hub/test_published.py``.

A shipped copy is used only for the repository its config.json names, and only when its
recorded sha256 is the one the pretrained config pins (when it pins one): a newer revision of
the repository on the Hub is then fetched through huggingface_hub instead.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hsizoo.hub.verify import WEIGHTS_NAME, Rejected, check_candidate, read_config

__all__ = ["WEIGHTS_DIR", "shipped_folders", "shipped_folder", "try_shipped"]

#: The package's folder of published checkpoints (``hsizoo/weights``).
WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"


def shipped_folders() -> dict[str, Path]:
    """The checkpoint folders shipped with this installation.

    Returns:
        ``{hf_hub_id: folder}`` for each folder of :data:`WEIGHTS_DIR` whose config.json names its
        repository; a folder without a readable config.json is left out (the loader would refuse
        it anyway).
    """
    out: dict[str, Path] = {}
    if not WEIGHTS_DIR.is_dir():
        return out
    for folder in sorted(WEIGHTS_DIR.iterdir()):
        try:
            cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        hub_id = cfg.get("hf_hub_id") if isinstance(cfg, dict) else None
        if isinstance(hub_id, str) and hub_id:
            out[hub_id] = folder
    return out


def shipped_folder(hf_hub_id: str) -> Path | None:
    """The shipped folder of one Hub repository.

    Args:
        hf_hub_id: ``org/name`` of the repository.

    Returns:
        The folder, or None when this installation does not ship it.
    """
    return shipped_folders().get(hf_hub_id)


def try_shipped(hub_id: str, expected: str | None, tried: list[str]
                ) -> tuple[Path, str, dict[str, Any]] | None:
    """The shipped copy of a repository, when it is the pinned version and verifies.

    Args:
        hub_id: ``org/name`` of the repository.
        expected: The sha256 the pretrained config pins, if any.
        tried: Lines of the loader's "tried" list; why the copy was passed over is appended.

    Returns:
        (model.safetensors, its sha256, its config.json), or None.
    """
    folder = shipped_folder(hub_id)
    if folder is None:
        tried.append(f"shipped with hsizoo ({WEIGHTS_DIR}): not among the published checkpoints")
        return None
    cand = folder / WEIGHTS_NAME
    try:
        cfg = read_config(folder)
    except Rejected as e:
        tried.append(f"shipped {cand}: {e}")
        return None
    recorded = str(cfg.get("sha256") or "").lower()
    if expected and recorded and expected.lower() != recorded:
        # Not corruption: the pin names another version (an update on the Hub).
        tried.append(f"shipped {cand}: holds sha256 {recorded[:12]}..., the pretrained config asks "
                     f"for {expected.lower()[:12]}... (another version)")
        return None
    try:
        sha, cfg = check_candidate(cand, expected, cfg)
    except Rejected as e:
        tried.append(f"shipped {cand}: {e}; reinstall hsizoo (pip install --force-reinstall hsizoo)")
        return None
    return cand, sha, cfg
