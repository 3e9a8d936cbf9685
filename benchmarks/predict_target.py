"""Issue 20's prediction target on this machine: a 610 x 340 x 103 scene mapped whole, and the
shared-computation path against the naive per-patch path, same model, same run.

    python benchmarks/predict_target.py            # prints one JSON line, appends it to
                                                   # benchmarks/results/predict_target.jsonl
    python benchmarks/predict_target.py --no-record  # prints it only (predict_target_ab.py)

The scene is simulated ROSIS on the real Pavia University layout; the model is
``s2former_tiny.ssl_indianpines`` with a 9-class head (the head's weights do not change the
time). Naive: one ``model(x)`` per pixel (batch 1) on 300 random pixels; shared:
``SharedPredictor`` on 20,000 random pixels. Run it on a quiet machine: the target is
<= 20 s and >= 20x on two cores.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

import hsizoo
from hsizoo.data.patches import prepare_cube
from hsizoo.predict.engine import SharedPredictor, predict_naive, predict_scene
from hsizoo.spectral.grid import band_stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-record", action="store_true",
                    help="print the JSON line without appending it to the results file")
    args = ap.parse_args()
    sim = hsizoo.simulate_scene("pavia_university", sensor="rosis", seed=0)
    net = hsizoo.create_model("s2former_tiny.ssl_indianpines", pretrained=True,
                              num_classes=9).eval()
    stats = band_stats(sim.cube, sim.valid)
    with torch.inference_mode():
        t = time.perf_counter()
        predict_scene(net, sim, stats, None, window_size=256, smooth_sigma=1.0, progress=False)
        whole = time.perf_counter() - t
    padded = prepare_cube(stats.apply(sim.cube), sim.valid, net.patch_size)
    rows, cols = np.nonzero(sim.valid)
    pick = np.random.default_rng(0).choice(rows.size, 300, replace=False)
    t = time.perf_counter()
    predict_naive(net, padded, rows[pick], cols[pick], sim.wavelengths, batch_size=1)
    naive = pick.size / (time.perf_counter() - t)
    sub = np.random.default_rng(1).choice(rows.size, 20000, replace=False)
    t = time.perf_counter()
    SharedPredictor(net, sim.wavelengths).predict_padded(padded, rows[sub], cols[sub])
    shared = sub.size / (time.perf_counter() - t)
    out = dict(predict_610x340x103_s=round(whole, 2), naive_px_s=round(naive, 1),
               shared_px_s=round(shared, 1), shared_over_naive=round(shared / naive, 1),
               threads=torch.get_num_threads(), torch=torch.__version__,
               cpu=platform.processor() or platform.machine())
    print(json.dumps(out), flush=True)
    if args.no_record:
        return
    path = Path(__file__).parent / "results" / "predict_target.jsonl"
    with path.open("a") as f:
        f.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
