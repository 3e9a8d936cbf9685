"""The pretraining loop: :func:`pretrain`, from a recipe and scenes to a checkpointed encoder.

AdamW with linear warm-up then cosine decay and gradient clipping; a tqdm bar with loss and
samples/s; one log record per logged step. ``resume=True`` continues with the same optimiser,
schedule, step and sampling; SIGINT/SIGTERM finish the current step, write a checkpoint and
return; a non-finite loss or gradient raises :class:`~.config.NonFiniteLossError` before any
update or checkpoint. Under torchrun (``WORLD_SIZE`` > 1) the model is wrapped in
DistributedDataParallel and only rank 0 writes logs and checkpoints.
"""
from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn as nn

from hsizoo.runtime.device import autocast, grad_scaler, resolve_precision
from hsizoo.pretrain.checkpoints import (LOG_NAME, MANIFEST, PROBE_LOG, _restore, _truncate_log, load_checkpoint,
                          save_checkpoint)
from hsizoo.pretrain.config import NonFiniteLossError, PretrainConfig
from hsizoo.pretrain.data import PretrainData, _describe_scene, load_scene_spec
from hsizoo.pretrain.shard_data import (ShardData, check_shard_resume, index_sha256,
                                        shard_location, write_shard_reads)
from hsizoo.runtime.distributed import hardware_line, setup_distributed
from hsizoo.runtime.optim import set_step_lr, warmup_cosine, weight_decay_groups
from hsizoo.runtime.progress import note
from hsizoo.method.objective import build_objective


@dataclass
class PretrainResult:
    """What :func:`pretrain` returns.

    Attributes:
        encoder: The trained S2Former (num_classes=0), on the CPU.
        run_dir: The run directory.
        step: Optimiser steps done (over all resumes).
        final_loss: Loss of the last step.
        wall_time_s: Training wall time over all resumes.
        interrupted: True when a signal or ``max_time``/``until_step`` stopped it early.
        config: The recipe.
    """

    encoder: nn.Module
    run_dir: Path
    step: int
    final_loss: float
    wall_time_s: float
    interrupted: bool
    config: PretrainConfig


class _StopFlag:
    """SIGINT/SIGTERM set a flag; the loop finishes its step, checkpoints and returns."""

    def __init__(self) -> None:
        self.flag = False
        self.signal: str | None = None
        self._old: dict[int, Any] = {}

    def _handler(self, signum: int, frame: Any) -> None:
        if self.flag and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C forces the exit
        self.flag = True
        self.signal = signal.Signals(signum).name
        print(f"\n[hsizoo pretrain] {self.signal} received: finishing this step and writing a "
              "checkpoint (Ctrl-C again to abort without one).", file=sys.stderr, flush=True)

    def __enter__(self) -> "_StopFlag":
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)


_RUNTIME_KEYS = ("resume", "max_time", "until_step", "progress", "callback", "device",
                 "precision", "data_root", "checkpoint_every", "log_every", "probe", "probe_every")


class _Prober:
    """The probe curve of a run: linear-probe accuracy of the encoder, appended to probe.jsonl."""

    SHOTS, SEEDS = 5, (100, 101, 102)

    def __init__(self, scene: Any, data_root: Any, run_dir: Path) -> None:
        self.scene = load_scene_spec(scene, data_root) if isinstance(scene, str) else scene
        self.name = scene if isinstance(scene, str) else _describe_scene(scene)
        if self.scene.labels is None:
            raise ValueError(f"probe scene {self.name} has no labels to probe against; give a "
                             "labelled scene (e.g. indian_pines or a simulated scene).")
        self.path = Path(run_dir) / PROBE_LOG

    def __call__(self, step: int, encoder: nn.Module) -> None:
        from hsizoo.method.probe import probe_model

        t0 = time.perf_counter()
        oa = probe_model(encoder, self.scene, shots=(self.SHOTS,), seeds=self.SEEDS)[self.SHOTS]
        rec = dict(step=step, scene=self.name, shots=self.SHOTS, seeds=list(self.SEEDS),
                   linear_oa=round(oa, 3), probe_s=round(time.perf_counter() - t0, 1))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as fh:
            fh.write(json.dumps(rec) + "\n")
        note(f"[hsizoo pretrain] step {step}: {self.SHOTS}-shot linear probe on {self.name} "
             f"{oa:.1f} % OA")

    def truncate(self, step: int) -> None:
        if self.path.is_file():
            keep = [ln for ln in self.path.read_text().splitlines()
                    if ln.strip() and json.loads(ln)["step"] <= step]
            self.path.write_text("".join(ln + "\n" for ln in keep))



def resume_command(run_dir: str | Path) -> str:
    """The command that continues the run in ``run_dir``: its scenes (or shards) and recipe are
    read back from the checkpoint, so the run folder is all it needs."""
    import shlex

    return f"hsizoo pretrain --run-dir {shlex.quote(str(run_dir))} --resume"

def pretrain(scenes: Sequence[Any] | None = None, run_dir: str | os.PathLike[str] = "runs/pretrain",
             *, resume: bool = False, max_time: float | None = None, until_step: int | None = None,
             checkpoint_every: int = 100, log_every: int = 1, progress: bool = True,
             device: str | None = None, precision: str | None = "fp32",
             data_root: str | os.PathLike[str] | None = None,
             callback: Callable[[int, dict[str, float]], None] | None = None,
             probe: Any = None, probe_every: int | None = None,
             **recipe: Any) -> PretrainResult:
    """Pretrain an S2Former by masked reconstruction with the frequency-domain constraint.

    Args:
        scenes: Scene objects and/or specs (:func:`load_scene_spec`). On resume, None reuses the
            run's specs (Scene objects must be passed again). None with ``shards=DIR`` in the
            recipe: stream patches from the shards of ``hsizoo shard-scenes`` instead
            (:mod:`hsizoo.pretrain.shard_data`; each rank opens only its own shards, memory is
            bounded whatever their size, and a resume needs the same shards and process count;
            rank 0 writes which shards each rank opened to ``shard_reads.json``).
        run_dir: Folder for ``log.jsonl``, checkpoints and ``loss_curve.png``.
        resume: Continue from the checkpoint in ``run_dir`` (same recipe, optimiser, schedule,
            step and sampling). Without it, a run directory with a checkpoint is refused.
        max_time: Stop (with a checkpoint) after this many seconds of this process.
        until_step: Stop (with a checkpoint) at this step, before the end of the schedule.
        checkpoint_every: Steps between checkpoints (one is always written at the end).
        log_every: Steps between log records.
        progress: Show a tqdm bar (rank 0).
        device: "cpu", "cuda", ...; default cuda when available.
        precision: Autocast of the forward pass: ``"fp32"`` (default), ``"bf16"``, or ``"fp16"``
            (GPU only, with loss scaling). Weights, optimiser state and checkpoints stay
            float32; the FFTs of the frequency-domain constraint run in float32 either way.
        data_root: Folder of the benchmark data for specs.
        callback: Called as ``callback(step, record)`` after every step (on every rank).
        probe: A labelled scene (or spec) to measure the encoder on while it trains: the
            5-shot linear probe of :mod:`hsizoo.method.probe` (split seeds 100-102, kept apart
            from the benchmark's 0-9) at step 0 and every ``probe_every`` steps, logged to
            ``probe.jsonl`` and drawn beside the loss curve. Monitoring only: its labels never
            reach the training.
        probe_every: Steps between probes; default ``checkpoint_every``.
        **recipe: Fields of :class:`PretrainConfig` (model, steps, batch_size, lr, mask_ratio,
            fdc_weight, seed, ...).

    Returns:
        A :class:`PretrainResult`.

    Raises:
        NonFiniteLossError: the loss became NaN or infinite (the last checkpoint is untouched).
        FileExistsError: ``run_dir`` holds a checkpoint and ``resume`` is False.
        ValueError: bad recipe, scenes, or a resume whose recipe differs from the run's.
    """
    import torch.distributed as dist

    unknown = set(recipe) - {f.name for f in fields(PretrainConfig)}
    if unknown:
        raise TypeError(f"Unknown pretraining option(s) {sorted(unknown)}; options are "
                        f"{[f.name for f in fields(PretrainConfig)] + list(_RUNTIME_KEYS)}.")
    if recipe.get("shards") is not None:
        recipe["shards"] = shard_location(recipe["shards"])
    run_dir = Path(run_dir)
    has_ckpt = (run_dir / MANIFEST).is_file()
    if has_ckpt and not resume:
        step = json.loads((run_dir / MANIFEST).read_text()).get("step")
        raise FileExistsError(f"{run_dir} already holds a pretraining checkpoint (step {step}); "
                              f"continue it with `{resume_command(run_dir)}` (in Python: "
                              "resume=True), or choose another run_dir.")
    manifest = tensors = None
    if resume and has_ckpt:
        manifest, tensors = load_checkpoint(run_dir)
        cfg = PretrainConfig(**manifest["config"])
        diff = {k: (getattr(cfg, k), v) for k, v in recipe.items()
                if json.dumps(getattr(cfg, k), default=list) != json.dumps(v, default=list)
                and k != "scenes"}
        if diff:
            raise ValueError("resume: the recipe differs from the run's checkpoint: " + ", ".join(
                f"{k} = {new!r} (run has {old!r})" for k, (old, new) in diff.items())
                + ". Resume with the same options, or start a new run_dir.")
        if scenes is None:
            if any(s.startswith("<Scene") for s in cfg.scenes):
                raise ValueError("This run was started with Scene objects; pass the same scenes "
                                 "again to resume it.")
            scenes = list(cfg.scenes)
    shards = recipe.get("shards") if manifest is None else cfg.shards
    if shards is not None and scenes:
        raise ValueError("Pretrain on scenes or on shards, not both: leave out the scenes (the "
                         "shard index lists its own), or drop shards= (--shards).")
    if shards is None and (scenes is None or len(scenes) == 0):
        raise ValueError("No scenes to pretrain on: pass Scene objects or specs such as "
                         "'indian_pines' or 'simulated:enmap:128x128:0', or shards=DIR "
                         "(--shards DIR) from `hsizoo shard-scenes`.")
    scenes = list(scenes or [])
    specs = [s if isinstance(s, str) else _describe_scene(s) for s in scenes]
    if manifest is None:
        cfg = PretrainConfig(**{**recipe, "scenes": specs})
    elif [s for s in specs if not s.startswith("<Scene")] != \
            [s for s in cfg.scenes if not s.startswith("<Scene")]:
        raise ValueError(f"resume: scenes {specs} differ from the run's {cfg.scenes}.")

    d, dev = setup_distributed(device)
    precision = resolve_precision(precision, dev)
    is_main = d.rank == 0
    try:
        torch.manual_seed(cfg.seed)  # identical initialisation on every rank
        model = build_objective(cfg).to(dev)
        data: PretrainData | ShardData
        shard_state: dict[str, Any] = {}
        if cfg.shards is not None:
            if manifest is not None:
                check_shard_resume(manifest, cfg.shards, d.world_size)
            shard_state["shards_index_sha256"] = index_sha256(cfg.shards)
            data = ShardData(cfg.shards, model.encoder, cfg.scene_weighting, dev, d.rank,
                             d.world_size)
        else:
            loaded = [load_scene_spec(s, data_root) if isinstance(s, str) else s for s in scenes]
            data = PretrainData(loaded, model.encoder, cfg.scene_weighting, dev)
        skip = [f"encoder.{n}" for n in model.encoder.no_weight_decay()]
        optimizer = torch.optim.AdamW(weight_decay_groups(model, cfg.weight_decay, skip),
                                      lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
        # Built before the restore, so that its peak rate is the recipe's, not a restored one.
        scheduler = warmup_cosine(optimizer, cfg.steps, cfg.warmup_steps, cfg.min_lr)
        prober = _Prober(probe, data_root, run_dir) if probe is not None and is_main else None
        start, wall_before = 0, 0.0
        if manifest is not None:
            _restore(manifest, tensors, model, optimizer, scheduler)
            start = int(manifest["step"])
            wall_before = float(manifest.get("wall_time_s", 0.0))
            if is_main:
                _truncate_log(run_dir, start)
                if prober is not None:
                    prober.truncate(start)
                note(f"[hsizoo pretrain] resuming {run_dir} at step {start}/{cfg.steps}")
        if d.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            net: nn.Module = DDP(model, device_ids=[dev.index] if dev.type == "cuda" else None)
        else:
            net = model
        if is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            if manifest is None and (run_dir / LOG_NAME).exists():
                # Steps logged by an attempt that died before its first checkpoint are redone
                # from step 1; keeping them would log those steps twice.
                _truncate_log(run_dir, 0)
        hardware = hardware_line(dev, d.world_size)
        if precision != "fp32":
            hardware += f", {precision} autocast"
        scaler = grad_scaler(dev, precision)
        end = cfg.steps if until_step is None else min(cfg.steps, int(until_step))
        bar = None
        if progress and is_main:
            from hsizoo.runtime.progress import progress_bar

            bar = progress_bar(total=cfg.steps, initial=start, desc="pretrain", unit="step",
                       dynamic_ncols=True)
        t0 = time.perf_counter()
        last_ckpt_t = t0
        step, rec_last = start, {}
        interrupted = False
        log_fh = open(run_dir / LOG_NAME, "a") if is_main else None

        def checkpoint(at: int) -> None:
            if is_main:
                save_checkpoint(run_dir, at, model, optimizer, scheduler, cfg, dict(
                    wall_time_s=wall_before + time.perf_counter() - t0, hardware=hardware,
                    precision=precision, world_size=d.world_size, final_loss=rec_last.get("loss"),
                    **shard_state))

        every = int(probe_every or checkpoint_every)
        if prober is not None and start == 0:
            prober(0, model.encoder)
        with _StopFlag() as stop:
            while step < end:
                ts = time.perf_counter()
                set_step_lr(scheduler, step)
                lr = optimizer.param_groups[0]["lr"]
                net.train()
                batches = data.sample(step, cfg.seed, cfg.batch_size, cfg.mask_ratio,
                                      cfg.spectral_mask_ratio, d.rank, d.world_size,
                                      cfg.view_offset if cfg.contrast_weight > 0 else None)
                with autocast(dev, precision):
                    out = net(batches)
                # One reduction carries the loss terms, the stop flag and the time budget, so
                # every rank takes the same decision at the same step.
                keys = ["loss", "rec_spatial", "rec_spectral", "fdc", "fdc_spectral", "fdc_spatial"]
                keys += ["contrast"] if "contrast" in out else []
                over_time = max_time is not None and time.perf_counter() - t0 >= max_time
                stats = torch.stack([out[k].detach().float() for k in keys] + [
                    torch.tensor(float(stop.flag or over_time), device=dev)])
                if d.world_size > 1:
                    dist.all_reduce(stats)
                    stats[:-1] /= d.world_size
                vals = stats.tolist()
                if not math.isfinite(vals[0]):
                    kept = (f"the last good checkpoint in {run_dir} is intact"
                            if (run_dir / MANIFEST).is_file() else "no checkpoint was written")
                    raise NonFiniteLossError(
                        f"The pretraining loss became {vals[0]} at step {step + 1} (terms: "
                        + ", ".join(f"{k}={v:.4g}" for k, v in zip(keys[1:], vals[1:-1]))
                        + f"). Nothing was updated or checkpointed for this step; {kept}. Lower "
                        f"the learning rate (lr={cfg.lr}) or check the scenes for extreme "
                        "values, then resume or restart.")
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(out["loss"]).backward()
                scaler.unscale_(optimizer)
                gnorm = (torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                         if cfg.grad_clip > 0 else torch.tensor(0.0))
                # fp16's loss scaler skips a step with overflowing gradients and lowers its
                # scale; elsewhere a non-finite gradient is an error.
                if not math.isfinite(float(gnorm)) and not scaler.is_enabled():
                    # A finite loss can still have non-finite gradients; stepping would write
                    # NaN weights into the next checkpoint. Gradients are all-reduced, so every
                    # rank takes this decision at the same step.
                    raise NonFiniteLossError(
                        f"The gradient norm became {float(gnorm)} at step {step + 1} (loss "
                        f"{vals[0]:.4g}). Nothing was updated or checkpointed for this step; "
                        f"the last checkpoint in {run_dir}, if any, is intact. Lower the "
                        f"learning rate (lr={cfg.lr}) or check the scenes, then resume.")
                scaler.step(optimizer)
                scaler.update()
                step += 1
                dt = time.perf_counter() - ts
                sps = cfg.batch_size * d.world_size / max(dt, 1e-9)
                rec_last = dict(step=step, **{k: v for k, v in zip(keys, vals[:-1])}, lr=lr,
                                grad_norm=float(gnorm), samples_per_s=sps,
                                wall_time_s=wall_before + time.perf_counter() - t0,
                                samples=step * cfg.batch_size * d.world_size, model=cfg.model)
                if log_fh is not None and (step % log_every == 0 or step == end):
                    log_fh.write(json.dumps(rec_last) + "\n")
                    log_fh.flush()
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{vals[0]:.4f}", sps=f"{sps:.0f}")
                if callback is not None:
                    callback(step, rec_last)
                if prober is not None and (step % every == 0 or step == end):
                    prober(step, model.encoder)
                if vals[-1] > 0 and step < end:
                    interrupted = True
                    break
                if step % checkpoint_every == 0 and step < end:
                    checkpoint(step)
                    last_ckpt_t = time.perf_counter()
            checkpoint(step)
        del last_ckpt_t
        if log_fh is not None:
            log_fh.close()
        if bar is not None:
            bar.close()
        wall = wall_before + time.perf_counter() - t0
        if is_main:
            why = (f" (stopped by {stop.signal})" if stop.signal else " (time budget)"
                   if interrupted else "")
            if step < cfg.steps:
                print(f"[hsizoo pretrain] stopped at step {step}/{cfg.steps}{why}; checkpoint in "
                      f"{run_dir}; continue with: {resume_command(run_dir)}  (in Python: "
                      f"pretrain(run_dir={str(run_dir)!r}, resume=True))",
                      file=sys.stderr, flush=True)
        if isinstance(data, ShardData):
            write_shard_reads(run_dir, data, d.world_size > 1)
        if d.world_size > 1:
            dist.barrier()
        return PretrainResult(encoder=model.encoder.cpu(), run_dir=run_dir, step=step,
                              final_loss=float(rec_last.get("loss", float("nan"))),
                              wall_time_s=wall, interrupted=step < cfg.steps,
                              config=cfg)
    finally:
        if d.initialised_here and dist.is_initialized():
            dist.destroy_process_group()
