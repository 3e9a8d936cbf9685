"""Campaign prediction throughput: one worker, two workers, and the naive path (issue 20).

The same scenes are mapped by ``hsizoo predict MODEL SCENE ... --out-dir DIR`` (the campaign
command) in fresh processes, each run into a fresh folder:

* ``1 worker``: one process (torch's default threads: every core);
* ``torchrun x2``: ``torchrun --standalone --nproc-per-node 2`` (gloo); each rank takes
  ``cores // 2`` torch threads (hsizoo.runtime.distributed.worker_threads);
* ``--shard x2``: two ``--shard I/2`` processes started together, as a scheduler would on one
  machine, with their default threads (every core each: oversubscribed), and with
  ``--threads cores // 2`` (what a job script should give them).

Throughput is the scenes' pixels over the wall time of the whole run (start-up, model loading,
COG assembly and mosaic included), and over the compute time in the workers' manifests. The naive
path (one ``model(x)`` per pixel, batch 1, in this process) is measured on a sample of the same
pixels with the same model. Ratios are printed against one worker and against naive.

The model is ``s2former_tiny.ssl_indianpines`` fine-tuned for a few steps on the real Indian
Pines scene (speed does not depend on how well it is trained); the scenes are that scene's cube
mirrored to ``--size`` pixels, written as float32 GeoTIFFs.

Usage:
    python benchmarks/predict_scaling.py                  # 2 scenes of 290 x 290 x 200
    python benchmarks/predict_scaling.py --scenes 4 --size 256 --repeats 2
Results: benchmarks/results/predict_scaling.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
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

from _env import environment, save  # noqa: E402


def _write_scene(path: Path, cube: np.ndarray, wl: np.ndarray, x0: float) -> None:
    import rasterio
    from rasterio.transform import from_origin

    h, w, b = cube.shape
    with rasterio.open(path, "w", driver="GTiff", height=h, width=w, count=b, dtype="float32",
                       crs="EPSG:32616", transform=from_origin(x0, 4.2e6, 20.0, 20.0),
                       tiled=True, blockxsize=256, blockysize=256) as ds:
        ds.write(np.moveaxis(cube, 2, 0).astype(np.float32))
        ds.update_tags(ns="ENVI", wavelength="{" + ",".join(f"{v:g}" for v in wl) + "}",
                       **{"wavelength units": "Nanometers"})


def _setup(args: argparse.Namespace, work: Path) -> tuple[Path, list[Path], int, float]:
    """Fine-tune the model folder, write the scenes; measure the naive path on their pixels."""
    import torch

    import hsizoo
    from hsizoo.data.download import load_dataset
    from hsizoo.data.patches import prepare_cube
    from hsizoo.predict.engine import predict_naive

    sc = load_dataset("indian_pines", root=args.root, progress=False)
    ft = hsizoo.finetune(sc, sc.labels, shots=5, model=args.model, seed=0, steps=args.steps,
                         progress=False)
    ft.save_pretrained(work / "model")
    h = w = args.size
    ph, pw = max(0, h - sc.cube.shape[0]), max(0, w - sc.cube.shape[1])
    cube = np.pad(sc.cube, ((0, ph), (0, pw), (0, 0)), mode="symmetric")[:h, :w]
    scenes = []
    for i in range(args.scenes):
        path = work / f"scene_{i}.tif"
        # Each scene its own pixels (shifted by a few rows), side by side in one UTM zone.
        _write_scene(path, np.roll(cube, 7 * i, axis=0), sc.wavelengths, 500_000.0 + i * w * 20)
        scenes.append(path)
    # The naive path: the same model, the pixels of the first scene, batch 1.
    model = ft.model.eval()
    std = ft.stats.apply(cube)
    padded = prepare_cube(std, np.ones((h, w), bool), model.patch_size)
    rng = np.random.default_rng(0)
    rows, cols = rng.integers(0, h, args.naive_pixels), rng.integers(0, w, args.naive_pixels)
    t = time.perf_counter()
    predict_naive(model, padded, rows, cols, sc.wavelengths, batch_size=1)
    naive = args.naive_pixels / (time.perf_counter() - t)
    print(f"naive path: {naive:.0f} px/s ({torch.get_num_threads()} threads)", flush=True)
    return work / "model", scenes, h * w * args.scenes, naive


def _run(kind: str, model: Path, scenes: list[Path], out: Path, threads: int | None) -> dict:
    """One campaign run in fresh processes; wall time and the workers' compute time."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONWARNINGS": "ignore"}
    base = ["-m", "hsizoo", "predict", str(model), *map(str, scenes), "--out-dir", str(out),
            "--quiet", "--device", "cpu"]
    if threads is not None:
        base += ["--threads", str(threads)]
    t = time.perf_counter()
    if kind == "1 worker":
        procs = [subprocess.Popen([sys.executable, *base], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)]
    elif kind == "torchrun x2":
        env.pop("OMP_NUM_THREADS", None)  # torchrun's own default, then hsizoo's
        procs = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone",
                                   "--nproc-per-node", "2", *base], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)]
    else:
        procs = [subprocess.Popen([sys.executable, *base, "--shard", f"{i}/2"], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for i in range(2)]
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"{kind} failed:\n{err[-3000:]}")
    wall = time.perf_counter() - t
    manifests = [json.loads(m.read_text()) for m in out.glob("manifests/*/worker-*.json")]
    maps = sorted(p.name for p in out.glob("scene_*.tif"))
    if len(maps) != len(scenes):
        raise RuntimeError(f"{kind}: {len(maps)} maps for {len(scenes)} scenes")
    compute = max(sum(u["seconds"] for u in m["units"]) for m in manifests)
    return dict(wall_s=wall, compute_s=compute, workers=len(manifests))


def markdown(res: dict, env: dict) -> str:
    lines = [f"Campaign prediction, `hsizoo predict ... --out-dir` ({res['scenes']} scenes of "
             f"{res['size']} x {res['size']} x 200, `{res['model']}`; torch {env['torch']}, "
             f"{env['cpu']}, {env['cpu_count']} cores; `python benchmarks/predict_scaling.py`). "
             "Wall: the whole run (start-up, loading, COGs, mosaic); compute: the slowest "
             "worker's unit time from its manifest. The kinds run interleaved in one run: "
             "compare ratios within this table.", "",
             "| workers | threads per worker | wall (s) | px/s (wall) | vs 1 worker | vs naive | "
             "compute (s) | px/s (compute) | vs 1 worker |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    one = res["runs"]["1 worker"]
    for name, r in res["runs"].items():
        lines.append(f"| {name} | {r['threads']} | {r['wall_s']:.1f} | {r['pps_wall']:.0f} | "
                     f"{r['pps_wall'] / one['pps_wall']:.2f}x | "
                     f"{r['pps_wall'] / res['naive_pps']:.1f}x | {r['compute_s']:.1f} | "
                     f"{r['pps_compute']:.0f} | {r['pps_compute'] / one['pps_compute']:.2f}x |")
    lines += ["", f"Naive path (one `model(x)` per pixel, batch 1, {env['torch_threads']} "
              f"threads): {res['naive_pps']:.0f} px/s."]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", default=str(REPO.parent / "shared" / "data" / "hsi"))
    p.add_argument("--model", default="s2former_tiny.ssl_indianpines")
    p.add_argument("--steps", type=int, default=10, help="fine-tuning steps of the model used")
    p.add_argument("--scenes", type=int, default=2)
    p.add_argument("--size", type=int, default=290)
    p.add_argument("--naive-pixels", type=int, default=200)
    p.add_argument("--repeats", type=int, default=1, help="runs of each kind; the fastest kept")
    p.add_argument("--name", default="predict_scaling")
    args = p.parse_args()
    warnings.filterwarnings("ignore")
    cores = os.cpu_count() or 1
    kinds = [("1 worker", None, f"{cores} (default)"),
             ("torchrun x2", None, f"{max(1, cores // 2)} (cores // 2)"),
             ("--shard x2", None, f"{cores} (default)"),
             ("--shard x2, --threads cores // 2", max(1, cores // 2), str(max(1, cores // 2)))]
    work = Path(tempfile.mkdtemp(prefix="hsizoo_scaling_"))
    try:
        model, scenes, pixels, naive = _setup(args, work)
        runs: dict[str, dict] = {}
        for rep in range(args.repeats):
            for name, threads, label in kinds:  # interleaved: load changes hit every kind
                out = work / f"out_{rep}_{len(runs)}"
                r = _run(name.split(",")[0], model, scenes, out, threads)
                shutil.rmtree(out)
                r.update(threads=label, pps_wall=pixels / r["wall_s"],
                         pps_compute=pixels / r["compute_s"])
                print(f"{name}: wall {r['wall_s']:.1f} s ({r['pps_wall']:.0f} px/s), compute "
                      f"{r['compute_s']:.1f} s ({r['pps_compute']:.0f} px/s)", flush=True)
                if name not in runs or r["wall_s"] < runs[name]["wall_s"]:
                    runs[name] = r
        res = dict(model=args.model, scenes=args.scenes, size=args.size, pixels=pixels,
                   naive_pps=naive, runs=runs, repeats=args.repeats)
        env = environment()
        md = markdown(res, env)
        print(md)
        save(args.name, res, md)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
