"""Few-shot benchmark: every method on identical splits, one JSON per run (resumable).

    python benchmarks/fewshot.py --scenes indian_pines --methods svm_raw svm_filtered rf hybridsn \
        --shots 5 --seeds 0
    python benchmarks/fewshot.py --checkpoint-indomain runs/ssl_ip/export \
        --checkpoint-xdomain runs/ssl_xdomain/export --time-limit 3600   # all scenes, resumable

Results go to benchmarks/results/fewshot/<scene>/<method>/shots<k>_seed<s>.json (with the
environment of benchmarks/_env.py); existing files are skipped unless --force. Then write the
report with ``python benchmarks/make_report.py``. Same as ``hsizoo bench run``; see
:mod:`hsizoo.bench` for the methods and the protocol.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hsizoo.cli.bench import add_run_arguments, run_from_args  # noqa: E402

from _env import RESULTS, environment  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(ap, default_out=RESULTS / "fewshot")
    return run_from_args(ap.parse_args(argv), environment)


if __name__ == "__main__":
    raise SystemExit(main())
