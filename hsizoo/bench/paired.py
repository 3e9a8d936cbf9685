"""Paired comparison of two stored methods: the same scene, shots and seed (so the same shots).

The harness stores one JSON per run (:mod:`hsizoo.bench.runner`); a variant is judged against
the method it changes on identical splits, seed by seed. :func:`paired_runs` matches the runs
of method ``b`` (in ``b_dir``) to those of method ``a`` (in ``a_dir``), refusing pairs whose
shots differ (their ``train_sha256``), and :func:`paired_table` writes the markdown table with
the mean difference, its standard error and how many seeds got better, per scene and overall.

    python benchmarks/paired.py --a-dir benchmarks/results/fewshot --a s2former_ssl_daft \\
        --b-dir benchmarks/results/adapt_contrast --b s2former_ssl_daft_adapt --shots 5
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from hsizoo.bench.summary import load_results

__all__ = ["Pair", "paired_runs", "paired_table"]


@dataclass(frozen=True)
class Pair:
    """One split run by both methods: OA (%) of each."""

    scene: str
    shots: int
    seed: int
    a: float
    b: float
    runs_a: int = 1
    runs_b: int = 1

    @property
    def diff(self) -> float:
        return self.b - self.a


def _index(records: Iterable[dict[str, Any]], method: str) -> dict[tuple, list[dict[str, Any]]]:
    # A split's runs (several when it was trained with several training seeds) under one key.
    out: dict[tuple, list[dict[str, Any]]] = {}
    for r in records:
        if r["method"] == method:
            out.setdefault((r["scene"], int(r["shots"]), int(r["seed"])), []).append(r)
    return out


def _train_sha(runs: Sequence[dict[str, Any]]) -> Any:
    return runs[0].get("split", {}).get("train_sha256")


def paired_runs(a_dir: str | Path, a: str, b_dir: str | Path, b: str,
                shots: Sequence[int] | None = None) -> list[Pair]:
    """The runs of ``b`` with a run of ``a`` on the same scene, shots and seed. A split run with
    several training seeds counts once, with the mean OA of its runs (``runs_a``, ``runs_b``).

    Raises:
        ValueError: no pair at all, or a pair whose training pixels differ (not the same split).
    """
    ra = _index(load_results(a_dir), a)
    rb = _index(load_results(b_dir), b)
    pairs = []
    for key in sorted(set(ra) & set(rb)):
        if shots is not None and key[1] not in shots:
            continue
        sa, sb = _train_sha(ra[key]), _train_sha(rb[key])
        if sa != sb or any(_train_sha([r]) != sa for r in ra[key] + rb[key]):
            raise ValueError(f"{key[0]}, {key[1]} shots, seed {key[2]}: {a} and {b} were trained "
                             f"on different pixels (train_sha256 {sa} vs {sb}); they cannot be "
                             "paired. Rerun one of them with the current harness.")
        pairs.append(Pair(key[0], key[1], key[2], 100 * float(np.mean([r["oa"] for r in ra[key]])),
                          100 * float(np.mean([r["oa"] for r in rb[key]])),
                          len(ra[key]), len(rb[key])))
    if not pairs:
        raise ValueError(f"No run of {b} in {b_dir} has a run of {a} in {a_dir} on the same "
                         "scene, shots and seed.")
    return pairs


def _summary(diffs: np.ndarray) -> str:
    se = float(diffs.std(ddof=1) / math.sqrt(diffs.size)) if diffs.size > 1 else math.nan
    se_txt = f" +- {se:.2f} (se)" if math.isfinite(se) else ""
    return f"{diffs.mean():+.2f}{se_txt}, better on {int((diffs > 0).sum())} of {diffs.size}"


def paired_table(pairs: Sequence[Pair], a: str, b: str) -> str:
    """Markdown: a row per pair, a mean row per scene and shots, and one over everything. The seed
    column says how many training runs each side averages when a split has more than one."""
    lines = [f"| scene | shots | seed | {a} | {b} | difference |", "|---|---:|---:|---:|---:|---:|"]
    several = any(p.runs_a > 1 or p.runs_b > 1 for p in pairs)
    groups: dict[tuple[str, int], list[Pair]] = {}
    for p in pairs:
        groups.setdefault((p.scene, p.shots), []).append(p)
    for (scene, shots), ps in groups.items():
        for p in ps:
            seed = f"{p.seed} ({p.runs_a} / {p.runs_b} runs)" if several else str(p.seed)
            lines.append(f"| {scene} | {shots} | {seed} | {p.a:.2f} | {p.b:.2f} | {p.diff:+.2f} |")
        d = np.array([p.diff for p in ps])
        lines.append(f"| {scene} | {shots} | mean | {np.mean([p.a for p in ps]):.2f} | "
                     f"{np.mean([p.b for p in ps]):.2f} | {_summary(d)} |")
    d = np.array([p.diff for p in pairs])
    lines.append(f"| all | | | | | {_summary(d)} |")
    return "\n".join(lines) + "\n"
