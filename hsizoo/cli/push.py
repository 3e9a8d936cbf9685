"""``hsizoo push``: publish a model or a checkpoint folder as a Hugging Face Hub repository.

The repository gets exactly a checkpoint folder (DESIGN.md, "Weights and the Hub"):
``model.safetensors``, ``config.json`` and the model card ``README.md`` rendered from it
(:mod:`hsizoo.hub.card`), written by :func:`hsizoo.hub.save.save_pretrained` when the source is a
model name, checked by :func:`hsizoo.hub.save.verify_folder`, uploaded by
:func:`hsizoo.hub.save.push_to_hub` through huggingface_hub (``HF_ENDPOINT``, ``HF_TOKEN``).
The commit the upload made is printed; ``--record-revision`` also writes it to
``hsizoo/weights/revisions.json``, where the registry's pretrained configs read the revision
they download (:mod:`hsizoo.hub.shipped`).
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hsizoo.cli import Command, UsageError

__all__ = ["PUSH_COMMAND", "PUSH_HELP", "push"]


def _folder_for(source: str, repo_id: str, work: Path) -> Path:
    """The checkpoint folder to upload: ``source`` itself, a shipped one, or one saved here."""
    from hsizoo.hub.shipped import shipped_folder
    from hsizoo.hub.verify import CONFIG_NAME
    from hsizoo.models._factory import create_model, is_hsizoo_model

    p = Path(source).expanduser()
    if p.is_dir():
        if not (p / CONFIG_NAME).is_file():
            raise UsageError(f"{p} has no {CONFIG_NAME}: pass a folder written by "
                             "hsizoo.save_pretrained (or hsizoo finetune / pretrain), or a model "
                             "name such as s2former_tiny.ssl_simulated.")
        return p
    if p.suffix or "/" in source:
        raise UsageError(f"{source} is not a checkpoint folder: pass the folder that holds "
                         "model.safetensors and config.json, or a registered model name.")
    if not is_hsizoo_model(source):
        raise UsageError(f"{source!r} is neither a checkpoint folder nor an hsizoo model; "
                         "`hsizoo list --pretrained` lists the published ones.")
    import timm

    cfg = timm.models.get_pretrained_cfg(source)
    hub_id = (cfg.to_dict() if cfg is not None else {}).get("hf_hub_id")
    folder = shipped_folder(hub_id) if hub_id else None
    if folder is not None:
        return folder  # the published folder, its provenance and card included
    from hsizoo.hub.save import save_pretrained

    model = create_model(source, pretrained=True)
    tag = source.split(".", 1)[1] if "." in source else None
    return save_pretrained(model, work / repo_id.rsplit("/", 1)[-1],
                           config={k: v for k, v in dict(tag=tag, hf_hub_id=repo_id).items() if v})


def push(source: str, repo_id: str, *, revision: str | None = None, private: bool = False,
         record_revision: bool = False, revisions_file: Path | None = None) -> str:
    """Publish ``source`` as the Hub repository ``repo_id``.

    Args:
        source: A checkpoint folder, or a registered model name (``arch.tag``: its shipped
            folder when there is one, else the model with its weights, saved first).
        repo_id: ``org/name`` of the repository (created if needed).
        revision: Branch to commit to (default: the repository's main branch).
        private: Create the repository as private.
        record_revision: Write the commit to the revisions file (release step).
        revisions_file: The file; default ``hsizoo/weights/revisions.json``.

    Returns:
        The commit hash of the upload.
    """
    from hsizoo.hub.save import push_to_hub

    with tempfile.TemporaryDirectory(prefix="hsizoo-push-") as work:
        folder = _folder_for(source, repo_id, Path(work))
        url = push_to_hub(folder, repo_id, revision=revision, private=private)
    commit = url.rstrip("/").rsplit("/", 1)[-1]
    if record_revision:
        from hsizoo.hub.shipped import record_revision as record

        record(repo_id, commit, revisions_file)
    return commit


def _add_args(p: Any) -> None:
    p.add_argument("source", metavar="MODEL_OR_CHECKPOINT",
                   help="a checkpoint folder (model.safetensors + config.json) or a model name "
                        "arch.tag")
    p.add_argument("repo_id", metavar="REPO_ID", help="Hub repository org/name (created if needed)")
    p.add_argument("--revision", default=None, help="branch to commit to (default: main)")
    p.add_argument("--private", action="store_true", help="create the repository as private")
    p.add_argument("--record-revision", action="store_true",
                   help="write the commit to hsizoo/weights/revisions.json (the registry then "
                        "downloads that commit; the release step)")


def _run(args: Any) -> int:
    commit = push(args.source, args.repo_id, revision=args.revision, private=args.private,
                  record_revision=args.record_revision)
    from huggingface_hub import constants

    print(f"pushed {args.source} to {constants.ENDPOINT}/{args.repo_id}, commit {commit}")
    print(f"  load it with  hsizoo.create_model('hf-hub:{args.repo_id}@{commit}', pretrained=True)")
    if args.record_revision:
        print("  recorded in hsizoo/weights/revisions.json: the registry pins this commit")
    else:
        print(f"  pin it: hf_hub_revision={commit!r} (or rerun with --record-revision)")
    return 0


PUSH_HELP = "publish a model or checkpoint folder to the Hugging Face Hub (safetensors, config, card)"
PUSH_COMMAND = Command(PUSH_HELP, _add_args, _run)
