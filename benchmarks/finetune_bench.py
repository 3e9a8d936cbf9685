"""Few-shot DAFT on the real Indian Pines: accuracy over seeds, speed, streaming memory (issue 5).

Protocol: the real Indian Pines scene (../shared/data/hsi, or ``--root``); for each seed draw k
labelled pixels per class (``hsizoo.finetune`` with ``shots=k``), train, classify the whole scene,
and test on every other labelled pixel. Reported: mean and standard deviation of OA, AA and kappa
over the seeds, with and without the spatial regularisation of the probabilities (the same
fine-tuned model, predicted twice), and the wall time of each phase.

Speed, measured in the same run on the same model:

* end to end: read the scene, ``finetune(shots=5)``, predict the whole scene;
* whole-scene prediction of the 145 x 145 scene, and of a 610 x 340 x 103 scene (a simulated
  ROSIS scene on the real Pavia University layout);
* naive patch-by-patch inference (one ``model(x)`` per pixel, batch 1) against the shared
  computation path, as pixels per second and their ratio;

Memory: a streamed prediction (``hsizoo predict``'s path: window by window from a GeoTIFF, map
written window by window) of int16 GeoTIFFs of two sizes, each in a fresh process, printing the
peak resident set size: bounded memory shows as a peak that does not grow with the scene.

Usage:
    python benchmarks/finetune_bench.py                      # everything, seeds 0-9
    python benchmarks/finetune_bench.py --parts accuracy --seeds 0-4 --shots 5
    python benchmarks/finetune_bench.py --parts speed,memory # timings; the table keeps stored runs
Per-run accuracy records are appended to benchmarks/results/finetune_runs.jsonl and reused (a
run can be interrupted and resumed); ``--force`` recomputes them.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _env import RESULTS, environment, save  # noqa: E402

from hsizoo.bench.methods import RECIPE  # noqa: E402
from hsizoo.bench.records import PeakMemory  # noqa: E402

RUNS = RESULTS / "finetune_runs.jsonl"


def _seeds(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        out.extend(range(int(a), int(b or a) + 1))
    return out


def _load_runs() -> dict[tuple, dict]:
    if not RUNS.is_file():
        return {}
    recs = [json.loads(line) for line in RUNS.read_text().splitlines() if line.strip()]
    return {(r["model"], r["steps"], r["shots"], r["seed"], r["daft"], r.get("recipe")): r
            for r in recs}


def accuracy(args: argparse.Namespace, scene) -> list[dict]:
    """One record per (shots, seed): OA/AA/kappa with and without smoothing, times."""
    import hsizoo

    done = {} if args.force else _load_runs()
    out = []
    for shots in args.shots:
        for seed in _seeds(args.seeds):
            key = (args.model, args.steps, shots, seed, not args.no_daft, RECIPE)
            if key in done:
                out.append(done[key])
                continue
            t0 = time.perf_counter()
            ft = hsizoo.finetune(scene, scene.labels, shots=shots, model=args.model, seed=seed,
                                 steps=args.steps, daft=not args.no_daft, progress=False)
            t1 = time.perf_counter()
            res = ft.predict(progress=False)
            t2 = time.perf_counter()
            rep = ft.evaluate()
            sigma = ft.smooth_sigma
            ft.smooth_sigma, ft._last = 0.0, None
            raw = ft.evaluate()
            rec = dict(recipe=RECIPE, model=args.model, weights=ft.history.get("weights"),
                       steps=args.steps,
                       shots=shots, seed=seed, daft=not args.no_daft, smooth_sigma=sigma,
                       oa=rep.oa, aa=rep.aa, kappa=rep.kappa,
                       per_class={str(k): float(v) for k, v in rep.per_class.items()},
                       oa_unsmoothed=raw.oa, aa_unsmoothed=raw.aa, kappa_unsmoothed=raw.kappa,
                       train_s=t1 - t0, predict_s=t2 - t1, threads=_threads(),
                       phases={k: round(v, 2) for k, v in ft.history["seconds"].items()})
            print(f"shots {shots} seed {seed}: OA {100 * rep.oa:.2f} % (unsmoothed "
                  f"{100 * raw.oa:.2f} %), train {t1 - t0:.1f} s, predict {t2 - t1:.1f} s",
                  flush=True)
            RUNS.parent.mkdir(parents=True, exist_ok=True)
            with RUNS.open("a") as fh:
                fh.write(json.dumps(rec) + "\n")
            out.append(rec)
            del res
    return out


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def speed(args: argparse.Namespace, scene) -> dict:
    """End-to-end time, whole-scene prediction times, naive vs shared throughput."""
    import torch

    import hsizoo
    from hsizoo.data.download import load_dataset
    from hsizoo.predict.engine import SharedPredictor, predict_naive, predict_scene
    from hsizoo.data.patches import prepare_cube
    from hsizoo.spectral.grid import band_stats

    out: dict = {}
    with PeakMemory() as mem:
        t0 = time.perf_counter()
        sc = load_dataset("indian_pines", root=args.root, progress=False)
        ft = hsizoo.finetune(sc, sc.labels, shots=5, model=args.model, seed=0, steps=args.steps,
                             progress=False)
        t1 = time.perf_counter()
        res = ft.predict(progress=False)
        t2 = time.perf_counter()
    out["end_to_end_s"] = t2 - t0
    out["end_to_end_phases"] = dict(read_and_finetune_s=t1 - t0, predict_s=t2 - t1,
                                    **{f"finetune_{k}_s": v
                                       for k, v in ft.history["seconds"].items()})
    out["end_to_end_memory"] = mem.as_dict()
    out["predict_145x145_s"] = res.seconds
    print(f"end to end (read, finetune shots=5, predict): {t2 - t0:.1f} s, peak RSS "
          f"{round(mem.as_dict().get('peak_rss_mb', 0))} MB; 145 x 145 prediction {res.seconds:.1f} s",
          flush=True)

    # Salinas size: 512 x 217 x 204 (simulated AVIRIS on the real Salinas layout)
    sal = hsizoo.simulate_scene("salinas", sensor="aviris_salinas", seed=0)
    with PeakMemory() as mem:
        t0 = time.perf_counter()
        ft_s = hsizoo.finetune(sal, sal.labels, shots=5, model=args.model, seed=0,
                               steps=args.steps, progress=False)
        t1 = time.perf_counter()
        ft_s.predict(progress=False)
        t2 = time.perf_counter()
    out["salinas_size"] = dict(shape=list(sal.cube.shape), finetune_s=t1 - t0,
                               predict_s=t2 - t1, total_s=t2 - t0, memory=mem.as_dict(),
                               phases=ft_s.history["seconds"])
    print(f"{' x '.join(map(str, sal.cube.shape))}: finetune(shots=5) {t1 - t0:.1f} s + predict "
          f"{t2 - t1:.1f} s, peak RSS {round(mem.as_dict().get('peak_rss_mb', 0))} MB", flush=True)
    del ft_s, sal

    # naive vs shared on the same model and pixels
    model = ft.model.eval()
    std = ft.stats.apply(sc.cube)
    padded = prepare_cube(std, sc.valid, model.patch_size)
    rows, cols = np.nonzero(sc.valid)
    pick = np.random.default_rng(0).choice(rows.size, size=min(args.naive_pixels, rows.size),
                                           replace=False)
    t = time.perf_counter()
    ref = predict_naive(model, padded, rows[pick], cols[pick], sc.wavelengths, batch_size=1)
    naive_pps = pick.size / (time.perf_counter() - t)
    pred = SharedPredictor(model, sc.wavelengths, 1024)
    t = time.perf_counter()
    shared = pred.predict_padded(padded, rows, cols)
    shared_pps = rows.size / (time.perf_counter() - t)
    err = float((shared[pick] - ref).abs().max())
    out.update(naive_pixels_per_s=naive_pps, shared_pixels_per_s=shared_pps,
               shared_over_naive=shared_pps / naive_pps, max_abs_logit_difference=err)
    print(f"naive {naive_pps:.0f} px/s, shared {shared_pps:.0f} px/s: "
          f"{shared_pps / naive_pps:.1f}x (max |logit difference| {err:.1e})", flush=True)

    # a 610 x 340 x 103 scene (simulated ROSIS on the real Pavia University layout)
    sim = hsizoo.simulate_scene("pavia_university", sensor="rosis", seed=0)
    net = hsizoo.create_model(args.model, num_classes=9)
    if hasattr(ft.model, "state_dict"):
        sd = {k: v for k, v in ft.model.state_dict().items() if not k.startswith("head")}
        net.load_state_dict(sd, strict=False)
    stats = band_stats(sim.cube, sim.valid)
    with torch.inference_mode():
        r = predict_scene(net.eval(), sim, stats, None, window_size=256,
                          smooth_sigma=ft.smooth_sigma, progress=False)
    h, w, b = sim.cube.shape
    out["predict_610x340x103_s"] = r.seconds
    out["predict_610x340x103_shape"] = [h, w, b]
    print(f"{h} x {w} x {b} prediction: {r.seconds:.1f} s", flush=True)
    return out


_CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {repo!r})
import hsizoo, torch
from hsizoo.predict.engine import predict_scene
from hsizoo.spectral.grid import BandStats
import numpy as np
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
net = hsizoo.create_model({model!r}, num_classes=16).eval()
stats = BandStats(mean=np.full({bands}, 1000, np.float32), std=np.full({bands}, 300, np.float32))
t = time.perf_counter()
r = predict_scene(net, {path!r}, stats, None, window_size={window}, out_path={out!r},
                  overwrite=True, smooth_sigma={sigma}, progress=False)
print(json.dumps(dict(seconds=time.perf_counter() - t, rss_after_import_mb=rss0,
                      peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
"""


def memory(args: argparse.Namespace) -> dict:
    """Peak RSS of streamed prediction of int16 GeoTIFFs of two sizes, each in a fresh process."""
    import rasterio
    from rasterio.transform import from_origin

    from hsizoo.spectral.sensors import get_sensor

    wl = get_sensor("aviris_indian_pines").wavelengths
    bands = len(wl)
    out = []
    work = Path(tempfile.mkdtemp(prefix="hsizoo_ftmem_"))
    try:
        for rows, cols in args.memory_sizes:
            path = work / f"scene_{rows}x{cols}.tif"
            rng = np.random.default_rng(0)
            with rasterio.open(path, "w", driver="GTiff", height=rows, width=cols, count=bands,
                               dtype="int16", tiled=True, blockxsize=256, blockysize=256,
                               crs="EPSG:32616", transform=from_origin(0, 0, 20, 20)) as ds:
                for r0 in range(0, rows, 256):
                    h = min(256, rows - r0)
                    block = (1000 + 300 * rng.standard_normal((bands, h, cols))).astype("int16")
                    ds.write(block, window=rasterio.windows.Window(0, r0, cols, h))
                ds.descriptions = tuple(f"{w:.2f} nm" for w in wl)
            code = _CHILD.format(repo=str(REPO), model=args.model, bands=bands, path=str(path),
                                 out=str(work / "map.tif"), window=256, sigma=3.0)
            res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 env={**os.environ, "PYTHONWARNINGS": "ignore"})
            if res.returncode != 0:
                raise RuntimeError(res.stderr[-2000:])
            rec = json.loads(res.stdout.strip().splitlines()[-1])
            rec.update(rows=rows, cols=cols, bands=bands,
                       file_mb=path.stat().st_size / 2**20,
                       float32_cube_mb=rows * cols * bands * 4 / 2**20)
            print(f"{rows} x {cols} x {bands} int16 ({rec['file_mb']:.0f} MB file, "
                  f"{rec['float32_cube_mb']:.0f} MB as float32): peak RSS "
                  f"{rec['peak_rss_mb']:.0f} MB (after imports {rec['rss_after_import_mb']:.0f}),"
                  f" {rec['seconds']:.1f} s", flush=True)
            out.append(rec)
            path.unlink()
    finally:
        for p in work.glob("*"):
            p.unlink()
        work.rmdir()
    return {"streams": out}


def _ms(vals: list[float], scale: float = 100.0, nd: int = 1) -> str:
    a = np.asarray(vals, dtype=float) * scale
    return f"{a.mean():.{nd}f} ± {a.std(ddof=1) if a.size > 1 else 0.0:.{nd}f}"


def markdown(acc: list[dict], spd: dict | None, mem: dict | None, args: argparse.Namespace,
             env: dict) -> str:
    lines = [f"Few-shot fine-tuning, `hsizoo.finetune` (recipe {RECIPE}, `{args.model}`, "
             f"{args.steps} steps; torch {env['torch']}, {env['cpu']}, "
             f"{env['torch_threads']} threads; `python benchmarks/finetune_bench.py`). Accuracy "
             "over seeds and methods: the harness below.", ""]
    if acc:
        w = acc[0].get("weights")
        lines += [f"Weights: `{w}`. Mean ± standard deviation over seeds; test = every labelled "
                  "pixel that is not a shot. *Smoothed*: the class probabilities spatially "
                  f"regularised (Gaussian, sigma {acc[0]['smooth_sigma']} px), the default; "
                  "*per pixel*: the same models without it. Train and predict times of these "
                  f"runs: {sorted({r.get('threads') for r in acc})} torch thread(s) on a machine "
                  "shared with other jobs; the speed table below is the reference for time.", "",
                  "| shots | seeds | OA (%) | AA (%) | kappa | OA per pixel (%) | train (s) | "
                  "predict (s) | target OA |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for k in sorted({r["shots"] for r in acc}):
            rs = [r for r in acc if r["shots"] == k]
            target = {5: ">= 85 %", 10: ">= 91 %"}.get(k, "")
            lines.append(f"| {k} | {len(rs)} | {_ms([r['oa'] for r in rs])} | "
                         f"{_ms([r['aa'] for r in rs])} | {_ms([r['kappa'] for r in rs], 1, 3)} | "
                         f"{_ms([r['oa_unsmoothed'] for r in rs])} | "
                         f"{_ms([r['train_s'] for r in rs], 1)} | "
                         f"{_ms([r['predict_s'] for r in rs], 1)} | {target} |")
        lines.append("")
    if spd:
        lines += ["| speed | measured | target |", "|---|---:|---:|",
                  f"| read + finetune(shots=5) + predict, end to end | "
                  f"{spd['end_to_end_s']:.1f} s (peak RSS "
                  f"{(spd.get('end_to_end_memory') or {}).get('peak_rss_mb', 0):.0f} MB) | <= 60 s |",
                  f"| predict 145 x 145 x 200 | {spd['predict_145x145_s']:.1f} s | <= 10 s |",
                  *([f"| finetune(shots=5) + predict, "
                     f"{' x '.join(map(str, spd['salinas_size']['shape']))} (Salinas size) | "
                     f"{spd['salinas_size']['total_s']:.1f} s (peak RSS "
                     f"{spd['salinas_size']['memory'].get('peak_rss_mb', 0):.0f} MB) | <= 300 s |"]
                    if spd.get("salinas_size") else []),
                  f"| predict 610 x 340 x 103 | {spd['predict_610x340x103_s']:.1f} s | <= 60 s |",
                  f"| shared computation vs naive patch-by-patch | "
                  f"{spd['shared_pixels_per_s']:.0f} vs {spd['naive_pixels_per_s']:.0f} px/s = "
                  f"{spd['shared_over_naive']:.1f}x | >= 10x |", ""]
    if mem:
        lines += ["| streamed prediction (int16 GeoTIFF) | file | as float32 | peak RSS | time |",
                  "|---|---:|---:|---:|---:|"]
        for r in mem["streams"]:
            lines.append(f"| {r['rows']} x {r['cols']} x {r['bands']} | {r['file_mb']:.0f} MB | "
                         f"{r['float32_cube_mb']:.0f} MB | {r['peak_rss_mb']:.0f} MB | "
                         f"{r['seconds']:.1f} s |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", default=str(REPO.parent / "shared" / "data" / "hsi"))
    p.add_argument("--model", default="s2former_tiny.ssl_indianpines")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--shots", type=int, nargs="+", default=[5, 10])
    p.add_argument("--seeds", default="0-9")
    p.add_argument("--no-daft", action="store_true")
    p.add_argument("--parts", default="accuracy,speed,memory")
    p.add_argument("--naive-pixels", type=int, default=300)
    p.add_argument("--memory-sizes", type=lambda s: [tuple(int(v) for v in x.split("x"))
                                                    for x in s.split(",")],
                   default=[(256, 256), (256, 1024)])
    p.add_argument("--force", action="store_true", help="recompute stored accuracy runs")
    p.add_argument("--name", default="finetune", help="results/<name>.{json,md}")
    args = p.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)
    from hsizoo.data.download import load_dataset

    parts = set(args.parts.split(","))
    scene = load_dataset("indian_pines", root=args.root, progress=False)
    if "accuracy" in parts:
        accuracy(args, scene)
    # The table holds every stored run of this recipe (runs may come from several invocations).
    acc = sorted((r for k, r in _load_runs().items()
                  if k[0] == args.model and k[1] == args.steps and k[4] == (not args.no_daft)
                  and k[5] == RECIPE
                  and r["shots"] in args.shots), key=lambda r: (r["shots"], r["seed"]))
    spd = speed(args, scene) if "speed" in parts else None
    mem = memory(args) if "memory" in parts else None
    env = environment()
    prev = RESULTS / f"{args.name}.json"
    old = json.loads(prev.read_text()) if prev.is_file() else {}
    payload = dict(model=args.model, steps=args.steps, accuracy=acc,
                   speed=spd or old.get("speed"), memory=mem or old.get("memory"))
    md = markdown(payload["accuracy"], payload["speed"], payload["memory"], args, env)
    print(md)
    save(args.name, payload, md)


if __name__ == "__main__":
    main()
