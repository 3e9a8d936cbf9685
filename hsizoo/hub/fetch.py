"""The Hugging Face cache and Hub side of checkpoint lookup: fetching through huggingface_hub.

:func:`try_hub` downloads ``model.safetensors`` (and ``config.json`` when present) through
:func:`huggingface_hub.hf_hub_download`, which honours ``HF_ENDPOINT``, ``HF_HUB_OFFLINE`` and
``HF_HOME`` / ``HF_HUB_CACHE``, and turns every way that can fail into one line for the loader's
"tried" list. :func:`evict_from_cache` removes a download that failed verification, so that a
retry fetches it again; :func:`hub_recorded_sha` reads the sha256 a cached ``config.json``
records, without the network. Verification itself is :mod:`hsizoo.hub.verify`'s job.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from hsizoo.hub.verify import CONFIG_NAME, WEIGHTS_NAME

__all__ = [
    "BROKE_OFF",
    "hsizoo_version",
    "split_hub_id",
    "hub_recorded_sha",
    "try_hub",
    "try_hub_file",
    "evict_from_cache",
]

_logger = logging.getLogger(__name__)

#: The words of :func:`try_hub`'s reason when the connection broke off mid-download.
BROKE_OFF = "the connection broke off"


def hsizoo_version() -> str:
    """hsizoo's version, for the Hub's user agent and the config.json of a saved model.

    Returns:
        ``hsizoo.__version__``, else the installed distribution's version, else ``"unknown"``.
    """
    import sys

    mod = sys.modules.get("hsizoo")
    version = getattr(mod, "__version__", None)
    if version:
        return str(version)
    try:
        from importlib.metadata import version as dist_version

        return dist_version("hsizoo")
    except Exception:
        return "unknown"


def split_hub_id(hub_id: str, revision: str | None) -> tuple[str, str | None]:
    """Split timm's ``org/name@revision`` form of a Hub repository.

    Args:
        hub_id: ``org/name``, optionally with an ``@revision`` suffix.
        revision: The revision given separately, if any; it wins over the suffix.

    Returns:
        (``org/name``, revision or None).
    """
    # timm's "hf-hub:org/name@revision" puts the revision into hf_hub_id.
    if "@" in hub_id:
        hub_id, _, rev = hub_id.partition("@")
        revision = revision or rev or None
    return hub_id, revision


def hub_recorded_sha(hub_id: str, revision: str | None) -> str | None:
    """sha256 in the Hub repository's config.json when it is in the cache (no network).

    ``timm.create_model("hf-hub:...")`` downloads that config.json first and carries no pinned
    sha256: this one stands in for the pin, so that a shipped copy is used only if it is the
    version the Hub holds.

    Args:
        hub_id: ``org/name`` of the repository.
        revision: The revision, or None for the default branch.

    Returns:
        The recorded sha256 in lower case, or None when not cached or not recorded.
    """
    from huggingface_hub import try_to_load_from_cache

    hit = try_to_load_from_cache(hub_id, CONFIG_NAME, revision=revision)
    if not isinstance(hit, str):
        return None
    try:
        sha = json.loads(Path(hit).read_text(encoding="utf-8")).get("sha256")
    except (OSError, ValueError, AttributeError):
        return None
    return sha.lower() if isinstance(sha, str) and sha else None


def try_hub_file(repo_id: str, revision: str | None, filename: str) -> tuple[Path | None, str]:
    """Fetch one file of a Hub repository through huggingface_hub (cache first, then network).

    Args:
        repo_id: ``org/name`` of the repository.
        revision: The revision (a commit hash, tag or branch), or None for the default branch.
        filename: The file in the repository.

    Returns:
        (path or None, where it was looked for and, on failure, why it failed, in one line).
    """
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub import errors as hf_errors

    rev = revision or "main"
    where = f"Hugging Face Hub {repo_id}@{rev} via {constants.ENDPOINT} (cache {constants.HF_HUB_CACHE})"
    kw: dict[str, Any] = dict(revision=revision, library_name="hsizoo", library_version=hsizoo_version())
    try:
        return Path(hf_hub_download(repo_id, filename, **kw)), where
    except hf_errors.RepositoryNotFoundError:
        return None, f"{where}: repository not found (or private/gated and no valid token)"
    except hf_errors.RevisionNotFoundError:
        return None, f"{where}: revision {rev!r} not found in the repository"
    except hf_errors.RemoteEntryNotFoundError:
        return None, f"{where}: the repository has no {filename}"
    except hf_errors.LocalEntryNotFoundError as e:
        if constants.is_offline_mode():
            return None, f"{where}: offline (HF_HUB_OFFLINE=1) and {filename} is not in the cache"
        return None, (f"{where}: {filename} is not in the cache and the Hub could not be reached "
                      f"({_first_line(e.__cause__ or e)})")
    except (hf_errors.HfHubHTTPError, OSError, ValueError) as e:
        return None, f"{where}: {type(e).__name__}: {_first_line(e)}"
    except Exception as e:
        if not _is_transport_error(e):
            raise
        # A connection dropped mid-body, refused or timed out, after huggingface_hub's own
        # retries: the HTTP client's exception (httpx, requests) becomes one line of the error.
        return None, (f"{where}: {BROKE_OFF} while downloading {filename} "
                      f"({type(e).__name__}: {_first_line(e)}); check the network and retry (the "
                      "partial download in the cache is resumed), or set HF_HUB_OFFLINE=1 and "
                      "use a local copy")


def try_hub(repo_id: str, revision: str | None) -> tuple[Path | None, str]:
    """Fetch model.safetensors (and config.json if present) through huggingface_hub.

    Args:
        repo_id: ``org/name`` of the repository.
        revision: The revision, or None for the default branch.

    Returns:
        (path or None, reason it failed).
    """
    path, where = try_hub_file(repo_id, revision, WEIGHTS_NAME)
    if path is None:
        return None, where
    # config.json carries the recorded sha256 and the provenance; a repository without one is
    # still loadable (the pretrained config's sha256 is then the only check).
    cfg, why = try_hub_file(repo_id, revision, CONFIG_NAME)
    if cfg is None:
        _logger.debug("no %s: %s", CONFIG_NAME, why)
    return path, where


def _is_transport_error(e: BaseException) -> bool:
    """A network error of the HTTP client huggingface_hub uses (httpx, its fork, or requests)."""
    root = type(e).__module__.split(".", 1)[0]
    return isinstance(e, (ConnectionError, TimeoutError)) or root in (
        "httpx", "httpx2", "httpcore", "httpcore2", "requests", "urllib3", "h11")


def evict_from_cache(path: Path) -> str:
    """Remove a refused download (and the config.json beside it) from the Hugging Face cache.

    Otherwise huggingface_hub would answer every retry with the same bad file, even after the
    server is healthy. Only files inside the cache are touched.

    Args:
        path: The refused ``model.safetensors`` in the cache.

    Returns:
        A note for the error message.
    """
    from huggingface_hub import constants

    cache = Path(constants.HF_HUB_CACHE).resolve()
    removed = False
    for link in (path, path.parent / CONFIG_NAME):
        blob = link.resolve()
        if cache in blob.parents and cache in link.absolute().parents:
            for p in dict.fromkeys((link, blob)):
                try:
                    p.unlink(missing_ok=True)
                    removed = True
                except OSError as e:
                    _logger.warning("could not remove %s from the cache: %s", p, e)
    return ("; it was removed from the Hugging Face cache, so the next try downloads it again"
            if removed else "")


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
