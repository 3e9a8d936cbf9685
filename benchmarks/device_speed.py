"""Speed on each device and precision: Indian Pines finetune + predict, a 610 x 340 x 103 predict.

What a user runs, timed phase by phase, once per configuration (``device:precision``), all in one
process so that the CPU baseline and the GPU figures come from the same machine and run:

* Indian Pines end to end: ``hsizoo.finetune(scene, labels, shots=5)`` with the default model
  and settings (the full method: transductive DAFT, graph refinement), then
  ``FineTuned.predict()`` of the whole 145 x 145 scene; OA on the labelled pixels that were
  not shots (one seed: a check that a lower precision did not break the result, not an
  accuracy benchmark: benchmarks/fewshot.py is that);
* a 610 x 340 x 103 scene (simulated ROSIS on the real Pavia University layout): whole-scene
  prediction with the same backbone and a 9-class head.

For the large scene the table also gives patches per second (one patch per valid pixel) and the
share of the card's peak: the model's FLOPs per patch (a forward pass of the backbone and head,
counted by ``torch.utils.flop_counter`` on the CPU; a multiply-add is 2 FLOPs) times patches/s,
over the card's dense peak for that precision from its data sheet (:data:`PEAK_TFLOPS`; fp32 is
the CUDA-core peak, as PyTorch does not use TF32 for matmuls by default). ``--rescore`` rewrites
the table of a stored run with these columns, counting the FLOPs now.

Before the timed runs, one small fine-tune on each configuration warms it up (CUDA context,
kernels, allocator), so the figures are steady-state, as a user's second call would be. Ratios
are against the first CPU configuration.

Usage:
    python benchmarks/device_speed.py                              # cpu:fp32, and cuda if there
    python benchmarks/device_speed.py --configs cpu:fp32 cuda:fp32 cuda:bf16
    python benchmarks/device_speed.py --rescore     # the stored run's table, with FLOP columns
Writes benchmarks/results/device_speed.{json,md} (``--name`` to change).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _env import environment, save, sync as _sync  # noqa: E402


#: Dense peak TFLOPS from the NVIDIA data sheets (SXM parts; bf16 without sparsity), matched
#: against the start of the device's name after "NVIDIA ".
PEAK_TFLOPS: dict[str, dict[str, float]] = {
    "H200": {"fp32": 67.0, "bf16": 989.0, "fp16": 989.0},
    "H100": {"fp32": 67.0, "bf16": 989.0, "fp16": 989.0},
    "A100": {"fp32": 19.5, "bf16": 312.0, "fp16": 312.0},
}


def peak_tflops(device_name: str, precision: str) -> float | None:
    """The card's dense peak for ``precision``, or None when unknown (CPUs, other cards)."""
    name = device_name.removeprefix("NVIDIA ").strip()
    for card, peaks in PEAK_TFLOPS.items():
        if name.startswith(card):
            return peaks.get(precision)
    return None


def flops_per_patch(model: str, wavelengths, num_classes: int) -> float:
    """FLOPs of one patch (the model's own patch size) through ``model`` (forward, backbone and
    head), counted on the CPU."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    import hsizoo

    net = hsizoo.create_model(model, num_classes=num_classes).eval()
    patch = net.pretrained_cfg["input_size"][-1]
    batch = 16
    x = torch.zeros(batch, len(wavelengths), patch, patch)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(x, list(map(float, wavelengths)))
    return counter.get_total_flops() / batch


def _throughput(row: dict) -> tuple[float, float | None]:
    """(patches/s, share of the card's peak or None) of the large-scene prediction."""
    rate = row["big_pixels"] / row["big_predict_s"]
    peak = peak_tflops(row["device_name"], row["precision"])
    flops = row.get("flops_per_patch")
    share = rate * flops / (peak * 1e12) if peak and flops else None
    return rate, share


def _warm_up(device: str, precision: str, root: str) -> None:
    """A short plain fine-tune and a predict, so that the timed runs do not pay one-off start-up
    (CUDA context, kernels, allocator, first reads)."""
    import hsizoo
    from hsizoo.data.download import load_dataset

    scene = load_dataset("indian_pines", root=root, progress=False)
    ft = hsizoo.finetune(scene, scene.labels, shots=2, daft=False, steps=5, head_steps=5,
                         progress=False, device=device, precision=precision)
    ft.predict(progress=False)
    _sync(device)


def run_config(device: str, precision: str, args: argparse.Namespace) -> dict:
    import torch

    import hsizoo
    from hsizoo.data.download import load_dataset
    from hsizoo.predict.engine import predict_scene
    from hsizoo.data.metrics import evaluate
    from hsizoo.spectral.grid import band_stats

    _warm_up(device, precision, args.root)
    out: dict = dict(device=device, precision=precision,
                     device_name=torch.cuda.get_device_name(0) if device.startswith("cuda")
                     else f"CPU, {torch.get_num_threads()} torch threads")
    t0 = time.perf_counter()
    scene = load_dataset("indian_pines", root=args.root, progress=False)
    ft = hsizoo.finetune(scene, scene.labels, shots=5, seed=args.seed, progress=False,
                         device=device, precision=precision)
    _sync(device)
    t1 = time.perf_counter()
    res = ft.predict(progress=False)
    _sync(device)
    t2 = time.perf_counter()
    test = scene.labels * (ft.train_labels == 0)
    oa = evaluate(test, res.class_map).oa
    out.update(ip_read_finetune_s=t1 - t0, ip_predict_s=t2 - t1, ip_total_s=t2 - t0,
               ip_phases=ft.history["seconds"], ip_oa=float(oa), weights=ft.history["weights"])
    print(f"[{device} {precision}] Indian Pines: read + finetune {t1 - t0:.1f} s, predict "
          f"{t2 - t1:.1f} s, total {t2 - t0:.1f} s (OA {100 * oa:.1f} %, seed {args.seed})",
          flush=True)

    sim = hsizoo.simulate_scene("pavia_university", sensor="rosis", seed=0)
    net = hsizoo.create_model(ft.history["model"], num_classes=9)
    sd = {k: v for k, v in ft.model.state_dict().items() if not k.startswith("head")}
    net.load_state_dict(sd, strict=False)
    net = net.to(device).eval()
    stats = band_stats(sim.cube, sim.valid)
    t = time.perf_counter()
    predict_scene(net, sim, stats, None, window_size=args.window, progress=False,
                      smooth_sigma=ft.smooth_sigma, precision=precision)
    _sync(device)
    h, w, b = sim.cube.shape
    out.update(big_predict_s=time.perf_counter() - t, big_shape=[h, w, b],
               big_pixels=int(sim.valid.sum()), model=ft.history["model"],
               flops_per_patch=flops_per_patch(ft.history["model"], sim.wavelengths, 9))
    print(f"[{device} {precision}] {h} x {w} x {b} prediction: {out['big_predict_s']:.1f} s "
          f"({out['big_pixels'] / out['big_predict_s']:.0f} px/s)", flush=True)
    return out


def markdown(rows: list[dict], env: dict) -> str:
    base = next((r for r in rows if r["device"] == "cpu"), rows[0])
    lines = [
        "Generated by `python benchmarks/device_speed.py`. One process, one machine; ratios "
        f"against the {base['device']} {base['precision']} row. Indian Pines: "
        "`finetune(shots=5)` with the default model and settings, then `predict()` of the "
        "whole scene (OA on the non-shot labelled pixels, one seed, as a check). Large scene: "
        "whole-scene prediction of a simulated 610 x 340 x 103 ROSIS scene; patches/s (one per "
        "valid pixel) and the share of the card's dense peak for that precision (model FLOPs "
        "per patch counted by torch.utils.flop_counter).\n",
        f"Machine: {env.get('cuda') or 'no GPU'}; CPU {env.get('cpu')} "
        f"({env.get('cpu_count')} cores); torch {env.get('torch')}; commit "
        f"{env.get('commit') or 'n/a'}.\n",
        "| device | precision | IP read + finetune (s) | IP predict (s) | IP total (s) | "
        "speed-up | IP OA (%) | 610 x 340 x 103 predict (s) | speed-up | patches/s | "
        "share of peak |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        rate, share = _throughput(r)
        share_s = "n/a" if share is None else f"{100 * share:.2g} %"
        lines.append(
            f"| {r['device_name']} | {r['precision']} | {r['ip_read_finetune_s']:.1f} | "
            f"{r['ip_predict_s']:.1f} | {r['ip_total_s']:.1f} | "
            f"{base['ip_total_s'] / r['ip_total_s']:.1f}x | {100 * r['ip_oa']:.1f} | "
            f"{r['big_predict_s']:.1f} | {base['big_predict_s'] / r['big_predict_s']:.1f}x | "
            f"{rate:,.0f} | {share_s} |")
    flops = {r.get("flops_per_patch") for r in rows} - {None}
    if flops:
        lines.append(f"\nModel FLOPs per patch ({rows[0].get('model', 's2former_tiny')}, "
                     f"103 bands, 7 x 7): {max(flops) / 1e6:.1f} M.")
    return "\n".join(lines) + "\n"


def rescore(name: str) -> str:
    """Rewrite a stored run's table with patches/s and share of peak (FLOPs counted now)."""
    import json

    import hsizoo

    path = REPO / "benchmarks" / "results" / f"{name}.json"
    data = json.loads(path.read_text())
    rows = data["rows"]
    wavelengths = hsizoo.simulate_scene("pavia_university", sensor="rosis", seed=0).wavelengths
    for r in rows:
        if r.get("flops_per_patch") is None:
            r["model"] = r.get("model") or r["weights"].split(".")[0].split()[0]
            r["flops_per_patch"] = flops_per_patch(r["model"], wavelengths, 9)
    md = markdown(rows, data["environment"])
    save(name, dict(rows=rows), md, env=data["environment"])
    return md


def main(argv: list[str] | None = None) -> int:
    import torch

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="+", default=None,
                   help="device:precision pairs; ratios are against the first CPU one "
                        "(default cpu:fp32, plus cuda:fp32 and cuda:bf16 when there is a GPU)")
    p.add_argument("--root", default=os.environ.get("HSIZOO_DATA_DIR")
                   or str(REPO.parent / "shared" / "data" / "hsi"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--window", type=int, default=256)
    p.add_argument("--name", default="device_speed", help="results/<name>.{json,md}")
    p.add_argument("--rescore", action="store_true",
                   help="no run: rewrite the stored results' table with the FLOP columns")
    args = p.parse_args(argv)
    if args.rescore:
        print(rescore(args.name))
        return 0
    warnings.filterwarnings("ignore", category=UserWarning)
    configs = args.configs or (["cpu:fp32"] + (["cuda:fp32", "cuda:bf16"]
                                               if torch.cuda.is_available() else []))
    rows, env = [], environment()
    for c in configs:
        device, _, precision = c.partition(":")
        rows.append(run_config(device, precision or "fp32", args))
        md = markdown(rows, env)
        save(args.name, dict(rows=rows), md)  # after each configuration: a cut run keeps some
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
