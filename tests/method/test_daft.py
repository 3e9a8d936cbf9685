"""DAFT: noise schedule, losses, teacher, and the switches that ablate each term."""
from __future__ import annotations

import numpy as np
import pytest
import timm
import torch

import hsizoo  # noqa: F401
from hsizoo.method.daft import (DaftConfig, Teacher, agreement_loss, alignment_loss, cosine_alpha_bar,
                         daft_losses, q_sample)

WL = np.linspace(450.0, 2300.0, 12)


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return timm.create_model("s2former_test", num_classes=3)


def test_schedule_monotone_from_clean_to_noise() -> None:
    a = cosine_alpha_bar(100)
    assert a.shape == (101,) and a[0] == pytest.approx(1.0)
    assert torch.all(a[1:] <= a[:-1]) and a[-1] < 1e-3
    x = torch.ones(4, 2, 3, 3)
    e = torch.randn_like(x)
    t = torch.tensor([0, 10, 50, 100])
    xt = q_sample(x, t, a, e)
    torch.testing.assert_close(xt[0], x[0])  # t = 0 is the clean input
    # Correlation with the clean input falls along the trajectory.
    corr = [float(torch.nn.functional.cosine_similarity(xt[i].flatten(), x[i].flatten(), 0))
            for i in range(4)]
    assert corr[0] > corr[1] > corr[2] > corr[3]


def test_alignment_and_agreement_zero_for_identical() -> None:
    f = torch.randn(8, 16)
    assert float(alignment_loss(f, f.clone())) == pytest.approx(0.0, abs=1e-6)
    assert float(alignment_loss(f, -f)) == pytest.approx(2.0, abs=1e-5)
    logits = torch.randn(8, 5)
    assert float(agreement_loss(logits, logits.clone())) == pytest.approx(0.0, abs=1e-6)
    assert float(agreement_loss(logits, torch.randn(8, 5))) > 0
    # Nothing passes an impossible confidence threshold: the term vanishes.
    assert float(agreement_loss(logits, torch.randn(8, 5), threshold=1.01)) == 0.0


def test_teacher_frozen_and_ema() -> None:
    student = _model()
    frozen, ema = Teacher(student, "frozen"), Teacher(student, "ema", decay=0.5)
    with torch.no_grad():
        for p in student.parameters():
            p.add_(1.0)
    frozen.update(student)
    ema.update(student)
    s0 = next(student.parameters())
    f0, e0 = next(frozen.model.parameters()), next(ema.model.parameters())
    torch.testing.assert_close(f0, s0 - 1.0)
    torch.testing.assert_close(e0, s0 - 0.5)
    assert not any(p.requires_grad for p in ema.model.parameters())
    with pytest.raises(ValueError, match="frozen"):
        Teacher(student, "average")


def _batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return (torch.randn(6, 12, 5, 5, generator=g), torch.tensor([0, 1, 2, 0, 1, 2]),
            torch.randn(8, 12, 5, 5, generator=g))


def test_switches_remove_terms() -> None:
    model = _model()
    x, y, xu = _batch()
    a = cosine_alpha_bar(100)
    full = DaftConfig(timesteps=100, conf_threshold=0.0, align_weight=1.0, agree_weight=1.0)
    teacher = Teacher(model, "frozen")
    _, terms = daft_losses(model, teacher, x, y, xu, WL, full, a, x[:2], y[:2])
    assert set(terms) == {"ce", "pseudo", "align", "agree"}
    # The student equals the frozen teacher: alignment on the same noised input is exactly zero.
    assert terms["align"] == pytest.approx(0.0, abs=1e-5)
    on = dict(timesteps=100, align_weight=1.0, agree_weight=1.0)
    for cfg, gone in [(DaftConfig(**{**on, "align_weight": 0}), "align"),
                      (DaftConfig(**{**on, "agree_weight": 0}), "agree"),
                      (DaftConfig(**on, pseudo_weight=0), "pseudo")]:
        _, t = daft_losses(model, teacher, x, y, xu, WL, cfg, a, x[:2], y[:2])
        assert gone not in t and "ce" in t
    _, t = daft_losses(model, teacher, x, y, xu, WL,
                       DaftConfig(**on, use_unlabelled=False), a)
    assert "agree" not in t  # agreement lives on the unlabelled pixels only
    plain_loss, t = daft_losses(model, None, x, y, xu, WL, DaftConfig(enabled=False), a, x, y)
    assert set(t) == {"ce"}
    ref = torch.nn.functional.cross_entropy(model(x, WL), y, label_smoothing=0.1)
    assert float(plain_loss.detach()) == pytest.approx(float(ref.detach()), rel=1e-5)


def test_losses_backpropagate_to_the_student_only() -> None:
    model = _model()
    teacher = Teacher(model, "ema")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    x, y, xu = _batch()
    loss, terms = daft_losses(model, teacher, x, y, xu, WL,
                              DaftConfig(timesteps=100, conf_threshold=0.0, align_weight=1.0,
                                         agree_weight=1.0), cosine_alpha_bar(100))
    loss.backward()
    assert terms["align"] > 0
    assert model.pixel_embed.weight.grad is not None
    assert all(p.grad is None for p in teacher.model.parameters())


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        DaftConfig(teacher="student")
    with pytest.raises(ValueError):
        DaftConfig(t_max=0.1, t_gap=0.2)
    assert DaftConfig().as_dict()["teacher"] == "ema"
    # Measured defaults: alignment and agreement off (no gain, 2.4x time), switchable.
    assert DaftConfig().align_weight == 0.0 and DaftConfig().agree_weight == 0.0
