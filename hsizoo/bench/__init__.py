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

from hsizoo.bench.methods import METHODS, BenchOptions
from hsizoo.bench.report import make_report, replace_readme_block
from hsizoo.bench.runner import run_benchmark

__all__ = ["BenchOptions", "METHODS", "make_report", "replace_readme_block", "run_benchmark"]
