"""The few-shot benchmark figures: OA against shots, and class-map panels of every method.

* :func:`plot_oa` writes ``fewshot_oa.png``: OA against shots with error bars (std over seeds),
  one line per method, one panel per scene;
* :func:`plot_maps` writes ``fewshot_maps_<scene>.png``: the saved class maps of one seed, every
  method side by side with the reference, one row per shot count.

matplotlib is imported only when a figure is drawn.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hsizoo.bench.methods import FULL_METHOD, METHODS
from hsizoo.bench.summary import method_order, scene_order, summarise

__all__ = ["plot_maps", "plot_oa"]


def plot_oa(records: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """OA against shots (mean ± std over seeds), one line per method, one panel per scene.

    Args:
        records: Result records.
        path: PNG to write.

    Returns:
        The path.
    """
    from hsizoo._optional import require

    require("matplotlib", "The benchmark report's figures")
    from matplotlib.figure import Figure

    table = summarise(records)
    scenes = scene_order(table)
    if not scenes:
        raise ValueError("No results to plot: run the benchmark first (benchmarks/fewshot.py).")
    ncols = min(2, len(scenes))
    nrows = math.ceil(len(scenes) / ncols)
    fig = Figure(figsize=(6.0 * ncols, 4.2 * nrows + 0.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    handles: dict[str, Any] = {}
    for ax, scene in zip(axes, scenes):
        cells = table[scene]
        for m in method_order(cells):
            ks = sorted(cells[m])
            stats = [cells[m][k].stat("oa") for k in ks]
            style = "-" if (m in METHODS and METHODS[m].family == "s2former") else "--"
            h = ax.errorbar(ks, [s[0] for s in stats], yerr=[s[1] for s in stats], marker="o",
                            linestyle=style, capsize=3, label=m,
                            linewidth=2.5 if m == FULL_METHOD else 1.3)
            handles.setdefault(m, h)
        all_k = sorted({k for c in cells.values() for k in c})
        ax.set_xticks(all_k)
        ax.set_xlabel("labelled pixels per class")
        ax.set_ylabel("OA (%)")
        ax.set_title(scene, fontsize=10)
        ax.grid(alpha=0.3)
    for ax in axes[len(scenes):]:
        ax.set_visible(False)
    names = method_order(handles)
    fig.legend([handles[m] for m in names], names, loc="outside lower center",
               ncols=min(len(names), 3 * ncols), fontsize=8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def _palette(record: dict[str, Any], K: int) -> np.ndarray:
    from hsizoo.io.colors import UNCLASSIFIED_COLOR, default_palette

    colors = record.get("scene_info", {}).get("class_colors") or default_palette(K)
    colors = [tuple(int(v) for v in c) for c in colors][:K]
    colors += default_palette(K)[len(colors):]
    return np.array([UNCLASSIFIED_COLOR, *colors], dtype=float) / 255.0


def plot_maps(records: Sequence[dict[str, Any]], scene: str, path: str | Path, seed: int = 0
              ) -> Path | None:
    """Class maps of every method on one scene and seed beside the reference labels.

    One row per shot count with saved maps; the first column is the reference, then one column
    per method (titled with its OA); black is unlabelled / not classified.

    Args:
        records: Result records (with ``map_file`` for that seed).
        scene: The scene spec.
        path: PNG to write.
        seed: The seed whose maps were saved.

    Returns:
        The path, or None when no map of that scene and seed was saved.
    """
    from matplotlib.colors import ListedColormap
    from hsizoo._optional import require

    require("matplotlib", "The benchmark report's figures")
    from matplotlib.figure import Figure

    recs = [r for r in records if r["scene"] == scene and r["seed"] == seed and r.get("map_file")]
    recs = [r for r in recs if (Path(r["_path"]).parent / r["map_file"]).is_file()]
    if not recs:
        return None
    shots = sorted({r["shots"] for r in recs})
    methods = method_order({r["method"] for r in recs})
    K = int(recs[0]["scene_info"]["num_classes"])
    cmap = ListedColormap(_palette(recs[0], K))
    first = np.load(Path(recs[0]["_path"]).parent / recs[0]["map_file"])
    h, w = first["reference"].shape
    side = 2.4
    fig = Figure(figsize=(side * (len(methods) + 1), side * h / w * len(shots) + 0.6),
                 layout="constrained")
    axes = fig.subplots(len(shots), len(methods) + 1, squeeze=False)
    by_key = {(r["shots"], r["method"]): r for r in recs}
    for i, k in enumerate(shots):
        ax = axes[i, 0]
        ax.imshow(first["reference"], cmap=cmap, vmin=0, vmax=K, interpolation="nearest")
        ax.set_title("reference" if i == 0 else "", fontsize=8)
        ax.set_ylabel(f"{k} shot{'s' * (k != 1)}", fontsize=9)
        for j, m in enumerate(methods, start=1):
            ax = axes[i, j]
            r = by_key.get((k, m))
            if r is None:
                ax.set_visible(False)
                continue
            with np.load(Path(r["_path"]).parent / r["map_file"]) as z:
                ax.imshow(z["class_map"], cmap=cmap, vmin=0, vmax=K, interpolation="nearest")
            ax.set_title(f"{m}\nOA {100 * r['oa']:.1f} %", fontsize=7)
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(f"{scene}, seed {seed}", fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
