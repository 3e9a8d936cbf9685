"""Fine-tuning's optimiser and schedule (timm's layer-wise decay, torch's LambdaLR) and the DAFT
teacher's EMA give exactly the rates and updates of the hand-written code they replaced, which
measured the published accuracies; the old code is written out here as the reference."""
from __future__ import annotations

import math
from typing import Any

import pytest
import torch
import torch.nn as nn

import hsizoo
from hsizoo.method.daft import Teacher
from hsizoo.finetune.training import layer_decay_optimizer, warmup_cosine


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
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(p)]: (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}


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
        assert {k: v for k, v in g.items() if k not in ("params", "lr", "weight_decay")} \
            == {k: v for k, v in ref.items() if k not in ("params", "lr", "weight_decay")}


@pytest.mark.parametrize("steps,layer_decay", [(1, 0.75), (9, 0.75), (25, 0.5), (30, 0.75),
                                               (200, 0.65), (1001, 0.9)])
def test_schedule_equals_hand_written(steps: int, layer_decay: float) -> None:
    model = hsizoo.create_model("s2former_test", num_classes=3)
    opt = layer_decay_optimizer(model, 1e-3, layer_decay, 0.05)
    base = [g["lr"] for g in opt.param_groups]
    schedule = warmup_cosine(opt, steps)
    for step in range(steps):
        # Every group's rate at every step, bit for bit.
        assert [g["lr"] for g in opt.param_groups] == [b * _old_factor(step, steps) for b in base]
        opt.step()
        schedule.step()
    warm = max(1, steps // 10)
    assert _old_factor(warm - 1, steps) == 1.0  # the peak is reached at the end of the warm-up


def test_teacher_ema_equals_formula() -> None:
    """The EMA stays hand-written (timm's ModelEmaV3 lerps, which rounds differently): every
    parameter is ``decay * teacher + (1 - decay) * student``, every buffer the student's."""
    torch.manual_seed(0)
    student = hsizoo.create_model("s2former_test", num_classes=3)
    teacher = Teacher(student, "ema", decay=0.9)
    ref = [p.detach().clone() for p in teacher.model.parameters()]
    for _ in range(3):
        with torch.no_grad():
            for p in student.parameters():
                p.add_(torch.randn_like(p))
            for b in student.buffers():
                b.add_(1.0)
        teacher.update(student)
        ref = [0.9 * r + (1 - 0.9) * p.detach() for r, p in zip(ref, student.parameters())]
        for pt, r in zip(teacher.model.parameters(), ref):
            torch.testing.assert_close(pt, r, rtol=1e-6, atol=1e-7)
        for bt, bs in zip(teacher.model.buffers(), student.buffers()):
            assert torch.equal(bt, bs)
