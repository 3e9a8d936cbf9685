"""Pretraining throughput per S2Former variant, and what the frequency-domain constraint does.

    OMP_NUM_THREADS=1 python benchmarks/pretrain_bench.py [--steps 600] [--batch-size 128]

(a) Throughput: samples (patches) per second of full pretraining steps (sampling, forward,
    backward, clipping, AdamW) through :func:`hsizoo.pretrain.pretrain` itself, per variant on
    Indian Pines, the median of the steps after ``--warmup`` warm-up steps.
(b) FDC ablation: two runs of ``s2former_tiny`` on Indian Pines with the same recipe and seed
    except ``fdc_weight`` 0 vs 0.5. Both finished models (encoder + decoders) are then scored
    on the *same* held-out batches (patches and masks drawn by the counter-based sampler with a
    seed the training never used): the pixel-domain reconstruction MSE of the masked pixels
    (``rec_spatial``), of the masked spectral groups (``rec_spectral``) and the FDC metric
    (mean of its spectral and spatial terms, computed for both models whatever their weight).
    Differences are paired over the held-out batches; their standard error says how much of
    a difference the batch sampling alone could explain (one training seed per arm).

Writes benchmarks/results/pretrain.{json,md} (``--no-save`` to skip).
"""
from __future__ import annotations

import argparse
import importlib
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _env import environment, save  # noqa: E402

# ``hsizoo.pretrain`` the package attribute is the function; import the module by name.
pt = importlib.import_module("hsizoo.pretrain")

VARIANTS = ("s2former_test", "s2former_tiny", "s2former_small", "s2former_base")
EVAL_SEED_OFFSET = 1_000_003  # held-out batches: a sampling seed no training run uses
TERMS = ("rec_spatial", "rec_spectral", "fdc", "fdc_spectral", "fdc_spatial")


def _scene(spec: str, data_root: str | None):
    try:
        return pt.load_scene_spec(spec, data_root), spec
    except (FileNotFoundError, ValueError, OSError) as e:
        fallback = "simulated:aviris_indian_pines:indian_pines:0"
        print(f"[pretrain_bench] {spec} unavailable ({e}); using {fallback}", file=sys.stderr)
        return pt.load_scene_spec(fallback, data_root), fallback


def throughput(scene, variants: list[str], steps: int, warmup: int, batch_size: int,
               seed: int) -> list[dict]:
    """Median samples/s of pretraining steps after warm-up, per variant."""
    rows = []
    for name in variants:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            res = pt.pretrain([scene], Path(tmp) / "run", model=name, steps=warmup + steps,
                              batch_size=batch_size, seed=seed, progress=False,
                              checkpoint_every=10**9)
            wall = time.perf_counter() - t0
            recs = pt.read_log(Path(tmp) / "run")
        sps = [r["samples_per_s"] for r in recs[warmup:]]
        params = sum(p.numel() for p in res.encoder.parameters())
        row = dict(model=name, params=params, patch=int(res.encoder.patch_size),
                   batch_size=batch_size, timed_steps=len(sps),
                   samples_per_s=statistics.median(sps),
                   samples_per_s_min=min(sps), samples_per_s_max=max(sps),
                   ms_per_step=1000 * batch_size / statistics.median(sps), wall_s=wall)
        rows.append(row)
        print(f"{name:16s} {params / 1e6:6.2f} M  P={row['patch']}  "
              f"{row['samples_per_s']:8.1f} samples/s  ({row['ms_per_step']:.0f} ms/step of "
              f"{batch_size})", flush=True)
    return rows


def _load_model(run_dir: Path) -> "pt.MaskedS2Former":
    manifest, tensors = pt.load_checkpoint(run_dir)
    model = pt.build_objective(pt.PretrainConfig(**manifest["config"]))
    model.load_state_dict({k[len("model."):]: v for k, v in tensors.items()
                           if k.startswith("model.")})
    return model.eval()


def evaluate(model, data, cfg, batches: int, batch_size: int) -> dict[str, list[float]]:
    """Loss terms of ``model`` on held-out batches (the same ones for every model)."""
    out: dict[str, list[float]] = {k: [] for k in TERMS}
    with torch.no_grad():
        for i in range(batches):
            b = data.sample(i, cfg.seed + EVAL_SEED_OFFSET, batch_size, cfg.mask_ratio,
                            cfg.spectral_mask_ratio)
            terms = model(b)
            for k in TERMS:
                out[k].append(float(terms[k]))
    return out


def fdc_ablation(scene, spec: str, steps: int, batch_size: int, seed: int, eval_batches: int,
                 eval_batch_size: int, weights: tuple[float, float]) -> dict:
    """Two otherwise identical s2former_tiny runs, scored on the same held-out batches."""
    arms = {}
    with tempfile.TemporaryDirectory() as tmp:
        for w in weights:
            run = Path(tmp) / f"fdc{w}"
            t0 = time.perf_counter()
            res = pt.pretrain([scene], run, model="s2former_tiny", steps=steps,
                              batch_size=batch_size, seed=seed, fdc_weight=w, progress=False,
                              checkpoint_every=10**9, log_every=1)
            wall = time.perf_counter() - t0
            recs = pt.read_log(run)
            tail = recs[-max(1, len(recs) // 10):]
            arms[w] = dict(model=_load_model(run), cfg=res.config, wall_s=wall,
                           train_tail={k: float(np.mean([r[k] for r in tail]))
                                       for k in ("loss", *TERMS)})
            print(f"  fdc_weight={w}: {steps} steps in {wall:.0f} s; last-10% training "
                  f"rec_spatial {arms[w]['train_tail']['rec_spatial']:.4f}, "
                  f"fdc {arms[w]['train_tail']['fdc']:.4f}", flush=True)
    # Identical held-out batches for both: the data follow the (shared) encoder configuration.
    cfg = arms[weights[0]]["cfg"]
    data = pt.PretrainData([scene], arms[weights[0]]["model"].encoder, cfg.scene_weighting)
    for w in weights:
        arms[w]["eval"] = evaluate(arms[w]["model"], data, cfg, eval_batches, eval_batch_size)
    off, on = (arms[w]["eval"] for w in weights)
    result = dict(model="s2former_tiny", scene=spec, steps=steps, batch_size=batch_size,
                  seed=seed, eval_batches=eval_batches, eval_batch_size=eval_batch_size,
                  eval_seed=cfg.seed + EVAL_SEED_OFFSET, recipe=cfg.to_json(), arms={})
    for w in weights:
        ev = arms[w]["eval"]
        result["arms"][str(w)] = dict(
            fdc_weight=w, wall_s=arms[w]["wall_s"], train_last10pct=arms[w]["train_tail"],
            heldout={k: float(np.mean(v)) for k, v in ev.items()},
            heldout_sem={k: float(np.std(v, ddof=1) / math.sqrt(len(v))) if len(v) > 1 else None
                         for k, v in ev.items()})
    paired = {}
    for k in TERMS:
        d = np.array(on[k]) - np.array(off[k])
        paired[k] = dict(
            diff=float(d.mean()), rel=float(d.mean() / np.mean(off[k])),
            sem=float(d.std(ddof=1) / math.sqrt(d.size)) if d.size > 1 else None)
    result["paired_on_minus_off"] = paired
    return result


def _num(v: float | None) -> str:
    if v is None:
        return "n/a"
    return f"{v:.4f}" if abs(v) >= 1e-3 or v == 0 else f"{v:.1e}"


def _markdown(env: dict, args: argparse.Namespace, rows: list[dict], abl: dict | None) -> str:
    md = ["# Pretraining benchmark", "",
          f"`OMP_NUM_THREADS={env['torch_threads']} python benchmarks/pretrain_bench.py "
          f"--steps {args.steps} --batch-size {args.batch_size}` on {env['cpu']} "
          f"({env['torch_threads']} torch thread(s)), torch {env['torch']}, commit "
          f"{env['commit']}.", ""]
    if rows:
        md += ["## Throughput", "",
               f"Full pretraining steps (sampling, masked forward, backward, clip, AdamW) on "
               f"{rows[0].get('scene', 'Indian Pines')}, batch {rows[0]['batch_size']}, median "
               f"of {rows[0]['timed_steps']} steps after {args.warmup} warm-up steps.", "",
               "| model | params (M) | patch | samples / s | ms / step |",
               "|---|---:|---:|---:|---:|"]
        for r in rows:
            md.append(f"| `{r['model']}` | {r['params'] / 1e6:.2f} | {r['patch']} | "
                      f"{r['samples_per_s']:.1f} | {r['ms_per_step']:.0f} |")
        md.append("")
    if abl:
        w0, w1 = list(abl["arms"])
        md += ["## Frequency-domain constraint (FDC) ablation", "",
               f"`{abl['model']}` on `{abl['scene']}`, {abl['steps']} steps x {abl['batch_size']}"
               f" patches, seed {abl['seed']}; same recipe except `fdc_weight`. Scored on the "
               f"same {abl['eval_batches']} held-out batches of {abl['eval_batch_size']} patches "
               f"(sampling seed {abl['eval_seed']}, never used in training); mean +- standard "
               "error over batches. Lower is better for every column.", "",
               "| fdc_weight | rec_spatial (masked-pixel MSE) | rec_spectral | FDC | "
               "FDC spectral | FDC spatial |", "|---:|---:|---:|---:|---:|---:|"]
        for w in (w0, w1):
            a = abl["arms"][w]
            cells = [f"{a['heldout'][k]:.4f} +- {_num(a['heldout_sem'][k])}" for k in TERMS]
            md.append(f"| {w} | " + " | ".join(cells) + " |")
        p = abl["paired_on_minus_off"]
        md.append("| paired diff (on - off) | " + " | ".join(
            f"{p[k]['diff']:+.4f} +- {_num(p[k]['sem'])} ({100 * p[k]['rel']:+.1f} %)"
            for k in TERMS) + " |")
        md += ["", "Held-out means unseen (patch, mask) draws of the same scene: this "
               "pretraining is single-scene, like the scene-adaptive use. One training seed per "
               "arm: the +- covers the held-out batch sampling, not the run-to-run variation of "
               "training."]
    return "\n".join(md)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--steps", type=int, default=600, help="steps of each FDC-ablation run")
    ap.add_argument("--batch-size", type=int, default=128, help="patches per ablation step")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-batches", type=int, default=16)
    ap.add_argument("--eval-batch-size", type=int, default=256)
    ap.add_argument("--fdc-weight", type=float, default=0.5, help="the FDC arm's weight")
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS))
    ap.add_argument("--throughput-steps", type=int, default=8, help="timed steps per variant")
    ap.add_argument("--throughput-batch", type=int, default=64)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--scene", default="indian_pines")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads (default: as set by OMP_NUM_THREADS)")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--skip-ablation", action="store_true")
    ap.add_argument("--no-save", action="store_true")
    ap.add_argument("--name", default="pretrain",
                    help="results file stem under benchmarks/results (e.g. pretrain_seed1)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    env = environment()
    print(f"torch {env['torch']} on {env['cpu']}: {torch.get_num_threads()} torch thread(s), "
          f"{env['cpu_count']} cores", flush=True)
    scene, spec = _scene(args.scene, args.data_root)
    h, w, b = scene.cube.shape
    print(f"scene {spec}: {h} x {w} x {b}", flush=True)
    rows: list[dict] = []
    if not args.skip_throughput:
        print("(a) pretraining throughput", flush=True)
        rows = throughput(scene, args.variants, args.throughput_steps, args.warmup,
                          args.throughput_batch, args.seed)
        for r in rows:
            r["scene"] = spec
    abl = None
    if not args.skip_ablation:
        print(f"(b) FDC ablation: s2former_tiny, {args.steps} steps x {args.batch_size}, "
              f"fdc_weight 0 vs {args.fdc_weight}", flush=True)
        abl = fdc_ablation(scene, spec, args.steps, args.batch_size, args.seed,
                           args.eval_batches, args.eval_batch_size, (0.0, args.fdc_weight))
    md = _markdown(env, args, rows, abl)
    print()
    print(md)
    if not args.no_save:
        save(args.name, dict(command="python benchmarks/pretrain_bench.py " + " ".join(
            sys.argv[1:] if argv is None else argv), scene=spec, throughput=rows,
            fdc_ablation=abl), md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
