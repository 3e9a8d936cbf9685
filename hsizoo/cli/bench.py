"""Command line of the few-shot benchmark: ``hsizoo bench run|report`` and
``benchmarks/fewshot.py`` (the options, the :class:`~hsizoo.bench.methods.BenchOptions` they make,
and the call of :func:`~hsizoo.bench.runner.run_benchmark`).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable

from hsizoo.cli import Command
from hsizoo.runtime.device import add_device_arguments
from hsizoo.bench.report import make_report
from hsizoo.bench.methods import METHODS, BenchOptions
from hsizoo.bench.records import _split_names, parse_int_list
from hsizoo.bench.runner import DEFAULT_SCENES, run_benchmark

__all__ = ["BENCH_COMMAND", "add_arguments", "add_report_arguments", "add_run_arguments",
           "options_from_args", "report_from_args", "run", "run_from_args"]


def add_run_arguments(p: argparse.ArgumentParser, default_out: str | Path | None = None) -> None:
    """Options of ``hsizoo bench run`` / ``benchmarks/fewshot.py``."""
    p.add_argument("--scenes", nargs="+", default=list(DEFAULT_SCENES),
                   help="scene specs: indian_pines, simulated:<sensor>:<layout>:<seed>, or a "
                   "scene file (default: %(default)s)")
    p.add_argument("--methods", nargs="+", default=list(METHODS),
                   help=f"methods (default all): {', '.join(METHODS)}")
    p.add_argument("--shots", nargs="+", default=["1,5,10"],
                   help="labelled pixels per class, e.g. 1,5,10 (default)")
    p.add_argument("--seeds", nargs="+", default=["0-9"], help="seeds, e.g. 0-9 (default) or 0,1")
    p.add_argument("--train-seeds", nargs="+", default=None,
                   help="train every split once per training seed, e.g. 100-103, to average "
                   "out training noise (default: each split trains with its own seed)")
    p.add_argument("--steps", type=int, default=200, help="S2Former fine-tuning steps (200)")
    p.add_argument("--baseline-steps", type=int, default=300,
                   help="HybridSN training steps (300)")
    p.add_argument("--model", default="s2former_tiny",
                   help="S2Former variant of the S2Former methods (s2former_tiny)")
    p.add_argument("--hybridsn-model", default="hybridsn", help="HybridSN variant (hybridsn)")
    p.add_argument("--checkpoint-indomain",
                   help="SSL+FDC checkpoint of the target domain (folder, model.safetensors or "
                   "arch.tag) for s2former_ssl_ft and s2former_ssl_daft")
    p.add_argument("--checkpoint-nofdc", help="SSL checkpoint trained without FDC, for "
                   "s2former_ssl_noFDC_ft")
    p.add_argument("--checkpoint-xdomain", help="checkpoint pretrained on simulated scenes of "
                   "other sensors, for s2former_xdomain_daft")
    p.add_argument("--out", default=str(default_out or "benchmarks/results/fewshot"),
                   help="results folder (default %(default)s)")
    p.add_argument("--data-root", help="folder of the real scenes (default $HSIZOO_DATA_DIR or "
                   "../shared/data/hsi)")
    p.add_argument("--force", action="store_true", help="re-run runs whose results exist")
    p.add_argument("--time-limit", type=float, default=None,
                   help="start no new run after this many seconds (resume later)")
    p.add_argument("--train-budget", type=float, default=None,
                   help="cap on the training seconds of each run (default: all steps)")
    p.add_argument("--map-seed", type=int, default=0,
                   help="seed whose class maps are saved (-1: none)")
    p.add_argument("--map-extent", choices=["auto", "all", "labelled"], default="auto",
                   help="pixels of the saved maps: all valid pixels, labelled ones, or auto "
                   "(labelled for simulated scenes, all for real ones; default)")
    add_device_arguments(p, "the S2Former methods")
    p.add_argument("--dry-run", action="store_true", help="list the runs to do and stop")
    p.add_argument("--stop-on-error", action="store_true", help="raise the first error")
    p.add_argument("--json", action="store_true", help="print the summary (result files "
                   "written, runs skipped and failed) as one JSON object on stdout; the lines "
                   "about each run go to stderr")


def options_from_args(args: argparse.Namespace) -> BenchOptions:
    """BenchOptions from parsed command-line arguments."""
    return BenchOptions(
        model=args.model, steps=args.steps, baseline_steps=args.baseline_steps,
        hybridsn_model=args.hybridsn_model,
        checkpoints={"indomain": args.checkpoint_indomain, "nofdc": args.checkpoint_nofdc,
                     "xdomain": args.checkpoint_xdomain},
        train_budget=args.train_budget, map_seed=None if args.map_seed < 0 else args.map_seed,
        map_extent=args.map_extent, device=getattr(args, "device", None),
        precision=getattr(args, "precision", "fp32"))


def run_from_args(args: argparse.Namespace,
                  environment: Callable[[], dict[str, Any]] | None = None) -> int:
    """Run the benchmark from parsed arguments; exit status 1 when a run failed.

    With ``--json`` the summary is one JSON object on stdout and the lines about each run go to
    stderr; with ``-q`` those lines are left out and one summary line remains.
    """
    import sys

    from hsizoo.runtime.progress import is_quiet, note

    as_json, quiet = getattr(args, "json", False), getattr(args, "quiet", False) or is_quiet()
    say = note if quiet else ((lambda m: print(m, file=sys.stderr)) if as_json else print)
    summary = run_benchmark(
        _split_names(args.scenes), _split_names(args.methods), parse_int_list(args.shots),
        parse_int_list(args.seeds), options_from_args(args), args.out, force=args.force,
        time_limit=args.time_limit, data_root=args.data_root,
        environment=environment() if environment is not None and not args.dry_run else None,
        dry_run=args.dry_run, stop_on_error=args.stop_on_error, print_fn=say,
        train_seeds=None if getattr(args, "train_seeds", None) is None
        else parse_int_list(args.train_seeds))
    if as_json:
        from hsizoo.cli import print_json

        print_json(dict(command="bench run", out=str(args.out),
                        done=[str(p) for p in summary.done],
                        skipped_existing=summary.skipped_existing,
                        failed=[dict(run=r, error=e) for r, e in summary.failed],
                        skipped=summary.skipped, not_started=summary.not_started))
    elif quiet:
        print(f"done: {len(summary.done)} written, {summary.skipped_existing} already stored, "
              f"{len(summary.failed)} failed, {summary.not_started} not started")
        for run_name, err in summary.failed:
            print(f"FAILED {run_name}: {err}", file=sys.stderr)
    return 1 if summary.failed else 0


BENCH_HELP = "few-shot benchmark: run methods on identical splits (resumable), write the report"


def add_report_arguments(p: argparse.ArgumentParser, default_results: str | Path | None = None,
                         default_out: str | Path | None = None) -> None:
    """Options of ``hsizoo bench report`` / ``benchmarks/make_report.py``."""
    p.add_argument("--results", default=str(default_results or "benchmarks/results/fewshot"),
                   help="folder of the result JSON files (default %(default)s)")
    p.add_argument("--out-dir", default=str(default_out or "benchmarks/results"),
                   help="where fewshot.md and the figures go (default %(default)s)")
    p.add_argument("--readme", help="also replace the text between <!-- results:begin --> and "
                   "<!-- results:end --> in this file")
    p.add_argument("--map-seed", type=int, default=0, help="seed of the class-map figures (0)")


def report_from_args(args: argparse.Namespace) -> int:
    """Write the report from parsed arguments."""
    make_report(args.results, args.out_dir, readme=args.readme, map_seed=args.map_seed)
    return 0


def add_arguments(p: argparse.ArgumentParser, default_results: str | Path | None = None,
                  default_out: str | Path | None = None) -> None:
    """``hsizoo bench run ...`` and ``hsizoo bench report ...``."""
    sub = p.add_subparsers(dest="bench_command", metavar="{run,report}")
    sub.required = True
    r = sub.add_parser("run", help="run (or resume) the benchmark; one JSON file per run",
                       description="Train and evaluate each method on identical few-shot splits "
                       "of each scene; finished runs are skipped unless --force.")
    add_run_arguments(r, default_results)
    q = sub.add_parser("report", help="tables, verdict and figures from the stored results",
                       description="Write fewshot.md, fewshot_oa.png and fewshot_maps_<scene>.png"
                       " from the stored results.")
    add_report_arguments(q, default_results, default_out)


def run(args: argparse.Namespace,
        environment: Callable[[], dict[str, Any]] | None = None) -> int:
    """Dispatch ``hsizoo bench run`` / ``hsizoo bench report``."""
    if args.bench_command == "report":
        return report_from_args(args)
    return run_from_args(args, environment)


BENCH_COMMAND = Command(BENCH_HELP, add_arguments, run)
