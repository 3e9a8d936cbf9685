"""The representation benchmark as one command: backbones x scenes x shots x seeds, stored, tabled.

Each (scene, backbone) pair writes one JSON file ``<out>/<scene>/<backbone>.json`` holding every
(shots, seed) score of every read-out of :mod:`hsizoo.method.probe`, the backbone's weights
(description and sha256 where a file), and the environment. A bare architecture is a random
initialisation per split seed; every other backbone is compared with the random initialisation
of its own architecture, paired over seeds (:func:`probe_table`).

    python benchmarks/probe.py --backbones s2former_tiny s2former_tiny.ssl_indianpines \\
        --scenes indian_pines --shots 1 5 10 --seeds 0-9
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from hsizoo.bench.backbones import load_backbone, weights_sha256
from hsizoo.method.probe import (GRAPH_PROBES, PROBES, SPECTRA, embed_scene, probe_features,
                                 scene_graphs, spectra_features)

__all__ = ["SCHEMA", "load_probe_results", "probe_rows", "probe_table", "run_probe_benchmark"]

SCHEMA = "hsizoo.method.probe/1"
#: The same schema under the module's name before the package was regrouped: the stored
#: results in benchmarks/results/probe/ carry it.
_SCHEMAS = (SCHEMA, "hsizoo.bench.probe/1")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


def _arch(backbone: str, model: Any) -> str:
    return str(getattr(model, "pretrained_cfg", {}).get("architecture")
               or backbone.split(".")[0])


def run_probe_benchmark(backbones: Sequence[str], scenes: Sequence[str],
                        shots: Sequence[int] = (1, 5, 10), seeds: Sequence[int] = range(10),
                        out_dir: str | Path = "benchmarks/results/probe",
                        data_root: str | None = None, force: bool = False,
                        environment: Callable[[], dict[str, Any]] | None = None,
                        log: Callable[[str], None] = print,
                        device: str | None = None, probes: Sequence[str] = PROBES
                        ) -> list[Path]:
    """Probe every backbone on every scene; returns the result files written (or kept).

    A stored file of the same shots, seeds and weights is kept; when it lacks some of the
    requested read-outs (a file written before the graph probe existed), only those are
    computed and added to its runs.

    Args:
        backbones: Specs for :func:`~hsizoo.bench.backbones.load_backbone`, or ``"spectra"``
            (:data:`~hsizoo.method.probe.SPECTRA`): the scene's standardised spectra, the
            reference every backbone's features are compared with.
        scenes: Labelled scene specs (:func:`hsizoo.pretrain.load_scene_spec`).
        shots: Shot counts.
        seeds: Split seeds (and initialisation seeds of bare architectures).
        out_dir: Results folder.
        data_root: Folder of the real scenes.
        force: Recompute files that exist with the same shots and seeds.
        environment: Callable returning what the numbers were measured on.
        log: Where progress lines go.
        device: Where the backbones embed the scenes (None = the GPU when there is one). The
            read-outs run on the CPU.
        probes: Read-outs to compute (:data:`~hsizoo.method.probe.PROBES`).
    """
    from hsizoo.runtime.device import resolve_device
    from hsizoo.pretrain import load_scene_spec
    from hsizoo.bench.records import _atomic_write, scene_slug

    out_dir = Path(out_dir)
    written = []
    for scene_spec in scenes:
        scene = load_scene_spec(scene_spec, data_root)
        if scene.labels is None or not np.any(np.asarray(scene.labels)[scene.valid] > 0):
            raise ValueError(f"scene {scene_spec!r} has no labels to probe against")
        for backbone in backbones:
            path = out_dir / scene_slug(scene_spec) / f"{_slug(backbone)}.json"
            sha = None if backbone == SPECTRA else weights_sha256(backbone)
            todo, old = list(probes), None
            if path.is_file() and not force:
                old = json.loads(path.read_text())
                if old.get("shots") == list(shots) and old.get("seeds") == list(seeds) \
                        and old.get("weights_sha256") == sha:
                    have = set(old.get("probes", ()))
                    todo = [p for p in probes if p not in have]
                    if not todo:
                        log(f"[probe] {scene_spec} / {backbone}: kept {path}")
                        written.append(path)
                        continue
                else:
                    old = None
            random_init = backbone != SPECTRA and "." not in backbone \
                and not Path(backbone).expanduser().exists()
            t0 = time.perf_counter()
            runs, weights, feats, arch = [], None, None, backbone
            for seed in seeds:
                if feats is None or random_init:
                    if backbone == SPECTRA:
                        feats = spectra_features(scene)
                        weights = "the scene's standardised spectra (no network)"
                    else:
                        model, weights = load_backbone(backbone, seed)
                        model = model.to(resolve_device(device))
                        arch = _arch(backbone, model)
                        feats = embed_scene(model, scene)
                    graphs = scene_graphs(feats, scene, [p for p in todo if p in GRAPH_PROBES])
                for k in shots:
                    r = probe_features(feats, scene, int(k), int(seed), probes=todo,
                                       graph=graphs)
                    runs.append({"shots": r.shots, "seed": r.seed, "oa": r.oa,
                                 "num_train": r.num_train, "num_test": r.num_test})
            if old is not None:
                # Add the new read-outs to the stored runs (same shots, seeds and weights).
                new = {(r["shots"], r["seed"]): r["oa"] for r in runs}
                for r in old["runs"]:
                    r["oa"].update(new[(r["shots"], r["seed"])])
                rec = {**old, "probes": [p for p in PROBES if p in set(old["probes"]) | set(todo)],
                       "added": {**old.get("added", {}), ",".join(todo): {
                           "wall_time_s": round(time.perf_counter() - t0, 1),
                           "environment": environment() if environment else {}}}}
            else:
                rec = {"schema": SCHEMA, "scene": scene_spec, "backbone": backbone,
                       "architecture": arch, "random_init": random_init,
                       "weights": "random init (torch.manual_seed(seed) per split seed)"
                       if random_init else weights, "weights_sha256": sha,
                       "num_features": int(feats.shape[1]), "probes": list(todo),
                       "shots": list(shots), "seeds": list(seeds), "runs": runs,
                       "wall_time_s": round(time.perf_counter() - t0, 1),
                       "environment": environment() if environment else {}}
            path.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write(path, lambda p, rec=rec: p.write_text(json.dumps(rec, indent=1) + "\n"))
            k5 = 5 if 5 in shots else shots[0]
            shown = ", ".join(f"{p} {np.mean(list(_scores(rec, k5, p).values())):.1f}"
                              for p in todo)
            log(f"[probe] {scene_spec} / {backbone}: {k5} shots: {shown} % "
                f"({time.perf_counter() - t0:.0f} s) -> {path}")
            written.append(path)
    return written


def load_probe_results(folder: str | Path) -> list[dict[str, Any]]:
    """Every probe result file under ``folder``."""
    out = []
    for p in sorted(Path(folder).rglob("*.json")):
        rec = json.loads(p.read_text())
        if rec.get("schema") in _SCHEMAS:
            out.append(rec)
    return out


def _scores(rec: dict[str, Any], shots: int, probe: str) -> dict[int, float]:
    """Seed -> OA of one read-out (empty when the record predates that read-out)."""
    return {r["seed"]: r["oa"][probe] for r in rec["runs"]
            if r["shots"] == shots and probe in r["oa"]}


def _paired(mine: dict[int, float], theirs: dict[int, float]) -> str:
    common = sorted(set(mine) & set(theirs))
    if not common:
        return ""
    d = np.array([mine[s] - theirs[s] for s in common])
    return f"{d.mean():+.1f} +- {d.std():.1f} ({int((d > 0).sum())}/{d.size} seeds better)"


def probe_table(records: Sequence[dict[str, Any]], scene: str, shots: int = 5,
                probes: Sequence[str] = PROBES) -> str:
    """Markdown table of one scene at one shot count: mean +- std over seeds per read-out, and
    the paired difference to the random initialisation of the same architecture."""
    recs = [r for r in records if r["scene"] == scene and shots in r["shots"]]
    if not recs:
        return ""
    base = {r["architecture"]: r for r in recs if r["random_init"]}
    ref = next((r for r in recs if r["backbone"] == SPECTRA), None)
    graph = "lp_pos" in probes and ref is not None
    head = ("| backbone | seeds | " + " | ".join(probes)
            + " | linear vs random init (paired mean +- std) |"
            + (" lp_pos vs spectra (paired) |" if graph else ""))
    lines = [head, "|---|---:|" + "---:|" * (len(probes) + 1 + graph)]
    for r in sorted(recs, key=lambda r: (r["backbone"] != SPECTRA, r["architecture"],
                                         not r["random_init"], r["backbone"])):
        cells = []
        for p in probes:
            v = np.array(list(_scores(r, shots, p).values()))
            cells.append(f"{v.mean():.1f} +- {v.std():.1f}" if v.size else "–")
        b = base.get(r["architecture"])
        diff = _paired(_scores(r, shots, "linear"), _scores(b, shots, "linear")) \
            if b is not None and not r["random_init"] else ""
        if graph:
            vs = "" if r is ref else _paired(_scores(r, shots, "lp_pos"),
                                             _scores(ref, shots, "lp_pos"))
            diff += f" | {vs}"
        name = f"`{r['backbone']}`" + (" (random init)" if r["random_init"] else "")
        if r["backbone"] == SPECTRA:
            name = "standardised spectra (no network; `lp_pos` = the graph baseline)"
        seeds = sorted({s for p in probes for s in _scores(r, shots, p)})
        span = "–" if not seeds else f"{seeds[0]}-{seeds[-1]}" \
            if seeds == list(range(seeds[0], seeds[-1] + 1)) else ",".join(map(str, seeds))
        lines.append(f"| {name} | {span} | " + " | ".join(cells) + f" | {diff} |")
    return (f"**{scene}**, {shots} shots per class; overall accuracy (%) of read-outs fitted on "
            "the shots of frozen features, mean +- std over split seeds. `lp`: label "
            "propagation over the features alone; `lp_pos`: the scene graph (features, "
            "smoothed, with position); `lp_joint`: the scene graph of the spectra joined with "
            "the features (see hsizoo.method.probe).\n\n"
            + "\n".join(lines) + "\n")


def probe_rows(records: Sequence[dict[str, Any]], backbone: str, sha256: str | None = None
               ) -> list[dict[str, Any]]:
    """Card rows for one published backbone: per scene and shot count, each read-out's mean OA
    and the linear probe's paired difference to random initialisation of the architecture.
    With ``sha256``, only results measured on those exact weights count."""
    rows = []
    for r in records:
        if r["backbone"] != backbone or r["random_init"]:
            continue
        if sha256 is not None and r.get("weights_sha256") != sha256:
            continue
        base = next((b for b in records if b["random_init"] and b["scene"] == r["scene"]
                     and b["architecture"] == r["architecture"]), None)
        for k in r["shots"]:
            row: dict[str, Any] = {"scene": r["scene"], "shots": k,
                                   "seeds": len(_scores(r, k, "linear"))}
            for p in PROBES:
                vals = list(_scores(r, k, p).values())
                if vals:
                    row[p] = round(float(np.mean(vals)), 1)
            if base is not None and k in base["shots"]:
                mine, theirs = _scores(r, k, "linear"), _scores(base, k, "linear")
                common = sorted(set(mine) & set(theirs))
                row["linear, random init"] = round(float(np.mean([theirs[s] for s in common])), 1)
                row["linear gain (paired)"] = round(float(np.mean(
                    [mine[s] - theirs[s] for s in common])), 1)
            rows.append(row)
    return rows
