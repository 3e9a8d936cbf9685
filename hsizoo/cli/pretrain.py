"""Command line of pretraining: ``hsizoo pretrain ...`` and ``python -m hsizoo.pretrain ...``."""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import fields
from typing import Any, Sequence

from hsizoo.cli import args as types
from hsizoo.runtime.device import add_device_arguments
from hsizoo.pretrain.checkpoints import plot_loss_curve
from hsizoo.pretrain.config import NonFiniteLossError, PretrainConfig
from hsizoo.pretrain.export import export_pretrained
from hsizoo.pretrain.loop import pretrain

# The subcommand's description: the first line of the package docstring.
_DESCRIPTION = ("Self-supervised pretraining of S2Former: masked reconstruction with the "
                "frequency-domain constraint.")


def _add_args(p: argparse.ArgumentParser) -> None:
    d = PretrainConfig()
    p.add_argument("scenes", nargs="*", help="scene specs: indian_pines, "
                   "simulated:<sensor>:<layout|HxW>:<seed>, or scene files")
    p.add_argument("--shards", default=None, metavar="DIR",
                   help="stream patches from the shards of `hsizoo shard-scenes` (bounded memory; "
                        "each torchrun rank reads only its own shards) instead of scenes")
    p.add_argument("--run-dir", default="runs/pretrain", help="folder for log, checkpoints")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    p.add_argument("--model", default=None, help=f"S2Former variant (default {d.model})")
    # Every number is checked while the arguments are parsed (hsizoo.cli.args), before any work.
    for name, typ in (("steps", types.positive_int), ("batch-size", types.positive_int),
                      ("lr", types.positive_float), ("min-lr", types.non_negative_float),
                      ("weight-decay", types.non_negative_float),
                      ("warmup-steps", types.non_negative_int),
                      ("grad-clip", types.non_negative_float),
                      ("mask-ratio", types.open_fraction),
                      ("spectral-mask-ratio", types.half_open_fraction),
                      ("fdc-weight", types.non_negative_float),
                      ("fdc-hf-gain", types.non_negative_float),
                      ("spectral-loss-weight", types.non_negative_float),
                      ("decoder-dim", types.positive_int), ("decoder-depth", types.positive_int),
                      ("contrast-weight", types.non_negative_float),
                      ("contrast-temperature", types.positive_float),
                      ("view-offset", types.non_negative_int),
                      ("projector-dim", types.positive_int), ("seed", types.seed)):
        default = getattr(d, name.replace("-", "_"))
        p.add_argument(f"--{name}", type=typ, default=None, help=f"default {default}")
    p.add_argument("--scene-weighting", choices=("equal", "pixels"), default=None)
    p.add_argument("--max-time", type=types.positive_float, default=None,
                   help="stop after SECONDS (checkpointed)")
    p.add_argument("--until-step", type=types.non_negative_int, default=None,
                   help="stop at this step (checkpointed)")
    p.add_argument("--checkpoint-every", type=types.positive_int, default=100)
    p.add_argument("--log-every", type=types.positive_int, default=1)
    add_device_arguments(p, "the pretraining")
    p.add_argument("--data-root", default=None)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--probe", default=None, metavar="SCENE",
                   help="labelled scene spec to linear-probe the encoder on while it trains "
                        "(monitoring only; written to probe.jsonl and the loss-curve figure)")
    p.add_argument("--probe-every", type=types.positive_int, default=None, metavar="STEPS",
                   help="steps between probes (default --checkpoint-every)")
    p.add_argument("--export", default=None, metavar="FOLDER",
                   help="after training, publish the encoder as a Hub-ready folder")
    p.add_argument("--tag", default=None, help="pretrained tag for --export")
    p.add_argument("--overwrite", action="store_true",
                   help="let --export replace a model already in FOLDER")


def _run_cli(args: argparse.Namespace) -> int:
    from hsizoo.io.atomic import OutputError

    recipe = {}
    for f in fields(PretrainConfig):
        v = getattr(args, f.name, None)
        if v is not None and f.name != "scenes":
            recipe[f.name] = v
    try:
        if args.export:  # before the training, which an existing model there would waste
            from hsizoo.hub.save import check_save_folder

            check_save_folder(args.export, args.overwrite)
        res = pretrain(args.scenes or None, args.run_dir, resume=args.resume,
                       max_time=args.max_time, until_step=args.until_step,
                       checkpoint_every=args.checkpoint_every, log_every=args.log_every,
                       progress=not (args.no_progress or getattr(args, "quiet", False)),
                       device=args.device,
                       precision=args.precision, data_root=args.data_root, probe=args.probe,
                       probe_every=args.probe_every, **recipe)
    except (ValueError, FileExistsError, FileNotFoundError, NonFiniteLossError,
            OutputError) as e:
        print(f"hsizoo pretrain: error: {e}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) == 0:
        from hsizoo._optional import MissingExtraError

        try:
            plot_loss_curve(res.run_dir)
        except MissingExtraError as e:  # the run is saved; only its figure is missing
            print(f"hsizoo pretrain: no loss-curve figure: {e}", file=sys.stderr)
        print(json.dumps(dict(run_dir=str(res.run_dir), step=res.step, final_loss=res.final_loss,
                              wall_time_s=round(res.wall_time_s, 1), interrupted=res.interrupted)))
        if args.export:
            if res.interrupted and res.step < res.config.steps and args.until_step is None \
                    and args.max_time is None:
                print("hsizoo pretrain: not exporting an interrupted run", file=sys.stderr)
                return 1
            export_pretrained(res.run_dir, args.export, tag=args.tag,
                              overwrite=args.overwrite)
    return 0


def register_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``pretrain`` subcommand to an argparse subparsers object.

    Args:
        subparsers: The result of ``parser.add_subparsers()``.

    Returns:
        The subparser (its handler is ``args.func(args) -> exit code``).
    """
    p = subparsers.add_parser(
        "pretrain", help="self-supervised masked-reconstruction pretraining (torchrun-ready)",
        description=_DESCRIPTION)
    _add_args(p)
    p.set_defaults(func=_run_cli, handler=_run_cli)
    return p


PRETRAIN_HELP = "self-supervised masked-reconstruction pretraining (torchrun-ready)"


def _command() -> Any:
    from hsizoo.cli import Command

    return Command(PRETRAIN_HELP, _add_args, _run_cli)


PRETRAIN_COMMAND = _command()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hsizoo.pretrain ...`` (the same as ``hsizoo pretrain ...``)."""
    parser = argparse.ArgumentParser(prog="hsizoo")
    sub = parser.add_subparsers(dest="command", required=True)
    register_cli(sub)
    args = parser.parse_args(["pretrain", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)
