"""Bounded-memory streaming: iterate a GeoTIFF several times larger than a memory budget.

Writes a synthetic int16 GeoTIFF (default 2000 x 2000 x 100 = 800 MB, tiled, uncompressed so the
file size equals the data size), then, in a fresh process, streams it window by window with
``hsizoo.io.iter_windows`` (with a halo, as a patch model would), computes a per-pixel class from
the band mean of each window, and writes the class map window by window with
``open_class_map_writer``. The child reports the peak resident set size (``ru_maxrss``), the RSS
after imports (torch and timm come in with ``import hsizoo``), and the tracemalloc peak of array
allocations during the loop. Each measurement runs in its own process so ``ru_maxrss`` (a
process-lifetime peak) is not polluted by writing the input file.

GDAL keeps a block cache of its own (GDAL's default: 5 % of RAM); ``iter_windows`` caps it at
64 MiB while streaming. The run is repeated with GDAL's default to show what the cache adds.

Usage:
    python benchmarks/io_memory.py [--rows 2000 --cols 2000 --bands 100 --window 512 --halo 4
                                    --budget-mb 256 --workdir /tmp/hsizoo_io_memory]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _rss_mb() -> float:
    """Current resident set size in MiB (Linux /proc)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def generate(path: Path, rows: int, cols: int, bands: int) -> None:
    """Write the synthetic scene 256 rows at a time (never the whole cube in memory)."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    wl = np.linspace(400.0, 2500.0, bands)
    profile = dict(driver="GTiff", height=rows, width=cols, count=bands, dtype="int16",
                   nodata=-9999, crs="EPSG:32616", transform=from_origin(5e5, 4.2e6, 10, 10),
                   tiled=True, blockxsize=256, blockysize=256, interleave="pixel", BIGTIFF="YES")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:256, 0:cols]
    with rasterio.open(path, "w", **profile) as ds:
        for i in range(bands):
            ds.set_band_description(i + 1, f"Band {i + 1} ({wl[i]:.1f} nm)")
        for r0 in range(0, rows, 256):
            h = min(256, rows - r0)
            # smooth fields plus noise, so the class map has structure
            base = 2000 + 800 * np.sin((yy[:h] + r0) / 150.0) * np.cos(xx[:h] / 110.0)
            block = base[None] + rng.normal(0, 50, size=(bands, h, cols))
            block = block.astype(np.int16)
            if r0 == 0:
                block[:, :64, :64] = -9999  # a nodata corner
            ds.write(block, window=Window(0, r0, cols, h))


def iterate(path: Path, out: Path, window: int, halo: int, cache_mb: int | None = 64) -> dict:
    """Stream the scene and write a class map; return memory and time figures."""
    import tracemalloc

    import numpy as np

    from hsizoo.io import iter_windows, open_class_map_writer, read_scene_info

    rss_imports = _rss_mb()
    info = read_scene_info(path)
    t0 = time.perf_counter()
    tracemalloc.start()
    n = 0
    edges = np.array([1400, 1800, 2200, 2600], dtype=np.float32)
    with open_class_map_writer(out, info.height, info.width, crs=info.crs,
                               transform=info.transform,
                               class_names=["c1", "c2", "c3", "c4", "c5"], overwrite=True) as dst:
        for block in iter_windows(path, window, halo=halo, gdal_cache_mb=cache_mb):
            mean = block.crop(block.cube).mean(axis=-1)
            cls = (np.digitize(mean, edges) + 1).astype(np.uint8)
            cls[~block.crop(block.valid)] = 0
            dst.write(block.window, cls)
            n += 1
            # drop this window before the generator reads the next one; otherwise the loop
            # variable keeps it alive and two windows are resident at the peak
            del block, mean, cls
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "windows": n, "seconds": time.perf_counter() - t0,
        "rss_after_imports_mb": rss_imports,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "tracemalloc_peak_mb": traced_peak / 2**20,
        "map_bytes": out.stat().st_size,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=2000)
    p.add_argument("--cols", type=int, default=2000)
    p.add_argument("--bands", type=int, default=100)
    p.add_argument("--window", type=int, default=512)
    p.add_argument("--halo", type=int, default=4)
    p.add_argument("--budget-mb", type=float, default=256.0,
                   help="memory budget for the data (on top of the interpreter and imports)")
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--keep", action="store_true", help="keep the generated files")
    p.add_argument("--_child", choices=["generate", "iterate"], default=None, help=argparse.SUPPRESS)
    p.add_argument("--_path", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--_cache", type=int, default=64, help=argparse.SUPPRESS)
    args = p.parse_args()

    if args._child == "generate":
        generate(args._path, args.rows, args.cols, args.bands)
        return
    if args._child == "iterate":
        cache = None if args._cache == -1 else args._cache
        res = iterate(args._path, args._path.with_suffix(".map.tif"), args.window, args.halo, cache)
        print(json.dumps(res))
        return

    work = args.workdir or Path(tempfile.mkdtemp(prefix="hsizoo_io_memory_"))
    work.mkdir(parents=True, exist_ok=True)
    path = work / "big_scene.tif"
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    base = [sys.executable, __file__, "--rows", str(args.rows), "--cols", str(args.cols),
            "--bands", str(args.bands), "--window", str(args.window), "--halo", str(args.halo),
            "--_path", str(path)]
    t0 = time.perf_counter()
    subprocess.run([*base, "--_child", "generate"], check=True, env=env)
    size_mb = path.stat().st_size / 2**20
    print(f"scene: {args.rows} x {args.cols} x {args.bands} int16, file {size_mb:,.0f} MiB "
          f"(written in {time.perf_counter() - t0:.1f} s); budget for data {args.budget_mb:.0f} MiB "
          f"= file / {size_mb / args.budget_mb:.1f}")
    block_mb = (args.window + 2 * args.halo) ** 2 * args.bands * 4 / 2**20
    print(f"window {args.window} + halo {args.halo}: one float32 block = {block_mb:.0f} MiB")
    print(f"{'GDAL cache':>22} {'windows':>8} {'time s':>7} {'RSS imports':>12} "
          f"{'peak RSS':>9} {'peak-imports':>13} {'tracemalloc':>12} {'within budget':>14}")
    configs = [("iter_windows default", [], {}),  # gdal_cache_mb=64
               ("GDAL default (5% RAM)", ["--_cache", "-1"], {})]
    rows = []
    for label, extra_args, extra_env in configs:
        run = subprocess.run([*base, "--_child", "iterate", *extra_args], check=True,
                             env={**env, **extra_env}, capture_output=True, text=True)
        r = json.loads(run.stdout.strip().splitlines()[-1])
        extra = r["peak_rss_mb"] - r["rss_after_imports_mb"]
        print(f"{label:>22} {r['windows']:>8} {r['seconds']:>7.1f} "
              f"{r['rss_after_imports_mb']:>10.0f}MB {r['peak_rss_mb']:>7.0f}MB "
              f"{extra:>11.0f}MB {r['tracemalloc_peak_mb']:>10.0f}MB "
              f"{'yes' if extra <= args.budget_mb else 'NO':>14}")
        rows.append({"config": label, **r, "extra_mb": extra, "within_budget": extra <= args.budget_mb})
    print(f"class map written window by window: {r['map_bytes'] / 2**20:.2f} MiB")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _env import save

    md = [f"Streaming a {args.rows} x {args.cols} x {args.bands} int16 GeoTIFF ({size_mb:,.0f} MiB) "
          f"window by window ({args.window} px + halo {args.halo}) against a data budget of "
          f"{args.budget_mb:.0f} MiB (`python benchmarks/io_memory.py`); each row is a fresh process.",
          "", "| GDAL cache | windows | time (s) | RSS after imports | peak RSS | peak - imports "
          "| within budget |", "|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        md.append(f"| {r['config']} | {r['windows']} | {r['seconds']:.1f} | "
                  f"{r['rss_after_imports_mb']:.0f} MiB | {r['peak_rss_mb']:.0f} MiB | "
                  f"{r['extra_mb']:.0f} MiB | {'yes' if r['within_budget'] else 'no'} |")
    save("io_memory", {"rows": args.rows, "cols": args.cols, "bands": args.bands,
                       "file_mb": size_mb, "budget_mb": args.budget_mb, "runs": rows}, "\n".join(md))
    if not args.keep:
        for f in work.glob("big_scene*"):
            f.unlink()
        if args.workdir is None:
            work.rmdir()


if __name__ == "__main__":
    main()
