"""Few-shot benchmark report from the stored results.

    python benchmarks/make_report.py                  # benchmarks/results/fewshot.md + figures
    python benchmarks/make_report.py --readme README.md   # also the README's results block

Writes benchmarks/results/fewshot.md (per scene: method x shots tables of mean ± std over seeds,
and whether the full method beats the strongest baseline), fewshot_oa.png and
fewshot_maps_<scene>.png. Same as ``hsizoo bench report``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hsizoo.cli.bench import add_report_arguments, report_from_args  # noqa: E402

from _env import RESULTS  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_report_arguments(ap, default_results=RESULTS / "fewshot", default_out=RESULTS)
    return report_from_args(ap.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
