"""Eager against ``torch.compile`` (inductor): S2Former forward and training steps, patches/s.

What a deployer or a trainer gets from compiling an hsizoo model: the same model, the same
batch of patches (wavelengths as a tensor input), timed eager and compiled in one process,
alternately, so that the ratio holds on a machine shared with other jobs. The compiled model is
checked against eager before it is timed. Compilation time is reported apart (paid once per
input shape).

Usage:
    python benchmarks/compile_speed.py                         # s2former_tiny and _small, CPU
    python benchmarks/compile_speed.py --device cuda --models s2former_tiny s2former_base
Writes benchmarks/results/compile_speed.{json,md} (``--name`` to change).
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _env import environment, save, sync as _sync  # noqa: E402


def _timed(fn, device: str) -> float:
    _sync(device)
    t = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t


def measure(name: str, args: argparse.Namespace) -> dict:
    import numpy as np
    import torch

    import hsizoo
    from hsizoo.spectral.sensors import get_sensor

    dev = args.device
    torch.manual_seed(0)
    model = hsizoo.create_model(name, num_classes=16).to(dev)
    wl = torch.tensor(np.asarray(get_sensor("aviris_indian_pines").wavelengths), device=dev)
    P = model.patch_size
    x = torch.randn(args.batch, wl.numel(), P, P, device=dev)
    y = torch.randint(0, 16, (args.batch,), device=dev)
    compiled = torch.compile(copy.deepcopy(model))
    res: dict = dict(model=name, batch=args.batch, bands=int(wl.numel()), patch=P)

    # inference: forward under inference_mode
    model.eval()
    compiled.eval()
    with torch.inference_mode():
        t = time.perf_counter()
        out_c = compiled(x, wl)
        _sync(dev)
        res["compile_forward_s"] = time.perf_counter() - t
        torch.testing.assert_close(out_c, model(x, wl), atol=1e-3, rtol=1e-3)
        eager, comp = [], []
        for _ in range(args.repeats):  # alternately: load changes hit both
            eager.append(_timed(lambda: model(x, wl), dev))
            comp.append(_timed(lambda: compiled(x, wl), dev))
    res["forward_eager_pps"] = args.batch / statistics.median(eager)
    res["forward_compiled_pps"] = args.batch / statistics.median(comp)

    # training: forward, cross-entropy, backward, AdamW step
    model.train()
    compiled.train()
    opt_e = torch.optim.AdamW(model.parameters(), lr=1e-4)
    opt_c = torch.optim.AdamW(compiled.parameters(), lr=1e-4)

    def step(m, opt):
        def run():
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(m(x, wl), y).backward()
            opt.step()
        return run

    t = time.perf_counter()
    step(compiled, opt_c)()
    _sync(dev)
    res["compile_train_s"] = time.perf_counter() - t
    step(model, opt_e)()
    eager, comp = [], []
    for _ in range(args.repeats):
        eager.append(_timed(step(model, opt_e), dev))
        comp.append(_timed(step(compiled, opt_c), dev))
    res["train_eager_pps"] = args.batch / statistics.median(eager)
    res["train_compiled_pps"] = args.batch / statistics.median(comp)
    res["forward_speedup"] = res["forward_compiled_pps"] / res["forward_eager_pps"]
    res["train_speedup"] = res["train_compiled_pps"] / res["train_eager_pps"]
    return res


def markdown(rows: list[dict], env: dict, device: str) -> str:
    where = env["cuda"] if device.startswith("cuda") else \
        f"{env['cpu']}, {env['torch_threads']} torch threads"
    lines = [f"`torch.compile` (inductor) against eager on {where}; torch {env['torch']}; "
             f"`python benchmarks/compile_speed.py`. Median of alternating eager / compiled "
             "calls in one process; patches of the AVIRIS Indian Pines grid (200 bands), "
             "16 classes; the compiled outputs checked against eager first. Training step: "
             "forward, cross-entropy, backward, AdamW.", "",
             "| model | batch | forward eager (patches/s) | compiled | speed-up | train step eager "
             "(patches/s) | compiled | speed-up | compile time (s), forward / train |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| `{r['model']}` | {r['batch']} | {r['forward_eager_pps']:.0f} | "
                     f"{r['forward_compiled_pps']:.0f} | {r['forward_speedup']:.2f}x | "
                     f"{r['train_eager_pps']:.0f} | {r['train_compiled_pps']:.0f} | "
                     f"{r['train_speedup']:.2f}x | {r['compile_forward_s']:.0f} / "
                     f"{r['compile_train_s']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["s2former_tiny", "s2former_small"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--name", default="compile_speed")
    args = p.parse_args()
    warnings.filterwarnings("ignore")
    rows = []
    for name in args.models:
        r = measure(name, args)
        print(f"{name}: forward {r['forward_eager_pps']:.0f} -> {r['forward_compiled_pps']:.0f} "
              f"patches/s ({r['forward_speedup']:.2f}x), train {r['train_eager_pps']:.0f} -> "
              f"{r['train_compiled_pps']:.0f} ({r['train_speedup']:.2f}x), compile "
              f"{r['compile_forward_s']:.0f} + {r['compile_train_s']:.0f} s", flush=True)
        rows.append(r)
    env = environment()
    md = markdown(rows, env, args.device)
    save(args.name, dict(device=args.device, rows=rows), md)
    print(md)


if __name__ == "__main__":
    main()
