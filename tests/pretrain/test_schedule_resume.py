"""Pretraining's schedule and parameter groups are timm's (CosineLRScheduler,
param_groups_weight_decay) and give the rates and groups of the hand-written code they replaced,
written out here as the reference; the scheduler's state is in the JSON manifest, and checkpoints
written before it was (no ``scheduler`` entry) still resume, bit for bit."""
from __future__ import annotations

import importlib
import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn as nn

from hsizoo.runtime.optim import set_step_lr, warmup_cosine, weight_decay_groups

pt = importlib.import_module("hsizoo.pretrain")

SPEC = "simulated:enmap:24x24:1"
RECIPE = dict(model="s2former_test", batch_size=8, lr=3e-3, seed=3, steps=8)


def _old_lr_at(step: int, cfg: Any) -> float:
    """The hand-written warm-up then cosine rate of pretraining before timm's (reference)."""
    warm = int(cfg.warmup_steps or 0)
    if step < warm:
        return cfg.lr * (step + 1) / warm
    t = (step - warm) / max(1, cfg.steps - warm)
    t = min(max(t, 0.0), 1.0)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1.0 + math.cos(math.pi * t))


def _old_param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """The hand-written no-decay groups of pretraining before timm's (reference)."""
    skip = {f"encoder.{n}" for n in model.encoder.no_weight_decay()}
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 or name in skip else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


@pytest.mark.parametrize("steps,warmup,lr,min_lr", [
    (1, None, 1e-3, 1e-5), (2, 2, 1e-3, 0.0), (3, 0, 3e-3, 1e-6), (40, None, 3e-3, 1e-5),
    (100, 10, 1.5e-4, 1e-6), (1854, None, 1.5e-4, 1e-5), (50, 60, 1e-3, 1e-5)])
def test_schedule_equals_hand_written(steps: int, warmup: int | None, lr: float,
                                      min_lr: float) -> None:
    cfg = pt.PretrainConfig(steps=steps, warmup_steps=warmup, lr=lr, min_lr=min_lr)
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(2))], lr=cfg.lr)
    schedule = warmup_cosine(opt, cfg.steps, cfg.warmup_steps, cfg.min_lr)
    rates = []
    for step in range(cfg.steps):
        set_step_lr(schedule, step)
        rates.append(opt.param_groups[0]["lr"])
    old = [_old_lr_at(s, cfg) for s in range(cfg.steps)]
    assert all(math.isclose(n, o, rel_tol=1e-12, abs_tol=0.0) for n, o in zip(rates, old)), \
        max(abs(n - o) / o for n, o in zip(rates, old))
    if 0 < cfg.warmup_steps < cfg.steps - 1:
        assert max(rates) == pytest.approx(lr, rel=1e-15) and rates[0] < lr
        assert rates[-1] < lr and rates[-1] >= min_lr


@pytest.mark.parametrize("weight_decay", [0.05, 0.3])
def test_weight_decay_groups_equal_hand_written(weight_decay: float) -> None:
    torch.manual_seed(0)
    model = pt.build_objective(pt.PretrainConfig(model="s2former_test"))
    skip = [f"encoder.{n}" for n in model.encoder.no_weight_decay()]
    names = {n for n, _ in model.named_parameters()}
    assert skip and set(skip) & names  # the skip list names parameters (pos_embed, ...)
    new = weight_decay_groups(model, weight_decay, skip)
    old = _old_param_groups(model, weight_decay)
    # Same groups in the same order, same parameters in the same order: the optimiser state of
    # checkpoints written with the old groups maps onto the same parameters.
    assert [g["weight_decay"] for g in new] == [g["weight_decay"] for g in old]
    assert [[id(p) for p in g["params"]] for g in new] == \
        [[id(p) for p in g["params"]] for g in old]
    assert all(len(g["params"]) > 0 for g in new)


def _tensors(run: Path) -> dict[str, torch.Tensor]:
    _, tensors = pt.load_checkpoint(run)
    return {k: v for k, v in tensors.items() if not k.startswith("rng.")}


def _assert_bit_equal(a: Path, b: Path) -> None:
    ta, tb = _tensors(a), _tensors(b)
    assert ta.keys() == tb.keys()
    for k in ta:
        assert torch.equal(ta[k], tb[k]), k
    la, lb = pt.read_log(a), pt.read_log(b)
    keys = ("step", "loss", "lr", "grad_norm")
    assert [[r[k] for k in keys] for r in la] == [[r[k] for k in keys] for r in lb]


def test_checkpoint_holds_the_scheduler_and_old_checkpoints_resume(tmp_path: Path) -> None:
    ref = tmp_path / "ref"
    pt.pretrain([SPEC], ref, checkpoint_every=100, progress=False, **RECIPE)
    runs = {}
    for name in ("new", "old"):
        run = runs[name] = tmp_path / name
        pt.pretrain([SPEC], run, until_step=4, checkpoint_every=100, progress=False, **RECIPE)
        manifest = json.loads((run / "checkpoint.json").read_text())
        # The scheduler's state is a small JSON dict in the manifest, not in a pickle.
        sched = manifest["scheduler"]
        assert sched["base_values"] == [RECIPE["lr"]] * 2 and sched["t_initial"] == 7
        assert sched["warmup_t"] == 1 and sched["lr_min"] == 1e-5
        if name == "old":  # as written before the scheduler's state was stored
            del manifest["scheduler"]
            for g in manifest["optimizer"]["param_groups"]:
                del g["initial_lr"]
            (run / "checkpoint.json").write_text(json.dumps(manifest, indent=1))
        done = pt.pretrain(None, run, resume=True, progress=False)
        assert done.step == RECIPE["steps"] and not done.interrupted
    # Both resumes are the uninterrupted run, bit for bit (weights, optimiser, logged rates).
    _assert_bit_equal(runs["new"], ref)
    _assert_bit_equal(runs["old"], ref)
    lrs = [r["lr"] for r in pt.read_log(ref)]
    assert lrs[0] == pytest.approx(RECIPE["lr"], rel=1e-15) and lrs[-1] < lrs[4] < lrs[0]


def test_bad_scheduler_state_or_grouping_is_refused(tmp_path: Path) -> None:
    run = tmp_path / "run"
    pt.pretrain([SPEC], run, until_step=2, checkpoint_every=100, progress=False, **RECIPE)
    path = run / "checkpoint.json"
    good = json.loads(path.read_text())
    bad = dict(good, scheduler=[1, 2])
    path.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="scheduler state .* malformed"):
        pt.pretrain(None, run, resume=True, progress=False)
    # A checkpoint whose optimiser was grouped otherwise (a single group, as an older hsizoo
    # built for weight_decay 0) is refused with a message, not mapped onto the wrong parameters.
    groups = good["optimizer"]["param_groups"]
    merged = dict(groups[0], params=[p for g in groups for p in g["params"]])
    bad = dict(good, optimizer=dict(good["optimizer"], param_groups=[merged]))
    path.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="parameter groups of sizes"):
        pt.pretrain(None, run, resume=True, progress=False)
    path.write_text(json.dumps(good))
    assert pt.pretrain(None, run, resume=True, until_step=3, progress=False).step == 3
