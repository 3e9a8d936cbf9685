"""The few-shot benchmark harness: baselines and S2Former methods on identical splits.

Run it (resumable: finished runs are stored one JSON file each and skipped next time)::

    hsizoo bench run --scenes indian_pines --methods svm_raw svm_filtered rf hybridsn \\
        --shots 1,5,10 --seeds 0-9
    hsizoo bench run --checkpoint-indomain runs/ssl/export --checkpoint-xdomain runs/xd/export
    hsizoo bench report                     # benchmarks/results/fewshot.md and the figures

or from a source checkout ``python benchmarks/fewshot.py ...`` and
``python benchmarks/make_report.py``. From Python: :func:`run_benchmark` and :func:`make_report`.
The SVM and random-forest baselines need scikit-learn (``pip install "hsizoo[bench]"``).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable

from ..cli import Command
from .methods import METHODS, BenchOptions
from .report import make_report, replace_readme_block
from .runner import run_benchmark

__all__ = ["BENCH_COMMAND", "BenchOptions", "METHODS", "add_arguments", "make_report",
           "replace_readme_block", "run", "run_benchmark"]

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
    from .run_cli import add_run_arguments

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
    from .run_cli import run_from_args

    if args.bench_command == "report":
        return report_from_args(args)
    return run_from_args(args, environment)


BENCH_COMMAND = Command(BENCH_HELP, add_arguments, run)
