"""The ``hsizoo`` command line.

Subcommands live in :data:`COMMANDS`, a dict from name to a :class:`Command` (or to the
``"module:attribute"`` path of one, imported only when that subcommand runs, so ``hsizoo --help``
stays fast and one broken command cannot break the others). To add a subcommand, define a
``Command`` in your module and add one line to :data:`COMMANDS` (or call
:func:`register_command`).

User errors (unknown model, missing file, bad argument) print one message on stderr and exit
with status 2; ``--debug`` shows the traceback. ``-q``/``--quiet`` (before or after the
subcommand) turns progress bars and notes off, leaving results and errors
(:mod:`hsizoo.runtime.progress`); ``--json`` on the commands that print results prints them as
one JSON object on stdout. ``hsizoo --version`` and ``hsizoo --help`` import neither torch nor
timm. Ctrl-C prints one line and exits with status 130
(:data:`INTERRUPTED`). Argument types (positive numbers, seeds, wavelength lists) are in
:mod:`hsizoo.cli.args`.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

__all__ = ["Command", "COMMANDS", "register_command", "main", "UsageError", "INTERRUPTED",
           "add_json_argument", "print_json", "version_line"]


#: Exit status after Ctrl-C (128 + SIGINT, as shells report it).
INTERRUPTED = 130


class UsageError(Exception):
    """An error in the user's input: reported without a traceback, exit status 2."""


@dataclass(frozen=True)
class Command:
    """One subcommand.

    Attributes:
        help: One line for ``hsizoo --help``.
        add_arguments: Adds the subcommand's arguments to its parser.
        run: Runs it; returns the exit status.
    """

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


# ------------------------------------------------------------------------------------- list


def _add_list_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("filter", nargs="?", default="*", help="fnmatch pattern, e.g. 's2former_*'")
    p.add_argument("--pretrained", action="store_true", help="only models with published weights")
    add_json_argument(p)


def add_json_argument(p: argparse.ArgumentParser) -> None:
    """``--json``: the command's result as one JSON object on stdout (nothing else there)."""
    p.add_argument("--json", action="store_true",
                   help="print the result as one JSON object on stdout")


def print_json(obj: object) -> None:
    """Print ``obj`` as one JSON object on stdout (paths, numpy numbers as strings / numbers)."""
    print(json.dumps(obj, indent=2, default=_json_default))


def _json_default(v: object) -> object:
    item = getattr(v, "item", None)  # numpy scalars
    if callable(item):
        try:
            return item()
        except (TypeError, ValueError):
            pass
    tolist = getattr(v, "tolist", None)  # numpy arrays
    return tolist() if callable(tolist) else str(v)


def _model_summary(name: str) -> dict[str, object]:
    import torch
    from timm.models import get_arch_pretrained_cfgs, split_model_name_tag

    from hsizoo.models._factory import create_model

    arch = split_model_name_tag(name)[0]
    # The meta device builds the module without allocating or initialising weights.
    try:
        with torch.device("meta"):
            model = create_model(arch)
    except Exception:
        model = create_model(arch)
    args = dict(getattr(model, "model_args", {}) or {})
    tags = [n.split(".", 1)[1] for n, c in get_arch_pretrained_cfgs(arch).items()
            if "." in n and c.has_weights]
    return dict(
        name=name,
        params=sum(p.numel() for p in model.parameters()),
        embed_dim=getattr(model, "embed_dim", args.get("embed_dim", "")),
        depth=args.get("depth", len(getattr(model, "blocks", [])) or ""),
        patch=getattr(model, "patch_size", args.get("patch_size", "")),
        tags=",".join(tags) or "-",
    )


def _table(rows: list[dict[str, object]], columns: Sequence[tuple[str, str]]) -> str:
    cells = [[h for _, h in columns]] + [[_cell(r[k]) for k, _ in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells)


def _cell(v: object) -> str:
    return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)


def _run_list(args: argparse.Namespace) -> int:
    from hsizoo.models._factory import list_models

    names = list_models(args.filter, pretrained=args.pretrained)
    if not names:
        raise UsageError(f"no {'pretrained ' if args.pretrained else ''}model matches "
                         f"{args.filter!r}; all models: {', '.join(list_models())}")
    rows = [_model_summary(n) for n in names]
    if args.json:
        print_json({"models": rows})
        return 0
    print(_table(rows, [("name", "model"), ("params", "params"), ("embed_dim", "embed dim"),
                        ("depth", "depth"), ("patch", "patch"), ("tags", "pretrained tags")]))
    return 0


# ------------------------------------------------------------------------------------- info


def _add_info_args(p: argparse.ArgumentParser) -> None:
    from hsizoo.cli.args import band_count

    p.add_argument("name", help="model name (arch or arch.tag) or a folder from save_pretrained")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--sensor", default=None,
                   help="sensor preset whose bands the FLOPs are counted for "
                        "(default: aviris_indian_pines)")
    g.add_argument("--bands", type=band_count, default=None,
                   help="count FLOPs for N bands spread evenly over 400-2500 nm instead")
    add_json_argument(p)


def _run_info(args: argparse.Namespace) -> int:
    import numpy as np
    from timm.models import get_arch_pretrained_cfgs, split_model_name_tag

    from hsizoo.models._factory import count_flops_per_pixel, create_model
    from hsizoo.hub.load import locate_checkpoint

    if args.bands is not None:
        if args.bands < 1:
            raise UsageError(f"--bands must be a positive number of bands, got {args.bands}")
        wavelengths = np.linspace(400.0, 2500.0, args.bands)
        bands_text = f"{args.bands} bands evenly spaced over 400-2500 nm"
    else:
        from hsizoo.spectral.sensors import get_sensor

        sensor = get_sensor(args.sensor or "aviris_indian_pines")
        wavelengths = sensor.wavelengths
        bands_text = f"sensor {sensor.name} ({sensor.num_bands} bands)"

    model = create_model(args.name)  # a saved folder loads its weights; a name builds untrained
    params = sum(p.numel() for p in model.parameters())
    flops = count_flops_per_pixel(model, wavelengths)
    arch = getattr(model, "architecture", None) or split_model_name_tag(args.name)[0]
    cfgs = []
    for full, cfg in get_arch_pretrained_cfgs(arch).items():
        d = cfg.to_dict()
        cfgs.append(dict(name=full, has_weights=bool(cfg.has_weights), hf_hub_id=d.get("hf_hub_id"),
                         revision=d.get("hf_hub_revision"), sha256=d.get("sha256"),
                         source=locate_checkpoint(d) if cfg.has_weights else "no weights"))
    info = dict(name=args.name, architecture=arch, parameters=params, flops_per_pixel=flops,
                flops_input=bands_text, patch_size=getattr(model, "patch_size", None),
                model_args=dict(getattr(model, "model_args", {}) or {}), pretrained=cfgs)
    if args.json:
        print_json(info)
        return 0
    print(f"{args.name}  ({arch})")
    print(f"  parameters:      {params:,}")
    print(f"  FLOPs per pixel: {flops:,} ({flops / 1e6:.3f} MFLOPs; one {info['patch_size']}x"
          f"{info['patch_size']} patch, {bands_text})")
    print("  model args:      " + json.dumps(info["model_args"]))
    print("  pretrained configs:")
    for c in cfgs:
        print(f"    {c['name']}")
        if c["has_weights"]:
            print(f"      hub id:   {c['hf_hub_id']}  revision: {c['revision'] or 'main (unpinned)'}")
            print(f"      sha256:   {c['sha256'] or '(not pinned)'}")
        print(f"      load from: {c['source']}")
    if not cfgs:
        print("    (none)")
    return 0


# ------------------------------------------------------------------------------------- dispatch

#: Subcommands: name -> Command, or "module:attribute" of a Command imported when it runs.
COMMANDS: dict[str, Command | str] = {
    "list": Command("list hsizoo's models", _add_list_args, _run_list),
    "info": Command("parameters, FLOPs per pixel, arguments and weight sources of a model",
                    _add_info_args, _run_info),
}

# Descriptions of lazily imported commands, so `hsizoo --help` need not import them.
_LAZY_HELP: dict[str, str] = {}

# The heavy commands live in their modules and are imported only when selected.
for _name, _path, _help in (
        ("demo", "hsizoo.cli.demo:DEMO_COMMAND",
         "the main job on built-in data: few-shot map + GeoTIFF + quicklook + OA"),
        ("finetune", "hsizoo.cli.finetune:FINETUNE_COMMAND",
         "few-shot DAFT fine-tuning on a scene, writing its class map"),
        ("predict", "hsizoo.cli.finetune:PREDICT_COMMAND",
         "classify a scene with a fine-tuned model folder"),
        ("pretrain", "hsizoo.cli.pretrain:PRETRAIN_COMMAND",
         "self-supervised masked-reconstruction pretraining (torchrun-ready)"),
        ("shard-scenes", "hsizoo.cli.shards:SHARD_COMMAND", "cut scenes into patch shards for pretrain --shards"),
        ("bench", "hsizoo.cli.bench:BENCH_COMMAND",
         "few-shot benchmark: run methods on identical splits (resumable), write the report"),
        ("download", "hsizoo.cli.download:DOWNLOAD_COMMAND",
         "fetch a checkpoint into a folder or the Hugging Face cache, for machines without "
         "network"),
        ("push", "hsizoo.cli.push:PUSH_COMMAND",
         "publish a model or checkpoint folder to the Hugging Face Hub (safetensors, config, "
         "card)")):
    COMMANDS[_name] = _path
    _LAZY_HELP[_name] = _help


def register_command(name: str, command: Command | str, help: str | None = None) -> None:  # noqa: A002
    """Add a subcommand.

    Args:
        name: Subcommand name.
        command: The Command, or the ``"module:attribute"`` path of one (imported on use).
        help: One-line description, for lazily imported commands.
    """
    COMMANDS[name] = command
    if help is not None:
        _LAZY_HELP[name] = help


def _load(name: str) -> Command:
    cmd = COMMANDS[name]
    if isinstance(cmd, str):
        module, _, attr = cmd.partition(":")
        cmd = getattr(importlib.import_module(module), attr)
        COMMANDS[name] = cmd
    return cmd


def _build_parser(selected: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hsizoo", description="hsizoo: hyperspectral image classification model zoo.")
    parser.add_argument("--version", action="version", version=version_line())
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    parser.add_argument("-q", "--quiet", action="store_true", dest="_quiet_all",
                        help=_QUIET_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, cmd in COMMANDS.items():
        # Only the selected lazy command is imported; the others are listed by name.
        if isinstance(cmd, str) and name != selected:
            sub.add_parser(name, help=_LAZY_HELP.get(name, f"see hsizoo {name} --help"))
            continue
        cmd = _load(name)
        p = sub.add_parser(name, help=cmd.help, description=cmd.help)
        cmd.add_arguments(p)
        if "--quiet" not in p._option_string_actions:  # every command takes -q
            p.add_argument("-q", "--quiet", action="store_true", help=_QUIET_HELP)
        p.set_defaults(_run=cmd.run)
    return parser


_QUIET_HELP = "no progress bars or notes: only results and errors"


def version_line() -> str:
    """``hsizoo 0.1.0 (Python 3.11.9; torch 2.14.1, timm 1.0.31, rasterio 1.4.4)``, read from the
    installed packages' metadata without importing them."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    from hsizoo import __version__

    parts = []
    for dist in ("torch", "timm", "rasterio"):
        try:
            parts.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            parts.append(f"{dist} not installed")
    return f"hsizoo {__version__} (Python {platform.python_version()}; {', '.join(parts)})"


def _user_errors() -> tuple[type[BaseException], ...]:
    from hsizoo._optional import MissingExtraError
    from hsizoo.io.atomic import OutputError
    from hsizoo.hub.verify import CheckpointError

    # OutputError: an output location refused, or a write that failed (a full disk); its
    # message says what to do. Any other OSError is the system's answer about a path the user
    # gave (a name too long, a folder where a file was expected): said in one line too.
    return (UsageError, ValueError, FileNotFoundError, FileExistsError, CheckpointError, KeyError,
            OutputError, OSError, MissingExtraError)


def _error_message(e: BaseException) -> str:
    """One line for a user error; the system's bare "[Errno N] ..." made to say what to do."""
    if isinstance(e, KeyError) and e.args:
        return str(e.args[0])
    text = str(e)
    if isinstance(e, OSError) and text.startswith("[Errno") and e.strerror:
        name = str(e.filename) if e.filename is not None else ""
        name = name if len(name) <= 80 else name[:77] + "..."
        return (f"{e.strerror}{': ' + repr(name) if name else ''}; check the paths given on the "
                "command line (their spelling, length and permissions).")
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: Arguments without the program name; default ``sys.argv[1:]``.

    Returns:
        Exit status: 0 on success, 2 on a user error, 130 when interrupted (Ctrl-C).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    selected = next((a for a in argv if not a.startswith("-")), None)
    command = selected if selected in COMMANDS else None
    debug = "--debug" in argv
    try:
        parser = _build_parser(command)
        try:
            args = parser.parse_args(argv)
        except SystemExit as e:  # argparse exits 2 on bad usage and 0 on --help
            return int(e.code or 0)
        command, debug = args.command, args.debug
        if args._quiet_all:
            args.quiet = True
        from hsizoo.runtime.progress import set_quiet

        set_quiet(getattr(args, "quiet", False))
        if not args.debug:
            # Warnings speak to the user: one line each, without the library's source line.
            warnings.formatwarning = lambda message, category, *_a, **_k: (
                f"hsizoo: {category.__name__}: {message}\n")
        try:
            return int(args._run(args) or 0)
        except _user_errors() as e:
            if args.debug:
                raise
            print(f"hsizoo {args.command}: error: {_error_message(e)}", file=sys.stderr)
            return 2
    except KeyboardInterrupt:
        if debug:
            raise
        # Every output is written under a hidden name and renamed only when complete
        # (hsizoo.io.atomic): an interrupted command leaves the previous outputs as they were.
        print(f"hsizoo{' ' + command if command else ''}: interrupted; nothing half-written was "
              "left (outputs appear only when complete, and earlier ones are unchanged)",
              file=sys.stderr)
        return INTERRUPTED


if __name__ == "__main__":
    raise SystemExit(main())
