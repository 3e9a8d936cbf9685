"""``hsizoo download``: fetch a checkpoint ahead of time, for machines without network."""
from __future__ import annotations

from typing import Any

from hsizoo.cli import Command
from hsizoo.cli import args as types
from hsizoo.hub.download import SOURCES, Downloaded, download_pretrained
from hsizoo.hub.verify import WEIGHTS_NAME

__all__ = ["DOWNLOAD_COMMAND", "describe"]

def describe(d: Downloaded, to_folder: bool) -> str:
    """What was done and how to load it, for the command line."""
    lines = [f"{d.name}: {WEIGHTS_NAME} sha256 {d.sha256} verified, from "
             f"{'the copy shipped with hsizoo' if d.source == 'package' else 'the Hub (' + d.hf_hub_id + ')'}",
             f"  written to {d.folder}"]
    if to_folder:
        arg = d.name if "/" not in d.name else "<arch>.<tag>"
        lines += ["  load it on the offline machine (copy the folder there first) with",
                  f"    HSIZOO_HUB_MIRROR={d.folder.parent}  and  "
                  f"hsizoo.create_model({arg!r}, pretrained=True)",
                  f"  or  hsizoo.create_model({str(d.folder)!r})  (CLI: --model {d.folder})"]
    else:
        lines += ["  loads with HF_HUB_OFFLINE=1 from this cache (HF_HUB_CACHE) from now on"]
    return "\n".join(lines)



def _add_args(p: Any) -> None:
    p.add_argument("name", help="checkpoint: arch.tag (e.g. s2former_tiny.ssl_simulated), arch "
                                "(its default tag) or a Hub repository org/name")
    p.add_argument("--to", metavar="DIR", default=None, type=types.path,
                   help="write DIR/<repo name>/ (copy it to the offline machine, then set "
                        "HSIZOO_HUB_MIRROR=DIR or pass the folder as checkpoint_path / --model); "
                        "default: fill the Hugging Face cache (HF_HUB_CACHE)")
    p.add_argument("--from", dest="source", choices=SOURCES, default="auto",
                   help="where to copy from: the copy shipped with hsizoo when it is the pinned "
                        "version, else the Hub (auto, the default), or only one of them")
    p.add_argument("--revision", default=None,
                   help="Hub revision (branch, tag, commit) instead of the registry's pinned one")
    p.add_argument("--overwrite", action="store_true",
                   help="replace DIR/<repo name>/ when it already holds a checkpoint")


def _run(args: Any) -> int:
    if args.to is not None:  # before any download: DIR must be (or become) a writable folder
        from hsizoo.io.atomic import check_output

        check_output(args.to, overwrite=True, folder=True, create_parents=True, option="--to")
    d = download_pretrained(args.name, args.to, revision=args.revision, source=args.source,
                            overwrite=args.overwrite)
    print(describe(d, args.to is not None))
    return 0


def _command() -> Any:
    return Command(DOWNLOAD_HELP, _add_args, _run)


DOWNLOAD_HELP = ("fetch a checkpoint into a folder or the Hugging Face cache, sha256-checked, "
                 "for machines without network")
DOWNLOAD_COMMAND = _command()
