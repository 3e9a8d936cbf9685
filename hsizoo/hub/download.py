"""Fetch a checkpoint ahead of time, for machines without network: ``hsizoo download``.

Two destinations:

* ``to=DIR`` writes ``DIR/<repo name>/`` with the files of the Hub repository (model.safetensors,
  config.json, README.md and the files the card links to). Copy DIR to the air-gapped machine and
  either set ``HSIZOO_HUB_MIRROR=DIR`` (then ``create_model("arch.tag", pretrained=True)`` finds
  it, still checked against the registry's sha256) or pass the folder explicitly:
  ``create_model("arch.tag", checkpoint_path="DIR/<repo name>")`` /
  ``create_model("DIR/<repo name>")`` (CLI: that folder as ``--model``).
* no ``to``: the Hugging Face cache (``HF_HUB_CACHE``) is filled through huggingface_hub, so that
  ``HF_HUB_OFFLINE=1`` loads later find it.

The source of a folder copy is the checkpoint shipped inside the package when it is the pinned
version (no network), else the Hub (``HF_ENDPOINT`` honoured). Every copy is sha256-checked
before it is reported done; nothing downloaded is unpickled.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hsizoo.hub.fetch import split_hub_id, try_hub
from hsizoo.hub.load import not_found_help
from hsizoo.hub.shipped import try_shipped
from hsizoo.hub.verify import (
    CARD_NAME,
    CONFIG_NAME,
    WEIGHTS_NAME,
    CheckpointError,
    CheckpointNotFoundError,
    Rejected,
    check_candidate,
)

__all__ = ["Downloaded", "download_pretrained", "pretrained_cfg_for"]

SOURCES = ("auto", "package", "hub")


@dataclass
class Downloaded:
    """What :func:`download_pretrained` wrote.

    Attributes:
        name: The registry name (``arch.tag``) or Hub repository asked for.
        hf_hub_id: The Hub repository.
        folder: The folder holding model.safetensors (the copy, or the cache snapshot).
        sha256: sha256 of model.safetensors, verified.
        source: ``"package"`` or ``"hub"``.
    """

    name: str
    hf_hub_id: str
    folder: Path
    sha256: str
    source: str


def pretrained_cfg_for(name: str) -> dict[str, Any]:
    """The pretrained config a download name stands for.

    Args:
        name: ``arch.tag``, ``arch`` (its first tag with weights) or a Hub repository ``org/name``
            (``hf-hub:`` prefix allowed; ``@revision`` suffix allowed).

    Returns:
        A pretrained config dict with at least ``hf_hub_id``.

    Raises:
        ValueError: an unknown name, or a tag without published weights.
    """
    from timm.models import get_arch_pretrained_cfgs, split_model_name_tag

    from hsizoo.models._factory import _hsizoo_archs, list_pretrained

    published = ", ".join(list_pretrained()) or "none"
    if name.startswith("hf-hub:"):
        name = name[len("hf-hub:"):]
    if "/" in name or "\\" in name or ".." in name or name.startswith(("~", ".")) \
            or not name.strip() or name.strip() != name:
        hub_id, rev = split_hub_id(name, None)
        why = _bad_hub_id(hub_id, rev, "@" in name)
        if why:
            raise ValueError(
                f"{name!r} is not a checkpoint name: not a model (arch), arch.tag or Hub "
                f"repository id (org/name): {why}. Published checkpoints: {published} (`hsizoo "
                "list --pretrained` lists them); a Hub repository is named org/name, e.g. "
                "hsizoo/s2former_tiny.ssl_simulated. A checkpoint folder you already have needs "
                "no download: pass it as --model (Python: checkpoint_path=).")
        return dict(hf_hub_id=hub_id, hf_hub_revision=rev, architecture=None, tag=None)
    arch, tag = split_model_name_tag(name)
    if arch not in _hsizoo_archs():
        raise ValueError(f"Unknown model {name!r}: published checkpoints are {published} "
                         "(`hsizoo list --pretrained` lists them), or name a Hub repository "
                         "as org/name.")
    cfgs = {k: v.to_dict() for k, v in get_arch_pretrained_cfgs(arch).items()}
    if tag:
        cfg = cfgs.get(f"{arch}.{tag}")
    else:  # the architecture's default: its first tag with weights
        cfg = next((c for c in cfgs.values() if c.get("hf_hub_id")), None)
    if not cfg or not cfg.get("hf_hub_id"):
        raise ValueError(f"{name} has no published weights to download; published checkpoints: "
                         f"{published} (`hsizoo list --pretrained` lists them).")
    return cfg


def _bad_hub_id(hub_id: str, revision: str | None, has_at: bool) -> str | None:
    """Why ``hub_id`` (and its ``@revision``) cannot name a Hub repository, or None."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if not hub_id.strip():
        return "the name is empty"
    if hub_id.startswith(("/", "~", ".")) or "\\" in hub_id or ":" in hub_id:
        return "that is a path, not a name"
    if ".." in hub_id:
        return "'..' belongs to a path, not a name"
    if hub_id.count("/") != 1:
        return "a repository id has exactly one '/', between the organisation and the name"
    if has_at and not revision:
        return "nothing follows '@' (give a revision, or leave '@' out)"
    try:
        validate_repo_id(hub_id)
    except HFValidationError as e:
        return str(e).rstrip(".")
    return None


def _hub_files(hub_id: str, revision: str | None, expected: str | None) -> tuple[Path, str]:
    """Weights, config.json and card of a repository into the Hugging Face cache, verified."""
    path, why = try_hub(hub_id, revision)
    if path is None:
        raise CheckpointNotFoundError(f"Could not download {hub_id}: {why}.\n"
                                      f"{not_found_help(hub_id, hub_id)}")
    try:
        sha, cfg = check_candidate(path, expected)
    except Rejected as e:
        raise CheckpointError(f"Downloaded {hub_id} refused: {e}") from None
    from huggingface_hub import hf_hub_download

    # The card and what it links to are documentation: fetched when present, never required.
    extras = [CARD_NAME] + [str(v) for k, v in cfg.items()
                            if k == "loss_curve" and isinstance(v, str) and "/" not in v]
    for fname in extras:
        try:
            hf_hub_download(hub_id, fname, revision=revision)
        except Exception:  # noqa: BLE001 (absent optional file; the weights are verified)
            pass
    return path.parent, sha


def download_pretrained(name: str, to: str | os.PathLike[str] | None = None, *,
                        revision: str | None = None, source: str = "auto",
                        overwrite: bool = False) -> Downloaded:
    """Fetch a checkpoint into a folder or the Hugging Face cache, verified by sha256.

    Args:
        name: ``arch.tag`` (``s2former_tiny.ssl_simulated``), ``arch`` or a Hub ``org/name``.
        to: Folder to write ``<to>/<repo name>/`` into; None fills the Hugging Face cache.
        revision: Hub revision (branch, tag or commit) instead of the registry's pinned one; the
            registry's sha256 then no longer applies and the config.json's sha256 is checked.
        source: ``"auto"`` (the copy shipped in the package when it is the pinned version, else
            the Hub), ``"package"`` or ``"hub"``. The cache can only be filled from the Hub.
        overwrite: Replace an existing ``<to>/<repo name>/`` that holds a model.

    Returns:
        What was written and from where.

    Raises:
        ValueError: unknown name or source.
        CheckpointNotFoundError: the source does not hold it (the message says what to do).
        CheckpointError: a copy failed verification.
        FileExistsError: the destination holds a model and ``overwrite`` is False.
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {source!r}.")
    cfg = pretrained_cfg_for(name)
    hub_id = cfg["hf_hub_id"]
    pinned = cfg.get("hf_hub_revision") or None
    rev = revision or pinned
    expected = cfg.get("sha256") if rev == pinned else None
    if to is None:
        if source == "package":
            raise ValueError("The Hugging Face cache is filled from the Hub only: use --to DIR to "
                             "copy the checkpoint shipped with hsizoo.")
        folder, sha = _hub_files(hub_id, rev, expected)
        return Downloaded(name, hub_id, folder, sha, "hub")

    src: Path | None = None
    got_from = "package"
    tried: list[str] = []
    if source in ("auto", "package") and rev == pinned:
        found = try_shipped(hub_id, expected, tried)
        src = None if found is None else found[0].parent
    if src is None and source == "package":
        raise CheckpointNotFoundError(
            f"{name} is not shipped with this hsizoo installation in the pinned version: "
            f"{'; '.join(tried) or 'another revision was asked for'}. Use --from hub (source='hub').")
    if src is None:
        src, _ = _hub_files(hub_id, rev, expected)
        got_from = "hub"

    target = _write_copy(src, Path(os.path.expanduser(to)) / hub_id.rsplit("/", 1)[-1], overwrite)
    try:
        sha, _ = check_candidate(target / WEIGHTS_NAME, expected)
    except Rejected as e:
        raise CheckpointError(f"The copy in {target} failed verification: {e}") from None
    return Downloaded(name, hub_id, target, sha, got_from)


def _write_copy(src: Path, target: Path, overwrite: bool) -> Path:
    """Copy a repository folder (its files, links resolved) to ``target`` as one swap."""
    from hsizoo.io.atomic import OutputExistsError, atomic_folder

    def holds_model(f: Path) -> bool:
        return any((f / n).exists() for n in (WEIGHTS_NAME, CONFIG_NAME))

    if target.is_dir() and holds_model(target) and not overwrite:
        raise OutputExistsError(f"{target} already holds a checkpoint; pass overwrite=True (CLI: "
                                "--overwrite) to replace it, or choose another folder.")
    with atomic_folder(target, may_replace=lambda f: overwrite or not holds_model(f),
                       keep_other_files=False) as new:
        for p in sorted(src.iterdir()):
            if p.is_file() and not p.name.startswith("."):
                shutil.copyfile(p.resolve(), new / p.name)  # cache entries are links to blobs
    return target
