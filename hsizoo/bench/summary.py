"""Reading the stored few-shot result records and grouping them per scene, method and shots.

:func:`load_results` reads every result JSON written by :mod:`hsizoo.bench.runner`;
:func:`summarise` groups the records as scene -> method -> shots -> :class:`Cell` (the values per
seed of every reported quantity); :func:`scene_order` and :func:`method_order` give the order in
which the report and the figures list scenes and methods.
"""
from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from hsizoo.bench.methods import METHODS, SCHEMA

__all__ = ["Cell", "load_results", "method_order", "scene_order", "summarise"]


@dataclass
class Cell:
    """The runs of one (scene, method, shots): values per seed of every reported quantity.

    A split trained with several training seeds (the runner's ``train_seeds``) has the mean of
    its runs as its value, and ``runs`` says how many there were.
    """

    values: dict[str, dict[int, float]] = field(default_factory=lambda: defaultdict(dict))
    runs: dict[int, int] = field(default_factory=dict)

    @property
    def seeds(self) -> list[int]:
        return sorted(self.values["oa"])

    def stat(self, key: str) -> tuple[float, float, int]:
        """(mean, sample std (0 for one seed), number of seeds) of a quantity."""
        v = np.array(list(self.values[key].values()), dtype=float)
        v = v[np.isfinite(v)]
        if v.size == 0:
            return math.nan, math.nan, 0
        return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0, int(v.size)


def load_results(results_dir: str | Path) -> list[dict[str, Any]]:
    """Every benchmark result JSON under a folder (other JSON files are ignored).

    Args:
        results_dir: The runner's results folder.

    Returns:
        The records, sorted by scene, method, shots, seed.
    """
    out = []
    for p in sorted(Path(results_dir).rglob("*.json")):
        if p.name.startswith("."):
            continue
        try:
            rec = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(rec, dict) and rec.get("schema") == SCHEMA:
            rec["_path"] = str(p)
            out.append(rec)
    return sorted(out, key=lambda r: (r["scene"], r["method"], r["shots"], r["seed"],
                                      r.get("train_seed", r["seed"])))


def summarise(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, dict[int, Cell]]]:
    """Group records as scene -> method -> shots -> :class:`Cell` (a split's runs with several
    training seeds averaged into one value per seed)."""
    table: dict[str, dict[str, dict[int, Cell]]] = defaultdict(lambda: defaultdict(dict))
    sums: dict[tuple, list[float]] = defaultdict(list)
    for r in records:
        cell = table[r["scene"]][r["method"]].setdefault(int(r["shots"]), Cell())
        seed = int(r["seed"])
        cell.runs[seed] = cell.runs.get(seed, 0) + 1
        mem = r.get("memory", {})
        vals = {"oa": 100 * r["oa"], "aa": 100 * r["aa"], "kappa": r["kappa"],
                "train_s": r["timing"]["train_s"], "predict_s": r["timing"]["predict_s"],
                "peak_mb": mem.get("peak_rss_mb", mem.get("process_maxrss_mb", math.nan)),
                "delta_mb": mem.get("peak_rss_delta_mb", math.nan)}
        for k, v in vals.items():
            vs = sums[(r["scene"], r["method"], int(r["shots"]), seed, k)]
            vs.append(float(v if v is not None else math.nan))
            cell.values[k][seed] = float(np.mean(vs))
    return table



def scene_order(names: Iterable[str]) -> list[str]:
    """Scenes sorted by name, real scenes before simulated ones."""
    return sorted(names, key=lambda s: (s.startswith("simulated:"), s))


def method_order(names: Iterable[str]) -> list[str]:
    """Methods in the order of :data:`hsizoo.bench.methods.METHODS`, unknown ones last by name."""
    known = list(METHODS)
    return sorted(names, key=lambda m: (known.index(m) if m in known else len(known), m))
