"""timm's ``hf-hub:org/name[@revision]`` model names through :func:`hsizoo.create_model`.

``timm.create_model("hf-hub:...")`` first downloads the repository's ``config.json`` (its
architecture, ``model_args`` and ``pretrained_cfg``) and then the weights; hsizoo's builder then
fetches and verifies ``model.safetensors`` (:mod:`hsizoo.hub.load`). Offline, or when the Hub
cannot be reached, timm stops at the first step with huggingface_hub's
``LocalEntryNotFoundError``. :func:`create_from_hf_name` asks huggingface_hub for that
config.json itself (the cache first, then the network, honouring ``HF_HUB_OFFLINE`` and
``HF_ENDPOINT``) and, when it cannot get it, uses a local copy of the same repository, in the
order of DESIGN.md: a folder of ``$HSIZOO_HUB_MIRROR``, then the copy shipped with hsizoo (only
when no revision is asked for, or the one asked for is the commit that copy was published as).
With none of them it raises :class:`~hsizoo.hub.verify.CheckpointNotFoundError` naming what was
tried and what to do. Every copy is sha256-checked against its config.json; nothing is
unpickled.

``timm.create_model("hf-hub:...")`` itself gets the same fallback for hsizoo's own repositories
(those shipped with hsizoo or held in a mirror): :func:`install_timm_fallback` wraps the one
function timm calls for the config.json, so that when the Hub and the cache cannot give it, the
local copy is used (with a warning), or a :class:`CheckpointNotFoundError` says what was tried
and what to do. Any other repository goes through timm untouched, errors included.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from torch import nn

from hsizoo.hub.fetch import split_hub_id, try_hub_file
from hsizoo.hub.verify import CONFIG_NAME, WEIGHTS_NAME, CheckpointNotFoundError

__all__ = ["HF_PREFIXES", "is_hf_name", "create_from_hf_name", "install_timm_fallback"]

_logger = logging.getLogger(__name__)

#: timm's model-name prefixes that name a Hub repository or a folder holding one.
HF_PREFIXES = ("hf-hub:", "local-dir:")


def is_hf_name(name: str) -> bool:
    """Whether ``name`` is timm's ``hf-hub:`` or ``local-dir:`` form."""
    return name.startswith(HF_PREFIXES)


def _local_copy(hub_id: str, revision: str | None, tried: list[str]) -> Path | None:
    """A mirror folder, else the shipped folder, holding the repository (at ``revision``)."""
    from hsizoo.hub.load import MIRROR_ENV, mirror_folders
    from hsizoo.hub.shipped import WEIGHTS_DIR, published_revision, shipped_folder

    name = hub_id.rsplit("/", 1)[-1]
    if not mirror_folders():
        tried.append(f"local mirrors: none configured (${MIRROR_ENV} unset)")
    for mirror in mirror_folders():
        for folder in dict.fromkeys((mirror / hub_id, mirror / name)):
            if (folder / WEIGHTS_NAME).is_file() and (folder / CONFIG_NAME).is_file():
                if revision is None:
                    return folder
                tried.append(f"mirror {folder}: a mirror copy records no commit, and revision "
                             f"{revision!r} was asked for")
            else:
                tried.append(f"mirror {folder}: not found")
    folder = shipped_folder(hub_id)
    if folder is None:
        tried.append(f"shipped with hsizoo ({WEIGHTS_DIR}): not among the published checkpoints")
        return None
    published = published_revision(hub_id)
    if revision is None or revision == published:
        return folder
    tried.append(f"shipped {folder}: published as commit {published or '(not uploaded yet)'}, "
                 f"not revision {revision!r}")
    return None


def create_from_hf_name(name: str, pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """Build a model from timm's ``hf-hub:`` / ``local-dir:`` name, with local fallbacks.

    Args:
        name: ``hf-hub:org/name``, ``hf-hub:org/name@revision`` or ``local-dir:/path``.
        pretrained: Load the repository's weights (timm's meaning: without it, only the
            architecture and arguments of its config.json are used).
        **kwargs: Passed to :func:`timm.create_model` (model arguments, ``num_classes``, ...).

    Returns:
        The model.

    Raises:
        CheckpointNotFoundError: the repository's config.json could not be fetched and no local
            copy of it exists; the message lists what was tried and what to do.
        CheckpointError: a copy was found but failed verification.
    """
    import timm

    if name.startswith("local-dir:"):
        return timm.create_model(name, pretrained=pretrained, **kwargs)
    hub_id, revision = split_hub_id(name[len("hf-hub:"):], None)
    got, where = try_hub_file(hub_id, revision, CONFIG_NAME)
    if got is not None:
        # In the cache now: timm reads it from there (offline too) and builds the model; the
        # weights are then fetched and verified by hsizoo's builder.
        return timm.create_model(name, pretrained=pretrained, **kwargs)
    tried = [where]
    local = _local_copy(hub_id, revision, tried)
    if local is None:
        from hsizoo.hub.load import not_found_help

        raise CheckpointNotFoundError(
            f"Cannot load {name}: its config.json is neither in the Hugging Face cache nor "
            "downloadable, and no local copy of the repository exists. Tried, in order:\n  - "
            + "\n  - ".join(tried) + "\n" + not_found_help(hub_id, hub_id)
            + " Or pass the folder of a copy: hsizoo.create_model('local-dir:DIR') / "
            "hsizoo.create_model(DIR).")
    _logger.warning("%s: the Hub copy is unavailable (%s); loading the local copy %s instead "
                    "(sha256-checked against its config.json)", name, where, local)
    return timm.create_model(f"local-dir:{local}", pretrained=pretrained, **kwargs)


def _is_ours(hub_id: str) -> bool:
    """Whether hsizoo holds a copy of ``hub_id``: shipped with it, or in a configured mirror."""
    from hsizoo.hub.load import mirror_folders
    from hsizoo.hub.shipped import shipped_folder

    if shipped_folder(hub_id) is not None:
        return True
    name = hub_id.rsplit("/", 1)[-1]
    return any((m / hub_id / CONFIG_NAME).is_file() or (m / name / CONFIG_NAME).is_file()
               for m in mirror_folders())


def _download_failed(err: BaseException) -> bool:
    """Errors of fetching a file from the Hub (offline, unreachable, not there), not of parsing."""
    from huggingface_hub import errors as hf_errors

    from hsizoo.hub.fetch import _is_transport_error

    return isinstance(err, (hf_errors.LocalEntryNotFoundError, hf_errors.HfHubHTTPError,
                            OSError)) or _is_transport_error(err)


def install_timm_fallback() -> bool:
    """Give ``timm.create_model("hf-hub:...")`` hsizoo's offline fallback for its repositories.

    timm fetches an ``hf-hub:`` name's config.json with
    ``timm.models._factory.load_model_config_from_hf`` before any hsizoo code runs. This wraps
    that function (once): when fetching fails for a repository hsizoo holds a copy of, the copy
    is used as :func:`create_from_hf_name` would (mirror, then the shipped copy at its published
    commit), or :class:`CheckpointNotFoundError` lists what was tried. Other repositories and
    other errors reach the caller as timm raises them.

    Returns:
        Whether the wrapper is in place (False when this timm has no such function).
    """
    try:
        from timm.models import _factory
        from timm.models._hub import load_model_config_from_path
    except ImportError:  # pragma: no cover - a timm without the private module
        return False
    original = getattr(_factory, "load_model_config_from_hf", None)
    if original is None:  # pragma: no cover - a timm that moved it
        return False
    if getattr(original, "_hsizoo_fallback", False):
        return True

    def load_model_config_from_hf(model_id: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(model_id, *args, **kwargs)
        except Exception as err:
            hub_id, revision = split_hub_id(model_id, None)
            if not _download_failed(err) or not _is_ours(hub_id):
                raise
            tried = [f"Hugging Face Hub {hub_id}@{revision or 'main'}: {type(err).__name__}: "
                     f"{str(err).strip().splitlines()[0] if str(err).strip() else ''}"]
            local = _local_copy(hub_id, revision, tried)
            if local is None:
                from hsizoo.hub.load import not_found_help

                raise CheckpointNotFoundError(
                    f"Cannot load hf-hub:{model_id}: its config.json could not be fetched and no "
                    "usable local copy exists. Tried, in order:\n  - " + "\n  - ".join(tried)
                    + "\n" + not_found_help(hub_id, hub_id)) from err
            _logger.warning("hf-hub:%s: the Hub copy is unavailable (%s); loading the local copy "
                            "%s instead (sha256-checked against its config.json)", model_id,
                            type(err).__name__, local)
            return load_model_config_from_path(local)

    load_model_config_from_hf._hsizoo_fallback = True  # type: ignore[attr-defined]
    load_model_config_from_hf.__wrapped__ = original  # type: ignore[attr-defined]
    _factory.load_model_config_from_hf = load_model_config_from_hf
    return True
