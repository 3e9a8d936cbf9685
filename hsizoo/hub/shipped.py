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

Revisions. A repository cannot name its own commit (the hash covers its files), so the commit
each published repository was uploaded as is kept beside the folders, in
``hsizoo/weights/revisions.json`` (``{hf_hub_id: commit}``), written at publish time by
``hsizoo push ... --record-revision`` (:func:`record_revision`); the registry's pretrained
configs read it (:func:`published_revision`) as ``hf_hub_revision``, so a download asks for
that commit and a branch moved later changes nothing. A repository not yet uploaded has no
entry (its revision is None): the sha256 the registry pins is then what keeps any other
version out, refused rather than loaded.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hsizoo.hub.verify import WEIGHTS_NAME, Rejected, check_candidate, read_config

__all__ = ["WEIGHTS_DIR", "REVISIONS_FILE", "shipped_folders", "shipped_folder", "try_shipped",
           "published_revision", "record_revision"]

#: The package's folder of published checkpoints (``hsizoo/weights``).
WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
#: ``{hf_hub_id: commit}`` of the uploaded repositories (see the module docstring).
REVISIONS_FILE = WEIGHTS_DIR / "revisions.json"
_COMMIT_LEN = 40


def _read_revisions(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise ValueError(f"{path} is not valid JSON ({e}); restore it from the release "
                         "(git checkout, or reinstall hsizoo).") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object {{hf_hub_id: commit}}.")
    return {str(k): str(v) for k, v in data.items()}


def published_revision(hf_hub_id: str, path: Path | None = None) -> str | None:
    """The commit a published repository was uploaded as, or None when it has not been yet.

    Args:
        hf_hub_id: ``org/name`` of the repository.
        path: The revisions file; default :data:`REVISIONS_FILE`.

    Returns:
        A 40-character commit hash, or None.
    """
    return _read_revisions(path or REVISIONS_FILE).get(hf_hub_id)


def record_revision(hf_hub_id: str, commit: str, path: Path | None = None) -> Path:
    """Record the commit a repository was uploaded as (the release step after ``hsizoo push``).

    Args:
        hf_hub_id: ``org/name`` of the repository.
        commit: The commit hash the upload returned.
        path: The revisions file; default :data:`REVISIONS_FILE`.

    Returns:
        The file written.

    Raises:
        ValueError: ``commit`` is not a 40-character hexadecimal commit hash (a branch name
            such as ``main`` moves, so it pins nothing).
    """
    from hsizoo.io.atomic import write_atomic

    commit = commit.strip().lower()
    if len(commit) != _COMMIT_LEN or any(c not in "0123456789abcdef" for c in commit):
        raise ValueError(f"{commit!r} is not a commit hash (40 hexadecimal digits); a branch or "
                         "tag can move, so only a commit pins a revision.")
    path = path or REVISIONS_FILE
    data = _read_revisions(path)
    data[hf_hub_id] = commit
    write_atomic(path, (json.dumps(dict(sorted(data.items())), indent=2) + "\n").encode(),
                 overwrite=True)
    return path


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
