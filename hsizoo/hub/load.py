"""Pretrained weights: offline-first lookup of a verified checkpoint and safetensors loading.

A checkpoint is a folder whose content is exactly a Hugging Face Hub model repository
(DESIGN.md, "Weights and the Hub")::

    model.safetensors   the weights (never a pickle)
    config.json         architecture, model_args, canonical grid, sha256 of the weights, provenance
    README.md           the model card, rendered from config.json by :mod:`hsizoo.hub.card`

Such folders are written and published by :mod:`hsizoo.hub.save`; this module finds and loads
them. Loading is offline-first. For a pretrained config (timm's ``pretrained_cfg`` dict, see
:class:`hsizoo.hub.cfg.HsiPretrainedCfg`) the places tried, in order, are:

1. an explicit path, ``pretrained_cfg["file"]`` (a ``.safetensors`` file or a saved folder);
2. local mirror folders of Hub repositories: each folder of ``HSIZOO_HUB_MIRROR``
   (``os.pathsep``-separated); in each, ``<mirror>/<org>/<repo>/model.safetensors`` and
   ``<mirror>/<repo>/model.safetensors`` (what ``hsizoo download NAME --to DIR`` writes);
3. the published checkpoints shipped inside the package, ``hsizoo/weights/<arch>.<tag>/``
   (:mod:`hsizoo.hub.shipped`), used for the repository they record and only when their
   sha256 is the pinned one;
4. the Hugging Face cache and the Hub through :func:`huggingface_hub.hf_hub_download`, which
   honours ``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, ``HF_HOME`` / ``HF_HUB_CACHE`` as users expect
   (``hsizoo download NAME`` fills that cache).

Every candidate is checked by :mod:`hsizoo.hub.verify` against the sha256 pinned in the
pretrained config and the sha256 recorded in the ``config.json`` beside it; the Hugging Face
cache and Hub part is :mod:`hsizoo.hub.fetch`. When nothing works,
:class:`hsizoo.hub.verify.CheckpointError` names every place tried and why it failed.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from hsizoo.hub.fetch import BROKE_OFF, evict_from_cache, hub_recorded_sha, split_hub_id, try_hub
from hsizoo.hub.shipped import shipped_folder, try_shipped
from hsizoo.hub.verify import (
    WEIGHTS_NAME,
    CheckpointError,
    CheckpointNotFoundError,
    Rejected,
    check_candidate,
    read_config,
    refuse_pickle,
)

__all__ = [
    "MIRROR_ENV",
    "not_found_help",
    "ResolvedCheckpoint",
    "resolve",
    "resolve_checkpoint",
    "locate_checkpoint",
    "load_state_dict",
    "load_pretrained",
]

_logger = logging.getLogger(__name__)

MIRROR_ENV = "HSIZOO_HUB_MIRROR"

_HELP = (
    "What to do: pass checkpoint_path=<folder or model.safetensors> (CLI: the folder as --model "
    "of hsizoo finetune), or put "
    f"a copy of the Hub repository under a folder named in ${MIRROR_ENV} "
    "(<mirror>/<org>/<repo>/model.safetensors), or check the network, HF_ENDPOINT and "
    "HF_HUB_OFFLINE so that huggingface_hub can download it."
)


def not_found_help(name: str, hub_id: str | None) -> str:
    """What to do when no copy was found, with the exact commands for this checkpoint.

    Args:
        name: The checkpoint's name (``arch.tag``), or its Hub repository.
        hub_id: ``org/name`` of its Hub repository, or None.

    Returns:
        A paragraph for the end of the error message.
    """
    if not hub_id:
        return _HELP
    from huggingface_hub import constants

    dl = name if "." in name else hub_id
    return (
        f"What to do: on a machine with network access run `hsizoo download {dl} --to DIR`, copy "
        f"DIR here and set {MIRROR_ENV}=DIR (or pass checkpoint_path=DIR/{hub_id.rsplit('/', 1)[-1]}"
        f"; CLI: that folder as --model of hsizoo finetune); or run `hsizoo download {dl}` to "
        f"fill the Hugging Face cache ({constants.HF_HUB_CACHE}) from {constants.ENDPOINT} "
        f"(repository {hub_id}; HF_ENDPOINT selects another Hub, HF_HUB_OFFLINE=1 forbids the "
        "network).")


# --------------------------------------------------------------------------------------------
# Resolution
# --------------------------------------------------------------------------------------------


@dataclass
class ResolvedCheckpoint:
    """A verified checkpoint file and where it came from.

    Attributes:
        path: The ``model.safetensors`` file.
        source: ``"file"``, ``"mirror"``, ``"shipped"`` (package data) or ``"hub"``.
        sha256: Its sha256.
        config: The ``config.json`` beside it, or an empty dict.
        tried: Places tried before this one, with why each failed.
    """

    path: Path
    source: str
    sha256: str
    config: dict[str, Any] = field(default_factory=dict)
    tried: list[str] = field(default_factory=list)


def mirror_folders() -> list[Path]:
    """Local mirror folders of Hub repositories, in the order they are searched.

    The published checkpoints shipped inside the package are searched after these, by
    :func:`hsizoo.hub.shipped.shipped_folder`.

    Returns:
        The folders of ``$HSIZOO_HUB_MIRROR`` (whether or not they exist).
    """
    return [Path(p).expanduser() for p in os.environ.get(MIRROR_ENV, "").split(os.pathsep) if p]


def _mirror_candidates(hf_hub_id: str) -> list[Path]:
    out: list[Path] = []
    name = hf_hub_id.rsplit("/", 1)[-1]
    for folder in mirror_folders():
        for rel in dict.fromkeys((hf_hub_id, name)):  # dedupe when the id has no org part
            out.append(folder / rel / WEIGHTS_NAME)
    return out


def _cfg_name(cfg: Mapping[str, Any]) -> str:
    arch, tag = cfg.get("architecture"), cfg.get("tag")
    return f"{arch}.{tag}" if arch and tag else str(arch or "<unnamed model>")


def resolve(pretrained_cfg: Mapping[str, Any]) -> ResolvedCheckpoint:
    """Find and verify the checkpoint a pretrained config points at.

    Args:
        pretrained_cfg: timm pretrained config as a dict (``file``, ``hf_hub_id``,
            ``hf_hub_revision``, ``sha256``, ``architecture``, ``tag``).

    Returns:
        The verified checkpoint and where it came from.

    Raises:
        CheckpointNotFoundError: no place holds it; the message lists every place tried.
        CheckpointError: the explicit file is unusable, or every copy found failed verification.
    """
    expected = pretrained_cfg.get("sha256") or None
    name = _cfg_name(pretrained_cfg)

    explicit = pretrained_cfg.get("file")
    if explicit:
        # An explicit path is the user's choice: never fall back to another copy behind their back.
        p = Path(explicit).expanduser()
        refuse_pickle(p)
        target = p / WEIGHTS_NAME if p.is_dir() else p
        if not target.is_file():
            hint = f" (the folder has no {WEIGHTS_NAME})" if p.is_dir() else ""
            raise CheckpointNotFoundError(
                f"Checkpoint for {name} not found: explicit path {target} does not exist{hint}. "
                "Pass a model.safetensors file or a folder written by hsizoo.save_pretrained.")
        if target.suffix != ".safetensors":
            raise CheckpointError(f"{target} is not a .safetensors file; hsizoo loads only safetensors.")
        try:
            sha, cfg = check_candidate(target, expected)
        except Rejected as e:
            raise CheckpointError(f"Checkpoint for {name} refused: {e}") from None
        if not expected and not cfg.get("sha256"):
            # The user's own file: nothing published pins it, so say that it was not verified.
            _logger.warning("%s: loading your own file %s (sha256 %s), unverified: no published "
                            "sha256 pins it (safetensors only, never a pickle)", name, target, sha)
        return ResolvedCheckpoint(target, "file", sha, cfg, [f"explicit file {target}: ok"])

    tried: list[str] = []
    checksum_failed = False
    hub_id = pretrained_cfg.get("hf_hub_id") or None
    revision = pretrained_cfg.get("hf_hub_revision") or None
    if hub_id is not None:
        hub_id, revision = split_hub_id(hub_id, revision)
        if expected is None and pretrained_cfg.get("source") == "hf-hub":
            expected = hub_recorded_sha(hub_id, revision)
    if hub_id is None:
        tried.append("explicit file: none given (pretrained_cfg has no 'file')")
        tried.append("mirrors and Hub: the pretrained config names no hf_hub_id")
        raise CheckpointNotFoundError(
            f"No weights for {name}: its pretrained config names neither a file nor a Hub "
            f"repository. Tried:\n  - " + "\n  - ".join(tried) + f"\n{_HELP}")

    if not _mirror_candidates(hub_id):
        tried.append(f"local mirrors: none configured (${MIRROR_ENV} unset)")
    for cand in _mirror_candidates(hub_id):
        if not cand.is_file():
            tried.append(f"mirror {cand}: not found")
            continue
        try:
            sha, cfg = check_candidate(cand, expected)
        except Rejected as e:
            checksum_failed |= e.checksum
            tried.append(f"mirror {cand}: {e}")
            continue
        _logger.info("%s: loading %s from local mirror %s", name, hub_id, cand)
        return ResolvedCheckpoint(cand, "mirror", sha, cfg, tried)

    shipped = try_shipped(hub_id, expected, tried)
    if shipped is not None:
        _logger.info("%s: loading %s shipped with hsizoo, %s", name, hub_id, shipped[0])
        return ResolvedCheckpoint(shipped[0], "shipped", shipped[1], shipped[2], tried)

    path, why = try_hub(hub_id, revision)
    if path is None:
        tried.append(why)
    else:
        try:
            sha, cfg = check_candidate(path, expected)
        except Rejected as e:
            checksum_failed |= e.checksum
            tried.append(f"{why}: {e}{evict_from_cache(path)}")
        else:
            return ResolvedCheckpoint(path, "hub", sha, cfg, tried)

    cls = CheckpointError if checksum_failed else CheckpointNotFoundError
    head = ("refused" if checksum_failed else "could not be downloaded"
            if BROKE_OFF in tried[-1] else "not found")
    raise cls(f"Checkpoint for {name} ({hub_id}) {head}. Tried, in order:\n  - "
              + "\n  - ".join(tried) + f"\n{not_found_help(name, hub_id)}")


def resolve_checkpoint(pretrained_cfg: Mapping[str, Any]) -> Path:
    """Path of the verified local ``model.safetensors`` a pretrained config points at.

    Downloads through huggingface_hub when no local copy exists (and the Hub is reachable).

    Args:
        pretrained_cfg: timm pretrained config as a dict.

    Returns:
        The local file, verified against every sha256 known for it.

    Raises:
        CheckpointNotFoundError: nothing found; the message lists every place tried.
        CheckpointError: found only copies that failed verification, or a pickle was named.
    """
    return resolve(pretrained_cfg).path


def locate_checkpoint(pretrained_cfg: Mapping[str, Any]) -> str:
    """Where a pretrained config would be loaded from right now, without downloading anything.

    Args:
        pretrained_cfg: timm pretrained config as a dict.

    Returns:
        One line: the explicit file, the mirror path, the Hugging Face cache hit, the URL it would
        be downloaded from, or why it is unavailable. Checksums are not verified here.
    """
    explicit = pretrained_cfg.get("file")
    if explicit:
        p = Path(explicit).expanduser()
        target = p / WEIGHTS_NAME if p.is_dir() else p
        return f"explicit file {target}" + ("" if target.is_file() else " (missing)")
    hub_id = pretrained_cfg.get("hf_hub_id")
    if not hub_id:
        return "no weights (no file, no hf_hub_id)"
    hub_id, rev = split_hub_id(hub_id, pretrained_cfg.get("hf_hub_revision") or None)
    for cand in _mirror_candidates(hub_id):
        if cand.is_file():
            return f"mirror {cand}"
    from huggingface_hub import constants, hf_hub_url, try_to_load_from_cache

    folder = shipped_folder(hub_id)
    want = pretrained_cfg.get("sha256")
    if folder is not None and (folder / WEIGHTS_NAME).is_file():
        try:
            recorded = read_config(folder).get("sha256")
        except Rejected:
            recorded = None
        if not want or not recorded or str(want).lower() == str(recorded).lower():
            return f"shipped with hsizoo {folder / WEIGHTS_NAME}"
    hit = try_to_load_from_cache(hub_id, WEIGHTS_NAME, revision=rev)
    if isinstance(hit, str):
        return f"Hugging Face cache {hit}"
    if constants.is_offline_mode():
        return f"unavailable: offline (HF_HUB_OFFLINE=1) and {hub_id}@{rev or 'main'} is not cached"
    return f"would download {hf_hub_url(hub_id, WEIGHTS_NAME, revision=rev)}"


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def load_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a safetensors state dict onto the CPU; never unpickles.

    Args:
        path: A ``.safetensors`` file.

    Returns:
        The tensors by name.

    Raises:
        CheckpointError: the path is a pickle, or not a valid safetensors file.
    """
    p = Path(path)
    refuse_pickle(p)
    from safetensors.torch import load_file

    try:
        return load_file(str(p), device="cpu")
    except Exception as e:  # SafetensorError is not exported under a stable name
        raise CheckpointError(f"{p} is not a valid safetensors file ({e}); it is corrupt or "
                              "truncated: delete it and fetch it again") from None


def _checkpoint_filter_fn(model: nn.Module) -> Any:
    """``checkpoint_filter_fn(state_dict, model)``: the model's own, else its module's (timm style)."""
    import sys

    fn = getattr(model, "checkpoint_filter_fn", None)
    if fn is None:
        fn = getattr(sys.modules.get(type(model).__module__), "checkpoint_filter_fn", None)
    return fn if callable(fn) else None


def _head_keys(keys: Any) -> set[str]:
    return {k for k in keys if k.startswith("head.")}


def load_pretrained(model: nn.Module, pretrained_cfg: Mapping[str, Any] | None = None, *,
                    strict: bool = True) -> dict[str, Any]:
    """Load verified pretrained weights into ``model``.

    The classifier is handled like MAE's fine-tuning loader: when the checkpoint has no head, or
    one whose shape differs from ``model.head`` (self-supervised weights into a 16-class model),
    the checkpoint's ``head.*`` keys are dropped, the rest is loaded non-strictly, and the exact
    set of missing keys must equal the model's ``head.*`` keys with nothing unexpected.

    Args:
        model: The model. ``checkpoint_filter_fn(state_dict, model)`` is applied first when the
            model or the module defining its class has one (timm style).
        pretrained_cfg: timm pretrained config dict; defaults to ``model.pretrained_cfg``.
        strict: Require an exact key match when the head is kept.

    Returns:
        What was done: ``source`` (file/mirror/hub), ``path``, ``sha256``, ``head_replaced``,
        ``dropped_keys``, ``missing_keys``, ``unexpected_keys``.

    Raises:
        CheckpointError: not found, failed verification, or the keys/shapes do not match.
    """
    cfg = dict(pretrained_cfg if pretrained_cfg is not None else getattr(model, "pretrained_cfg", {}) or {})
    found = resolve(cfg)
    state = load_state_dict(found.path)
    filter_fn = _checkpoint_filter_fn(model)
    if filter_fn is not None:
        state = filter_fn(state, model)

    model_sd = model.state_dict()
    model_head = _head_keys(model_sd)
    ckpt_head = _head_keys(state)
    head_matches = ckpt_head == model_head and all(
        state[k].shape == model_sd[k].shape for k in ckpt_head)
    where = f"{found.path} ({found.source})"

    # Shape mismatches outside the head mean another architecture or other model args: say so
    # rather than let load_state_dict print a wall of sizes.
    bad = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(model_sd[k].shape)}"
           for k in state if k in model_sd and k not in ckpt_head and state[k].shape != model_sd[k].shape]
    if bad:
        args = found.config.get("model_args")
        raise CheckpointError(
            f"Checkpoint {where} does not fit this model: shape mismatch in {len(bad)} tensors:\n  "
            + "\n  ".join(bad[:10]) + ("\n  ..." if len(bad) > 10 else "")
            + (f"\nIt was saved with architecture={found.config.get('architecture')!r}, "
               f"model_args={args}; build the model with those arguments." if args else ""))

    dropped: list[str] = []
    if head_matches:
        result = model.load_state_dict(state, strict=False)
        missing, unexpected = sorted(result.missing_keys), sorted(result.unexpected_keys)
        if strict and (missing or unexpected):
            raise CheckpointError(
                f"Checkpoint {where} does not match the model's keys: missing {missing}, "
                f"unexpected {unexpected}.")
    else:
        dropped = sorted(ckpt_head)
        state = {k: v for k, v in state.items() if k not in ckpt_head}
        result = model.load_state_dict(state, strict=False)
        missing, unexpected = sorted(result.missing_keys), sorted(result.unexpected_keys)
        # The only acceptable difference is the (new) classifier: anything else is a wrong file.
        if set(missing) != model_head or unexpected:
            raise CheckpointError(
                f"Checkpoint {where} does not match the model: after dropping its head, the "
                f"missing keys must be exactly the model's head {sorted(model_head)}, got missing "
                f"{missing} and unexpected {unexpected}.")

    info = dict(source=found.source, path=str(found.path), sha256=found.sha256,
                head_replaced=not head_matches, dropped_keys=dropped, missing_keys=missing,
                unexpected_keys=unexpected)
    _logger.info("%s: loaded %s (%s, sha256 %s)%s", _cfg_name(cfg), found.path, found.source,
                 found.sha256[:12], "; classifier head newly initialised" if not head_matches else "")
    return info
