"""The optimiser pieces pretraining and fine-tuning share, taken from timm: weight-decay
parameter groups and the warm-up then cosine learning-rate schedule.

Both are timm's own (``timm.optim.param_groups_weight_decay``,
``timm.scheduler.CosineLRScheduler``); this module only fixes how hsizoo sets them up, so that
the rates and groups are those the published results were measured with
(tests/finetune/test_schedules.py and tests/pretrain/test_schedule_resume.py hold the former
hand-written formulas as references).
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Collection

import torch
import torch.nn as nn

if TYPE_CHECKING:
    from timm.scheduler import CosineLRScheduler

__all__ = ["set_step_lr", "warmup_cosine", "weight_decay_groups"]


def weight_decay_groups(model: nn.Module, weight_decay: float,
                        no_weight_decay: Collection[str] = ()) -> list[dict[str, Any]]:
    """AdamW parameter groups: weight decay on matrices only (timm's
    ``param_groups_weight_decay``).

    Biases, norms and 1-D parameters, and the parameters named in ``no_weight_decay``, get no
    weight decay; parameters that do not require gradients are left out. The decayed group comes
    first: that is the order of the optimiser state in pretraining checkpoints, so runs written
    before timm's groups were used still resume.

    Args:
        model: The module whose parameters are grouped.
        weight_decay: Weight decay of the decayed group (0 gives a single group without decay).
        no_weight_decay: Parameter names (as in ``model.named_parameters()``) without decay.

    Returns:
        The groups, each a dict with ``params`` and ``weight_decay``.
    """
    from timm.optim import param_groups_weight_decay

    groups = param_groups_weight_decay(model, weight_decay, no_weight_decay_list=no_weight_decay)
    return sorted(groups, key=lambda g: g["weight_decay"] == 0.0)


def warmup_cosine(optimizer: torch.optim.Optimizer, steps: int, warmup_steps: int | None = None,
                  min_lr: float = 0.0) -> "CosineLRScheduler":
    """timm's ``CosineLRScheduler`` as a linear warm-up, then a cosine decay to ``min_lr``.

    The rate of the optimiser step with 0-based index ``s`` is ``peak * (s + 1) / warm`` during
    the warm-up (``s < warm``) and ``min_lr + (peak - min_lr) * (1 + cos(pi * (s - warm) /
    (steps - warm))) / 2`` after it, for each group's peak (its ``lr``, times timm's
    ``lr_scale`` where a group has one). Set the rates with :func:`set_step_lr` before every
    optimiser step.

    Args:
        optimizer: The optimiser; each group's current ``lr`` is its peak rate.
        steps: Length of the schedule in optimiser steps.
        warmup_steps: Warm-up steps; default a tenth of ``steps`` (at least 1).
        min_lr: Rate at the end of the cosine.

    Returns:
        The scheduler. Its state (``state_dict()``) is a small dict of JSON types.
    """
    from timm.scheduler import CosineLRScheduler

    warm = max(1, steps // 10) if warmup_steps is None else int(warmup_steps)
    t_initial = max(1, steps - warm)
    log = logging.getLogger("timm.scheduler.cosine_lr")
    was = log.disabled
    # timm warns that a one-step cosine "will have no effect"; here it is the single step after
    # the warm-up of a two-step run, at the peak as intended.
    log.disabled = was or t_initial == 1
    try:
        return CosineLRScheduler(optimizer, t_initial=t_initial, lr_min=min_lr, warmup_t=warm,
                                 warmup_lr_init=0.0, warmup_prefix=True, t_in_epochs=False,
                                 cycle_limit=1)
    finally:
        log.disabled = was


def set_step_lr(scheduler: "CosineLRScheduler", step: int) -> None:
    """Set the rates of the optimiser step with 0-based index ``step`` (of :func:`warmup_cosine`).

    timm's warm-up starts at 0 (its ``t = 0``), where hsizoo's starts at ``peak / warm`` and
    reaches the peak on the last warm-up step, which the first cosine step repeats: so timm's
    ``t`` is ``step + 1`` during the warm-up and ``step`` after it.

    Args:
        scheduler: From :func:`warmup_cosine`.
        step: 0-based index of the optimiser step about to be taken.
    """
    scheduler.step_update(step + 1 if step < scheduler.warmup_t else step)
