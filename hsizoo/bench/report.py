"""The few-shot benchmark report: the Markdown tables, the verdict sentences and the README block.

Reads every result JSON written by :mod:`hsizoo.bench.runner` (:mod:`hsizoo.bench.summary`) and
writes

* ``fewshot.md``: per scene, an OA table (method x shots) and a full table of OA, AA, kappa,
  train and predict seconds and peak memory, each cell "mean ± std (n seeds)", then one sentence
  per shot count that states, from the numbers, whether the full method
  (``s2former_ssl_daft``) beats the strongest baseline, paired over the seeds both have;
* the figures ``fewshot_oa.png`` and ``fewshot_maps_<scene>.png``, drawn by
  :mod:`hsizoo.bench.figures`;

and, on request, replaces the text between ``<!-- results:begin -->`` and
``<!-- results:end -->`` in a README with a short summary.
"""
from __future__ import annotations

import math
import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hsizoo.io.atomic import write_atomic
from hsizoo.bench.figures import plot_maps, plot_oa
from hsizoo.bench.methods import BASELINES, FULL_METHOD, METHODS
from hsizoo.bench.records import scene_slug
from hsizoo.bench.summary import Cell, load_results, method_order, scene_order, summarise

__all__ = ["README_BEGIN", "README_END", "advantage_sentences", "make_report", "markdown_report",
           "readme_summary", "replace_readme_block"]

README_BEGIN = "<!-- results:begin -->"
README_END = "<!-- results:end -->"


def _fmt(mean: float, std: float, n: int, digits: int, with_n: bool = True) -> str:
    if n == 0 or not math.isfinite(mean):
        return "–"
    # One seed has no spread: print the value alone rather than a misleading "± 0".
    s = f"{mean:.{digits}f}" if n == 1 else f"{mean:.{digits}f} ± {std:.{digits}f}"
    return f"{s} ({n})" if with_n else s


# ----------------------------------------------------------------------------------------------
# The verdict


def _seeds(n: int) -> str:
    return f"{n} seed{'s' * (n != 1)}"


def _compare(full: Cell, base: Cell) -> tuple[np.ndarray, str]:
    seeds = sorted(set(full.values["oa"]) & set(base.values["oa"]))
    d = np.array([full.values["oa"][s] - base.values["oa"][s] for s in seeds])
    if d.size == 0:
        return d, "no common seeds"
    return d, ""


def advantage_sentences(cells: dict[str, dict[int, Cell]], full: str = FULL_METHOD,
                        baselines: Sequence[str] = BASELINES) -> list[str]:
    """One sentence per shot count: the full method's OA against the strongest baseline's.

    The strongest baseline at a shot count is the baseline with the highest mean OA there. The
    difference is paired over the seeds both have (same splits); it is called an advantage (or a
    deficit) only when its mean exceeds twice its standard error, otherwise no difference is
    shown.

    Args:
        cells: method -> shots -> Cell of one scene.
        full: The full method's name.
        baselines: Names of the baselines.

    Returns:
        The sentences (Markdown).
    """
    shots_all = sorted({k for m in cells.values() for k in m})
    out = []
    for k in shots_all:
        base = [(b, cells[b][k]) for b in baselines if b in cells and k in cells[b]]
        base = [(b, c) for b, c in base if c.stat("oa")[2] > 0]
        unit = "shot" if k == 1 else "shots"
        if full not in cells or k not in cells[full]:
            out.append(f"At {k} {unit}: no result of the full method ({full}) yet, so no "
                       "comparison.")
            continue
        if not base:
            out.append(f"At {k} {unit}: no baseline result yet, so no comparison.")
            continue
        bname, bcell = max(base, key=lambda bc: bc[1].stat("oa")[0])
        fm, fs, fn = cells[full][k].stat("oa")
        bm, bs, bn = bcell.stat("oa")
        d, why = _compare(cells[full][k], bcell)
        head = (f"At {k} {unit}, the full method ({full}) reaches {_fmt(fm, fs, fn, 1, False)} "
                f"% OA ({_seeds(fn)}) and the strongest baseline ({bname}) "
                f"{_fmt(bm, bs, bn, 1, False)} % ({_seeds(bn)})")
        if why:
            out.append(head + "; they share no seed, so no paired comparison.")
            continue
        md = float(d.mean())
        wins = int((d > 0).sum())
        if d.size == 1:
            out.append(head + f": {md:+.1f} points on the single common seed, too few seeds "
                       "for a verdict.")
            continue
        se = float(d.std(ddof=1)) / math.sqrt(d.size)
        paired = (f"paired over {d.size} seeds: {md:+.1f} ± {se:.1f} points (standard error), "
                  f"better on {wins} of {d.size} seeds")
        if md > 2 * se and md > 0:
            verdict = f": **the full method is ahead by {md:.1f} OA points** ({paired})."
        elif md < -2 * se and md < 0:
            verdict = (f": **the full method is behind by {-md:.1f} OA points**, no advantage "
                       f"({paired}).")
        else:
            verdict = (f": **no advantage shown**, the difference is within the seed-to-seed "
                       f"noise ({paired}).")
        out.append(head + verdict)
    return out


# ----------------------------------------------------------------------------------------------
# Markdown


def _environments(records: Sequence[dict[str, Any]]) -> str:
    def distinct(key: str) -> list[str]:
        return sorted({str(r.get("environment", {}).get(key, "")) for r in records} - {""})

    parts = []
    for key, label in (("cpu", "CPU"), ("torch_threads", "torch threads"), ("torch", "torch"),
                       ("commit", "commit")):
        vals = distinct(key)
        if vals:
            parts.append(f"{label} {', '.join(vals)}")
    return "; ".join(parts)


def _scene_heading(scene: str, records: Sequence[dict[str, Any]]) -> str:
    info = next((r["scene_info"] for r in records if r["scene"] == scene), {})
    shape = info.get("shape") or []
    dims = " x ".join(str(v) for v in shape)
    return (f"## {scene}\n\n{dims} (H x W x bands), sensor {info.get('sensor')}, "
            f"{info.get('num_classes')} classes, {info.get('labelled')} labelled pixels.")


def _per_class_table(records: Sequence[dict[str, Any]], scene: str, shots: int,
                     methods: Sequence[str]) -> list[str]:
    """Per-class accuracy (%, mean over seeds) of every method at one shot count."""
    recs = [r for r in records if r["scene"] == scene and r["shots"] == shots]
    if not recs:
        return []
    names = recs[0]["scene_info"].get("class_names") or []
    # A split with several training runs counts once (the mean of its runs), as in the tables.
    runs: dict[tuple, list[float]] = defaultdict(list)
    for r in recs:
        for c, v in r["metrics"]["per_class"].items():
            runs[(r["method"], c, int(r["seed"]))].append(100 * float(v))
    acc: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for (m, c, _), vs in runs.items():
        acc[m][c].append(float(np.mean(vs)))
    classes = sorted({c for m in acc.values() for c in m}, key=int)
    present = [m for m in methods if m in acc]
    lines = [f"Per-class accuracy (%, mean over seeds) at {shots} shot{'s' * (shots != 1)}:", "",
             "| class | " + " | ".join(present) + " |", "|---|" + "---|" * len(present)]
    for c in classes:
        name = names[int(c) - 1] if int(c) <= len(names) else f"class {c}"
        cells = [f"{np.mean(acc[m][c]):.1f}" if acc[m][c] else "–" for m in present]
        lines.append(f"| {c} {name} | " + " | ".join(cells) + " |")
    return lines


def markdown_report(records: Sequence[dict[str, Any]], source: str = "") -> str:
    """The Markdown report of a set of records (see the module docstring).

    Args:
        records: Result records (:func:`hsizoo.bench.summary.load_results`).
        source: Where they were read from, for the header.

    Returns:
        Markdown text.
    """
    table = summarise(records)
    methods_seen = method_order({r["method"] for r in records})
    lines = ["# Few-shot benchmark", "",
             f"Written by `python benchmarks/make_report.py` from {len(records)} result files"
             + (f" in `{source}`" if source else "") + ". Every method of a scene, shot count and "
             "seed is trained on the same split: `shots` random labelled pixels per class "
             "(`hsizoo.data.splits.few_shot_split` with that seed), and tested on every other "
             "labelled pixel. Cells are mean ± sample std over seeds (number of seeds; a single "
             "seed shows its value alone; a split trained with several training seeds counts "
             "once, with the mean of its runs). OA and "
             "AA in %; train and predict in seconds (predict: the test pixels only); peak RSS: "
             "the process's resident memory in MB, sampled during the run (all runs share one "
             "process, so it includes the interpreter, torch and the loaded scenes); run +MB: "
             "its rise above the level at the start of the run.", ""]
    env = _environments(records)
    if env:
        lines += [f"Measured on: {env}.", ""]
    lines += ["Methods:", ""]
    for m in methods_seen:
        desc = METHODS[m].description if m in METHODS else ""
        lines.append(f"- `{m}`: {desc}")
    lines.append("")
    for scene in scene_order(table):
        cells = table[scene]
        methods = method_order(cells)
        shots = sorted({k for m in cells.values() for k in m})
        lines += [_scene_heading(scene, records), "", "OA (%):", ""]
        lines.append("| method | " + " | ".join(f"{k} shot{'s' * (k != 1)}" for k in shots) + " |")
        lines.append("|---|" + "---|" * len(shots))
        for m in methods:
            row = [_fmt(*cells[m][k].stat("oa"), 1) if k in cells[m] else "–" for k in shots]
            lines.append(f"| {m} | " + " | ".join(row) + " |")
        lines += ["", "All measures:", "",
                  "| method | shots | OA % | AA % | kappa | train s | predict s | peak RSS MB | "
                  "run +MB |", "|---|---|---|---|---|---|---|---|---|"]
        for m in methods:
            for k in shots:
                if k not in cells[m]:
                    continue
                c = cells[m][k]
                lines.append(
                    f"| {m} | {k} | {_fmt(*c.stat('oa'), 1)} | {_fmt(*c.stat('aa'), 1, False)} | "
                    f"{_fmt(*c.stat('kappa'), 3, False)} | {_fmt(*c.stat('train_s'), 1, False)} | "
                    f"{_fmt(*c.stat('predict_s'), 2, False)} | "
                    f"{_fmt(*c.stat('peak_mb'), 0, False)} | "
                    f"{_fmt(*c.stat('delta_mb'), 0, False)} |")
        lines += ["", *_per_class_table(records, scene, max(shots), methods)]
        lines += ["", "**Full method against the strongest baseline.** "
                  + " ".join(advantage_sentences(cells)), ""]
        maps = f"fewshot_maps_{scene_slug(scene)}.png"
        lines += [f"![class maps of {scene}]({maps})", ""]
    lines += ["![OA against shots](fewshot_oa.png)", ""]
    return "\n".join(lines)


def readme_summary(records: Sequence[dict[str, Any]], link: str = "benchmarks/results/fewshot.md"
                   ) -> str:
    """A short README section: OA per scene (method x shots), the verdicts and the OA figure.

    Args:
        records: Result records.
        link: Where the full report lives, relative to the README (the OA figure is beside it).

    Returns:
        Markdown text.
    """
    table = summarise(records)
    out = [f"Few-shot overall accuracy (%, mean ± std over seeds; full report: [{link}]({link})).",
           ""]
    for scene in scene_order(table):
        cells = table[scene]
        shots = sorted({k for m in cells.values() for k in m})
        out += [f"**{scene}**", "",
                "| method | " + " | ".join(f"{k}-shot" for k in shots) + " |",
                "|---|" + "---|" * len(shots)]
        for m in method_order(cells):
            row = [_fmt(*cells[m][k].stat("oa"), 1, False) if k in cells[m] else "–"
                   for k in shots]
            out.append(f"| {m} | " + " | ".join(row) + " |")
        out += ["", " ".join(advantage_sentences(cells)), ""]
    figure = str(Path(link).with_name("fewshot_oa.png").as_posix())
    out += [f"![OA against shots]({figure})", ""]
    return "\n".join(out).rstrip() + "\n"


def replace_readme_block(readme: str | Path, text: str, begin: str = README_BEGIN,
                         end: str = README_END) -> bool:
    """Replace what lies between the begin and end markers of a file (markers kept).

    Args:
        readme: The file (e.g. README.md).
        text: New content between the markers.
        begin: Begin marker.
        end: End marker.

    Returns:
        True when the file changed.

    Raises:
        ValueError: a marker is missing, repeated or out of order.
    """
    path = Path(readme)
    old = path.read_text(encoding="utf-8")
    if old.count(begin) != 1 or old.count(end) != 1:
        raise ValueError(f"{path} must contain the markers {begin} and {end} exactly once each "
                         f"(found {old.count(begin)} and {old.count(end)}); add them where the "
                         "results should go.")
    i, j = old.index(begin) + len(begin), old.index(end)
    if j < i:
        raise ValueError(f"In {path}, {end} comes before {begin}; put the begin marker first.")
    new = old[:i] + "\n" + text.strip("\n") + "\n" + old[j:]
    if new == old:
        return False
    write_atomic(path, new.encode("utf-8"), overwrite=True)
    return True


# ----------------------------------------------------------------------------------------------
# Everything


def make_report(results_dir: str | Path = "benchmarks/results/fewshot",
                out_dir: str | Path = "benchmarks/results", *, readme: str | Path | None = None,
                map_seed: int = 0, print_fn: Any = print) -> list[Path]:
    """Write fewshot.md, fewshot_oa.png and the class-map figures; optionally update a README.

    Args:
        results_dir: The runner's results folder.
        out_dir: Where the report and figures go.
        readme: A README whose results markers are to be replaced (None = leave READMEs alone).
        map_seed: Seed of the class-map figures.
        print_fn: Where to report what was written.

    Returns:
        The files written.

    Raises:
        ValueError: no results found.
    """
    records = load_results(results_dir)
    if not records:
        raise ValueError(f"No few-shot results in {results_dir}: run the benchmark first "
                         "(python benchmarks/fewshot.py, or hsizoo bench run).")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    try:
        source = os.path.relpath(results_dir, out.parent)
    except ValueError:
        source = str(results_dir)
    written = []
    md = out / "fewshot.md"
    md.write_text(markdown_report(records, source).rstrip() + "\n", encoding="utf-8")
    written.append(md)
    written.append(plot_oa(records, out / "fewshot_oa.png"))
    for scene in scene_order({r["scene"] for r in records}):
        p = plot_maps(records, scene, out / f"fewshot_maps_{scene_slug(scene)}.png", map_seed)
        if p is not None:
            written.append(p)
    if readme is not None:
        link = os.path.relpath(md.resolve(), Path(readme).resolve().parent)
        changed = replace_readme_block(readme, readme_summary(records, link))
        print_fn(f"{'updated' if changed else 'unchanged'}: {readme}")
    for p in written:
        print_fn(f"wrote {p}")
    return written
