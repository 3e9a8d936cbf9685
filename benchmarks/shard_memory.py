"""Peak memory of pretraining from patch shards versus from a scene held in memory.

Writes a synthetic int16 GeoTIFF (default 1024 x 1024 x 160, 320 MiB, a nodata corner, band
wavelengths in its tags), cuts it into shards with ``hsizoo shard-scenes``'s function
(:func:`hsizoo.pretrain.shards.shard_scenes`, window by window), then pretrains the tiny
``s2former_test`` for a few steps twice: from the scene in memory (``pretrain([path])``) and
from the shards (``pretrain(shards=DIR)``). Every measurement runs in its own fresh process, so
``ru_maxrss`` (a process-lifetime peak) belongs to that job alone; a process that only imports
``hsizoo.pretrain`` gives the floor that torch and friends cost either way.

Usage:
    python benchmarks/shard_memory.py [--rows 1024 --cols 1024 --bands 160 --steps 5
                                       --max-patches 20000 --workdir /tmp/hsizoo_shard_memory]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RECIPE = dict(model="s2former_test", batch_size=32, lr=1e-3, seed=0)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def generate(path: Path, rows: int, cols: int, bands: int) -> None:
    """Write the scene 128 rows at a time (never the whole cube in memory)."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    wl = np.linspace(420.0, 2450.0, bands)
    profile = dict(driver="GTiff", height=rows, width=cols, count=bands, dtype="int16",
                   nodata=-9999, crs="EPSG:32616", transform=from_origin(5e5, 4.2e6, 10, 10),
                   tiled=True, blockxsize=256, blockysize=256, interleave="pixel", BIGTIFF="YES")
    rng = np.random.default_rng(0)
    shape = 1000 + 600 * np.sin(np.linspace(0, 6, bands))[:, None, None]
    with rasterio.open(path, "w", **profile) as ds:
        for i in range(bands):
            ds.update_tags(i + 1, wavelength=f"{wl[i]:.2f}", wavelength_units="nm")
        for r0 in range(0, rows, 128):
            h = min(128, rows - r0)
            yy, xx = np.mgrid[r0:r0 + h, 0:cols]
            field = np.sin(yy / 90.0) * np.cos(xx / 70.0)
            block = shape * (1.0 + 0.5 * field[None]) + rng.normal(0, 30, size=(bands, h, cols))
            block = block.astype(np.int16)
            if r0 == 0:
                block[:, :64, :64] = -9999
            ds.write(block, window=Window(0, r0, cols, h))


def child(job: str, tif: Path, shards: Path, steps: int, max_patches: int) -> dict:
    """One measured job in this (fresh) process."""
    import importlib

    pt = importlib.import_module("hsizoo.pretrain")
    floor = _peak_mb()
    t0 = time.perf_counter()
    run = Path(tempfile.mkdtemp(prefix=f"run-{job}-", dir=shards.parent))
    if job == "imports":
        pass
    elif job == "shard":
        from hsizoo.pretrain.shards import shard_scenes

        index = shard_scenes([tif], shards, patch_size=5, patches_per_shard=4096,
                             max_patches_per_scene=max_patches, seed=0)
        print(f"  {len(index['shards'])} shards, {sum(e['patches'] for e in index['shards'])} "
              "patches", file=sys.stderr)
    elif job == "memory":
        pt.pretrain([str(tif)], run, steps=steps, progress=False, checkpoint_every=10**6, **RECIPE)
    elif job == "shards":
        pt.pretrain(None, run, shards=shards, steps=steps, progress=False,
                    checkpoint_every=10**6, **RECIPE)
    return dict(job=job, peak_rss_mb=round(_peak_mb(), 1), after_imports_mb=round(floor, 1),
                seconds=round(time.perf_counter() - t0, 2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1024)
    ap.add_argument("--cols", type=int, default=1024)
    ap.add_argument("--bands", type=int, default=160)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--max-patches", type=int, default=20000)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--keep", action="store_true", help="keep the scene and the shards")
    ap.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="hsizoo_shard_memory_"))
    tif, shards = work / "scene.tif", work / "shards"
    if args._child:
        print(json.dumps(child(args._child, tif, shards, args.steps, args.max_patches)))
        return
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    base = [sys.executable, str(Path(__file__).resolve()), "--workdir", str(work), "--rows",
            str(args.rows), "--cols", str(args.cols), "--bands", str(args.bands), "--steps",
            str(args.steps), "--max-patches", str(args.max_patches)]
    try:
        if not tif.exists():
            generate(tif, args.rows, args.cols, args.bands)
        print(f"scene {args.rows} x {args.cols} x {args.bands} int16: "
              f"{tif.stat().st_size / 2**20:.0f} MiB on disk", file=sys.stderr)
        res = {}
        for job in ("imports", "shard", "memory", "shards"):
            out = subprocess.run([*base, "--_child", job], env=env, capture_output=True,
                                 text=True)
            if out.returncode:
                raise SystemExit(f"the {job} job failed:\n{out.stderr[-3000:]}")
            res[job] = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"  {job}: {res[job]}", file=sys.stderr)
        size = sum(p.stat().st_size for p in shards.glob("*.npy")) / 2**20
        floor = res["imports"]["peak_rss_mb"]
        print(f"\nshards on disk: {size:.0f} MiB; imports alone peak at {floor:.0f} MiB RSS")
        print(f"{'job':<28}{'peak RSS MiB':>14}{'above imports':>15}{'seconds':>9}")
        for job, what in (("shard", "cut shards (window by window)"),
                          ("memory", f"pretrain {args.steps} steps, in memory"),
                          ("shards", f"pretrain {args.steps} steps, from shards")):
            r = res[job]
            print(f"{what:<28}{r['peak_rss_mb']:>14.0f}{r['peak_rss_mb'] - floor:>15.0f}"
                  f"{r['seconds']:>9.1f}")
        mem, sh = res["memory"]["peak_rss_mb"], res["shards"]["peak_rss_mb"]
        print(f"\nshards / in memory, peak RSS: {sh / mem:.3f} "
              f"(above imports: {(sh - floor) / max(mem - floor, 1e-9):.3f}); "
              f"cutting / in memory: {res['shard']['peak_rss_mb'] / mem:.3f}")
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
