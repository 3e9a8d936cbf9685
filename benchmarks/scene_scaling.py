"""How ``finetune(shots=5)`` + whole-scene prediction grow with the scene (issue 20).

Each size runs in a fresh child process (so that peak memory is that size's alone): make the
scene (the real Indian Pines at 145 x 145, else a simulated AVIRIS scene of H x W x 200 with
``hsizoo.simulate_scene``), ``hsizoo.finetune(scene, shots=5)``, then ``FineTuned.predict()`` of
the whole scene. Recorded: the time of each phase (``history["seconds"]``: prepare, graph, head,
finetune), the prediction time, and the peak resident set size (sampled, and the process's
high-water mark) from the moment the scene is in memory (its simulation is not counted; the cube
is). A child that runs past ``--timeout`` is stopped and its row says so.

The scene graph (:mod:`hsizoo.method.transduction`) is the part of fine-tuning that reads every
pixel at once; ``--graph`` also times :func:`~hsizoo.method.transduction.graph_features` +
:func:`~hsizoo.method.transduction.knn_graph` + 100 propagation iterations alone on growing
scenes, and fits ``time = a * pixels ** b``: ``b`` near 1 means linear, 2 quadratic.

Sizes that cannot be run here are extrapolated from the measured ones by the same power law
(time) and by a linear fit of the peak RSS against pixels x bands (memory); the table marks
those rows "extrapolated".

Usage:
    python benchmarks/scene_scaling.py                          # 145, 512, 1000; 2000 extrapolated
    python benchmarks/scene_scaling.py --sizes 145,512 --graph 145,362,512,724,1000
    python benchmarks/scene_scaling.py --sizes 145,512,1000,2000 --timeout 3600
Results: benchmarks/results/scene_scaling.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _env import RESULTS, environment, save  # noqa: E402

_CHILD = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
sys.path.insert(0, {repo!r})
import numpy as np
import hsizoo
from hsizoo.bench.records import PeakMemory
size, root, model, steps = {size!r}, {root!r}, {model!r}, {steps!r}
t0 = time.perf_counter()
if size == 145:
    from hsizoo.data.download import load_dataset
    scene = load_dataset("indian_pines", root=root, progress=False)
    source = "real Indian Pines"
else:
    scene = hsizoo.simulate_scene((size, size), sensor="aviris_indian_pines", seed=0)
    source = "simulated AVIRIS (hsizoo.simulate_scene)"
import gc; gc.collect()
# Peak memory from here on: fine-tuning and prediction with the scene in memory (making the
# scene, a simulation here, a read in real use, is not counted beyond the cube it leaves).
with PeakMemory(0.05) as mem:
    t1 = time.perf_counter()
    ft = hsizoo.finetune(scene, scene.labels, shots=5, model=model, seed=0, steps=steps,
                         progress=False)
    t2 = time.perf_counter()
    res = ft.predict(progress=False)
    t3 = time.perf_counter()
    oa = float(ft.evaluate().oa) if size == 145 else None
print(json.dumps(dict(size=size, shape=list(scene.cube.shape), source=source,
                      pixels=int(scene.valid.sum()), make_s=t1 - t0, finetune_s=t2 - t1,
                      predict_s=t3 - t2, phases=ft.history["seconds"], oa=oa,
                      memory=mem.as_dict())))
"""

_GRAPH = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
sys.path.insert(0, {repo!r})
import numpy as np
import hsizoo
from hsizoo.method.transduction import (TransductionConfig, graph_features, knn_graph,
                                        propagate, propagation_seeds)
from hsizoo.spectral.grid import band_stats
out = []
for size in {sizes!r}:
    scene = hsizoo.simulate_scene((size, size), sensor="aviris_indian_pines", seed=0)
    cube = band_stats(scene.cube, scene.valid).apply(scene.cube)
    cfg = TransductionConfig()
    t0 = time.perf_counter()
    feats = graph_features(cube, scene.valid, cfg)
    t1 = time.perf_counter()
    graph = knn_graph(feats, cfg.neighbours)
    t2 = time.perf_counter()
    n = graph.shape[0]
    seeds = propagation_seeds(np.linspace(0, n - 1, 40).astype(int), np.arange(40) % 8, n, 8)
    propagate(graph, seeds, cfg.alpha, cfg.iterations)
    t3 = time.perf_counter()
    out.append(dict(size=size, pixels=n, features_s=t1 - t0, knn_s=t2 - t1,
                    propagate_s=t3 - t2, nnz=int(graph.nnz)))
    print(json.dumps(out[-1]), file=sys.stderr, flush=True)
    del scene, cube, feats, graph
print(json.dumps(out))
"""


def _child(code: str, timeout: float) -> dict | list | None:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    try:
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    if res.returncode < 0:  # stopped by a signal (out of memory, or by hand): not measured
        return None
    if res.returncode != 0:
        raise RuntimeError(res.stderr[-3000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def _power_fit(x: list[float], y: list[float]) -> tuple[float, float]:
    """(a, b) of y = a * x ** b, least squares in log-log."""
    b, loga = np.polyfit(np.log(x), np.log(y), 1)
    return float(np.exp(loga)), float(b)


def extrapolate(runs: list[dict], size: int, bands: int = 200) -> dict:
    """A row for ``size`` from the measured runs: time by power laws, memory linear in
    pixels x bands. Marked extrapolated."""
    meas = [r for r in runs if r.get("measured")]
    px = [r["shape"][0] * r["shape"][1] for r in meas]
    n = size * size
    row = dict(size=size, shape=[size, size, bands], measured=False, pixels=n,
               source="extrapolated from the measured rows")
    if len(meas) >= 2:
        for key in ("finetune_s", "predict_s"):
            a, b = _power_fit(px, [r[key] for r in meas])
            row[key], row[key + "_exponent"] = a * n ** b, b
        vol = [p * r["shape"][2] for p, r in zip(px, meas)]
        peak = [r["memory"]["peak_rss_mb"] for r in meas]
        slope, icpt = np.polyfit(vol, peak, 1)
        row["memory"] = dict(peak_rss_mb=float(icpt + slope * n * bands),
                             mb_per_million_values=float(slope * 1e6))
    return row


def markdown(res: dict, env: dict) -> str:
    lines = [f"`hsizoo.finetune(scene, shots=5)` + `predict()` against scene size "
             f"(`{res['model']}`, {res['steps']} steps; torch {env['torch']}, {env['cpu']}, "
             f"{env['torch_threads']} threads, a machine shared with other jobs; "
             "`python benchmarks/scene_scaling.py`). Each size in a fresh process; peak RSS "
             "while fine-tuning and predicting, the scene's cube included.", "",
             "| scene | pixels | source | fine-tune (s) | of which graph (s) | predict (s) | "
             "peak RSS (MB) |", "|---|---:|---|---:|---:|---:|---:|"]
    for r in res["runs"]:
        shape = " x ".join(map(str, r["shape"]))
        if r.get("timed_out"):
            lines.append(f"| {shape} | {r['pixels']:,} | stopped after {res['timeout']:.0f} s "
                         "| | | | |")
            continue
        tag = "" if r.get("measured") else " (extrapolated)"
        graph = r.get("phases", {}).get("graph")
        lines.append(f"| {shape}{tag} | {r['pixels']:,} | {r['source']} | "
                     f"{r.get('finetune_s', float('nan')):.0f} | "
                     f"{'' if graph is None else f'{graph:.1f}'} | "
                     f"{r.get('predict_s', float('nan')):.0f} | "
                     f"{r.get('memory', {}).get('peak_rss_mb', float('nan')):.0f} |")
    if res.get("graph"):
        lines += ["", "Scene graph alone (features, k-NN graph, 100 propagation iterations):", "",
                  "| scene | pixels | features (s) | k-NN (s) | propagate (s) |",
                  "|---|---:|---:|---:|---:|"]
        for g in res["graph"]:
            lines.append(f"| {g['size']} x {g['size']} | {g['pixels']:,} | "
                         f"{g['features_s']:.1f} | {g['knn_s']:.1f} | {g['propagate_s']:.1f} |")
        for key, b in res.get("graph_exponents", {}).items():
            lines.append(f"\n{key}: time grows as pixels^{b:.2f}.")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", default=str(REPO.parent / "shared" / "data" / "hsi"))
    p.add_argument("--model", default="s2former_tiny.ssl_indianpines")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--sizes", default="145,512,1000")
    p.add_argument("--extrapolate", default="2000", help="sizes only extrapolated")
    p.add_argument("--graph", default="", help="sizes of the graph-only timing, e.g. 145,512,1000")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per child process")
    p.add_argument("--name", default="scene_scaling")
    args = p.parse_args()
    warnings.filterwarnings("ignore")
    prev = RESULTS / f"{args.name}.json"
    old = json.loads(prev.read_text()) if prev.is_file() else {}
    runs = [r for r in old.get("runs", []) if r.get("measured")]
    for size in (int(s) for s in args.sizes.split(",") if s):
        t = time.perf_counter()
        rec = _child(_CHILD.format(repo=str(REPO), size=size, root=args.root, model=args.model,
                                   steps=args.steps), args.timeout)
        if rec is None:
            rec = dict(size=size, shape=[size, size, 200], pixels=size * size, timed_out=True,
                       measured=False)
            print(f"{size} x {size}: stopped after {time.perf_counter() - t:.0f} s", flush=True)
        else:
            rec["measured"] = True
            print(f"{size} x {size}: finetune {rec['finetune_s']:.0f} s (graph "
                  f"{rec['phases'].get('graph', 0):.1f} s), predict {rec['predict_s']:.0f} s, "
                  f"peak RSS {rec['memory'].get('peak_rss_mb', 0):.0f} MB", flush=True)
        runs = sorted([r for r in runs if r["size"] != size] + [rec], key=lambda r: r["size"])
        # Saved after every size: a long run stopped later keeps what it measured.
        save(args.name, dict(model=args.model, steps=args.steps, timeout=args.timeout,
                             runs=runs, graph=old.get("graph", []),
                             graph_exponents=old.get("graph_exponents", {})), "")
    for size in (int(s) for s in args.extrapolate.split(",") if s):
        if not any(r["size"] == size and r.get("measured") for r in runs):
            runs = [r for r in runs if r["size"] != size] + [extrapolate(runs, size)]
    graph = old.get("graph", [])
    if args.graph:
        code = _GRAPH.format(repo=str(REPO), sizes=[int(s) for s in args.graph.split(",")])
        graph = _child(code, args.timeout) or graph
    exps = {}
    if len(graph) >= 2:
        for key in ("features_s", "knn_s", "propagate_s"):
            exps[key.replace("_s", "")] = _power_fit([g["pixels"] for g in graph],
                                                     [g[key] for g in graph])[1]
    res = dict(model=args.model, steps=args.steps, timeout=args.timeout, runs=runs,
               graph=graph, graph_exponents=exps)
    md = markdown(res, environment())
    print(md)
    save(args.name, res, md)


if __name__ == "__main__":
    main()
