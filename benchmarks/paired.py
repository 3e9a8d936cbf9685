"""Paired comparison of two stored methods on the same splits (markdown table on stdout).

    python benchmarks/paired.py --a-dir benchmarks/results/fewshot --a s2former_ssl_daft \\
        --b-dir benchmarks/results/adapt_contrast --b s2former_ssl_daft_adapt --shots 5

Runs are matched by scene, shots and seed and must have been trained on the same pixels
(``hsizoo.bench.paired``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hsizoo.bench.paired import paired_runs, paired_table  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--a-dir", required=True, help="results folder of the reference method")
    ap.add_argument("--a", required=True, help="reference method")
    ap.add_argument("--b-dir", required=True, help="results folder of the compared method")
    ap.add_argument("--b", required=True, help="compared method")
    ap.add_argument("--shots", type=int, nargs="*", help="only these shot counts")
    ap.add_argument("--labels", nargs=2, metavar=("A", "B"),
                    help="column names (default the method names)")
    args = ap.parse_args(argv)
    try:
        pairs = paired_runs(args.a_dir, args.a, args.b_dir, args.b, args.shots)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(paired_table(pairs, *(args.labels or (args.a, args.b))), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
