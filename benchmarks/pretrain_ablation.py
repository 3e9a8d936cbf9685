"""Pretraining recipe ablation, judged by the representation probe (not by the loss).

    OMP_NUM_THREADS=1 python benchmarks/pretrain_ablation.py [--steps 500] [--arms full recon]

Each arm pretrains ``s2former_tiny`` on the pixels of one scene (default Indian Pines, no labels)
with the same schedule, batch and seed, changing one thing: the paper's masked reconstruction
with and without the frequency-domain constraint (FDC), and with the view-agreement term
(InfoNCE between two augmented views up to ``view_offset`` pixels apart) with and without FDC
and with offset 0 (same pixel, augmentations only). Every encoder is then probed with
:mod:`hsizoo.method.probe` on split seeds 0-9 at 5 shots, beside random initialisation.
Runs go to ``--work`` (resumable: finished exports are reused); results to
benchmarks/results/probe_ablation/ and benchmarks/results/pretrain_ablation.md.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hsizoo.bench.probe_run import load_probe_results, probe_table, run_probe_benchmark  # noqa: E402

from _env import RESULTS, environment  # noqa: E402

pt = importlib.import_module("hsizoo.pretrain")

ARMS = {
    "recon_nofdc": ("masked reconstruction only", dict(fdc_weight=0.0, contrast_weight=0.0)),
    "recon": ("masked reconstruction + FDC (the paper's recipe)",
              dict(fdc_weight=0.5, contrast_weight=0.0)),
    "full": ("+ view agreement, views up to 2 px apart (hsizoo's recipe)",
             dict(fdc_weight=0.5, contrast_weight=1.0, view_offset=2)),
    "full_nofdc": ("view agreement without FDC", dict(fdc_weight=0.0, contrast_weight=1.0,
                                                       view_offset=2)),
    "offset0": ("view agreement, same pixel (augmentations only)",
                dict(fdc_weight=0.5, contrast_weight=1.0, view_offset=0)),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    ap.add_argument("--scene", default="indian_pines")
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default="runs/pretrain_ablation")
    ap.add_argument("--seeds", default="0-9", help="probe split seeds")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args(argv)
    from hsizoo.bench.records import parse_int_list

    seeds = parse_int_list(args.seeds)
    out = RESULTS / "probe_ablation"
    work = Path(args.work)
    if not args.report_only:
        for arm in args.arms:
            export = work / arm / "export"
            if not (export / "model.safetensors").is_file():
                pt.pretrain([args.scene], work / arm / "run", model="s2former_tiny",
                            steps=args.steps, batch_size=args.batch_size, lr=1e-3,
                            seed=args.seed, checkpoint_every=max(1, args.steps // 4),
                            log_every=10, progress=False, **ARMS[arm][1])
                pt.export_pretrained(work / arm / "run", export, tag=arm, overwrite=True)
            run_probe_benchmark([str(export)], [args.scene], (5,), seeds, out,
                                environment=environment)
        run_probe_benchmark(["s2former_tiny"], [args.scene], (5,), seeds, out,
                            environment=environment)
    records = load_probe_results(out)
    for r in records:  # name the rows by arm, not by the local run folder
        arm = Path(r["backbone"]).parent.name
        if arm in ARMS:
            r["backbone"] = f"{arm}: {ARMS[arm][0]}"
    text = (f"# Pretraining ablation, judged by the probe\n\n`python benchmarks/pretrain_ablation."
            f"py --steps {args.steps} --batch-size {args.batch_size}`: `s2former_tiny` pretrained "
            f"on the pixels of {args.scene} ({args.steps} steps x {args.batch_size} patches, seed "
            f"{args.seed}, lr 1e-3, cosine), one arm per change; frozen features probed at 5 shots "
            "per class.\n\n" + probe_table(records, args.scene, 5))
    (RESULTS / "pretrain_ablation.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
