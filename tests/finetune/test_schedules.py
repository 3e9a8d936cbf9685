"""Fine-tuning's optimiser and schedule (timm's layer-wise decay and CosineLRScheduler) and the
DAFT teacher's EMA (timm's ModelEmaV3) give the rates and updates of the hand-written code they
replaced, which measured the published accuracies: the groups exactly, the rates to 1e-12
relative, the EMA to float32 rounding. The old code is written out here as the reference."""
from __future__ import annotations

import math
from typing import Any

import pytest
import torch
import torch.nn as nn

import hsizoo
from hsizoo.method.daft import Teacher
from hsizoo.finetune.training import layer_decay_optimizer
from hsizoo.runtime.optim import set_step_lr, warmup_cosine


def _old_param_groups(model: nn.Module, lr: float, layer_decay: float, weight_decay: float
                      ) -> list[dict[str, Any]]:
    """The hand-written layer-wise decay fine-tuning used before timm's (reference)."""
    depth = len(model.blocks)
    no_wd = model.no_weight_decay()
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name.startswith("blocks."):
            layer = int(name.split(".")[1]) + 1
        elif name.startswith(("head", "norm_sp", "norm_se")):
            layer = depth + 1
        else:
            layer = 0
        decay = not (p.ndim == 1 or name in no_wd or name.endswith(".bias"))
        g = groups.setdefault((layer, decay), {
            "params": [], "lr": lr * layer_decay ** (depth + 1 - layer),
            "weight_decay": weight_decay if decay else 0.0})
        g["params"].append(p)
    return list(groups.values())


def _old_factor(step: int, steps: int) -> float:
    """The hand-written warm-up then cosine factor of fine-tuning (reference)."""
    warm = max(1, steps // 10)
    return (step + 1) / warm if step < warm else 0.5 * (1 + math.cos(
        math.pi * (step - warm) / max(1, steps - warm)))


def _by_name(model: nn.Module, groups: list[dict[str, Any]]) -> dict[str, tuple[float, float]]:
    """Each parameter's peak rate (timm keeps the layer's factor as ``lr_scale``) and decay."""
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(p)]: (g["lr"] * g.get("lr_scale", 1.0), g["weight_decay"])
            for g in groups for p in g["params"]}


@pytest.mark.parametrize("name", hsizoo.list_models("s2former*"))
@pytest.mark.parametrize("lr,layer_decay,weight_decay", [(1e-3, 0.75, 0.05), (3e-4, 0.5, 0.1),
                                                         (1e-3, 1.0, 0.0)])
def test_layer_decay_groups_equal_hand_written(name: str, lr: float, layer_decay: float,
                                               weight_decay: float) -> None:
    model = hsizoo.create_model(name, num_classes=4)
    model.pos_embed.requires_grad_(False)  # frozen parameters are left out by both
    opt = layer_decay_optimizer(model, lr, layer_decay, weight_decay)
    old = _old_param_groups(model, lr, layer_decay, weight_decay)
    new_map, old_map = _by_name(model, opt.param_groups), _by_name(model, old)
    assert "pos_embed" not in new_map and len(new_map) == len(list(model.parameters())) - 1
    assert new_map == old_map  # exact floats, not approximately
    # Same grouping, and AdamW's other settings are torch's defaults, as before.
    assert len(opt.param_groups) == len(old)
    ref = torch.optim.AdamW(old, lr=lr).param_groups[0]
    for g in opt.param_groups:
        own = ("params", "lr", "weight_decay", "lr_scale")
        assert {k: v for k, v in g.items() if k not in own} \
            == {k: v for k, v in ref.items() if k not in own}


@pytest.mark.parametrize("steps,layer_decay", [(1, 0.75), (2, 0.75), (9, 0.75), (25, 0.5),
                                               (30, 0.75), (200, 0.65), (1001, 0.9)])
def test_schedule_equals_hand_written(steps: int, layer_decay: float) -> None:
    model = hsizoo.create_model("s2former_test", num_classes=3)
    opt = layer_decay_optimizer(model, 1e-3, layer_decay, 0.05)
    peak = [g["lr"] * g["lr_scale"] for g in opt.param_groups]
    assert len(set(peak)) > 1 or layer_decay == 1.0  # the layers' rates differ
    schedule = warmup_cosine(opt, steps)
    for step in range(steps):
        set_step_lr(schedule, step)
        # Every group's rate at every step, to 1e-12 of the old closed form (timm multiplies in
        # another order, a few ulps apart).
        old = [b * _old_factor(step, steps) for b in peak]
        new = [g["lr"] for g in opt.param_groups]
        assert all(o > 0 for o in old)
        assert all(math.isclose(n, o, rel_tol=1e-12, abs_tol=0.0) for n, o in zip(new, old)), \
            (step, new, old)
        opt.step()
    warm = max(1, steps // 10)
    assert _old_factor(warm - 1, steps) == 1.0  # the peak is reached at the end of the warm-up


def _old_ema(ref: list[torch.Tensor], student: nn.Module, decay: float) -> list[torch.Tensor]:
    """The hand-written EMA step of DAFT's teacher before timm's (reference)."""
    return [r.mul(decay).add(p.detach(), alpha=1.0 - decay)
            for r, p in zip(ref, student.parameters())]


@pytest.mark.parametrize("decay", [0.9, 0.99])
def test_teacher_ema_equals_hand_written(decay: float) -> None:
    """timm's ModelEmaV3 (a lerp) follows the old update ``decay * teacher + (1 - decay) *
    student`` to float32 rounding over 50 steps; every buffer is the student's, not averaged."""
    torch.manual_seed(0)
    student = hsizoo.create_model("s2former_test", num_classes=3)
    teacher = Teacher(student, "ema", decay=decay)
    assert not teacher.model.training
    assert not any(p.requires_grad for p in teacher.model.parameters())
    assert len(list(student.buffers())) > 0  # the buffer rule is exercised
    ref = [p.detach().clone() for p in teacher.model.parameters()]
    start = [r.clone() for r in ref]
    worst = 0.0
    for _ in range(50):
        with torch.no_grad():
            for p in student.parameters():
                p.add_(0.1 * torch.randn_like(p))
            for b in student.buffers():
                b.add_(1.0)
        teacher.update(student)
        ref = _old_ema(ref, student, decay)
        for pt, r in zip(teacher.model.parameters(), ref):
            worst = max(worst, float((pt - r).abs().max()))
        for bt, bs in zip(teacher.model.buffers(), student.buffers()):
            assert torch.equal(bt, bs)
    # The teacher moved well away from its start; the two updates round apart by float32 ulps.
    moved = max(float((pt - p0).abs().max()) for pt, p0 in zip(teacher.model.parameters(), start))
    assert moved > 0.1 and worst < 5e-6, (moved, worst)
