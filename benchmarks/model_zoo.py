"""Per registered model: parameters, FLOPs per pixel and forward throughput on this machine.

    python benchmarks/model_zoo.py [--batch 256] [--repeats 3] [--sensor aviris_indian_pines]

Throughput is patches (= classified pixels) per second of a plain batched forward pass, the
median of ``--repeats`` timed runs after one warm-up. Writes benchmarks/results/models.{json,md}.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import hsizoo  # noqa: E402
from hsizoo.models._factory import count_flops_per_pixel  # noqa: E402
from hsizoo.spectral.sensors import get_sensor  # noqa: E402

from _env import environment, save  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sensor", default="aviris_indian_pines")
    args = ap.parse_args(argv)
    wl = get_sensor(args.sensor).wavelengths
    rows = []
    for name in hsizoo.list_models():
        model = hsizoo.create_model(name, num_classes=16).eval()
        P = model.patch_size
        x = torch.randn(args.batch, len(wl), P, P)
        params = sum(p.numel() for p in model.parameters())
        flops = count_flops_per_pixel(model, wl)
        times = []
        with torch.inference_mode():
            model(x, wl)
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                model(x, wl)
                times.append(time.perf_counter() - t0)
        pps = args.batch / statistics.median(times)
        rows.append(dict(model=name, params=params, patch=P, embed_dim=model.embed_dim,
                         depth=len(model.blocks), mflops_per_pixel=flops / 1e6,
                         pixels_per_s=pps))
        print(f"{name:16s} {params / 1e6:7.2f} M  {flops / 1e6:8.1f} MFLOP/px  {pps:9.0f} px/s",
              flush=True)
    env = environment()
    md = [f"Forward throughput on {env['cpu']} ({env['torch_threads']} threads), torch "
          f"{env['torch']}, batch {args.batch}, {len(wl)} bands ({args.sensor}); "
          "`python benchmarks/model_zoo.py`.", "",
          "| model | params (M) | patch | dim | depth | MFLOPs / pixel | pixels / s |",
          "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        md.append(f"| `{r['model']}` | {r['params'] / 1e6:.2f} | {r['patch']} | {r['embed_dim']} "
                  f"| {r['depth']} | {r['mflops_per_pixel']:.1f} | {r['pixels_per_s']:.0f} |")
    save("models", {"rows": rows, "args": vars(args)}, "\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
