"""DAFT: diffusion-aligned fine-tuning (teacher, noise schedule and losses).

Our reading of the few-shot stage of arXiv 2601.18088 (DESIGN.md, "DAFT"); the paper describes it
in words only, so every part has a switch and a weight, and the ablation is measured
(``benchmarks/fewshot.py``, the harness of :mod:`hsizoo.bench`):

* **Teacher.** A copy of the initial (self-supervised) model. ``teacher="frozen"`` keeps it fixed
  (its classifier is the one trained during the head warm-up on frozen features, so its
  predictions mean something); ``teacher="ema"`` makes it an exponential moving average of the
  student (mean teacher), so its predictions improve with the student.
* **Noise schedule.** A cosine alpha-bar over ``T`` steps (Nichol & Dhariwal 2021):
  ``x_t = sqrt(a_t) x + sqrt(1 - a_t) e`` on the standardised patches, with ``e`` standard
  Gaussian. A few timesteps ``t`` are sampled per batch, up to ``t_max * T`` (beyond that the
  patch is mostly noise and carries no class information).
* **(a) Cross-entropy** on the labelled shots, clean and (``ce_noised``) at the sampled ``t``.
* **(b) Feature alignment** along the trajectory: the student's pooled features on ``x_t`` follow
  the teacher's on the same ``x_t`` (the teacher's "semantic evolution trajectory"), as
  ``1 - cosine`` similarity, on labelled and unlabelled pixels of the scene. Zero when student and
  teacher are identical.
* **(c) Prediction agreement**: the student's prediction on ``x_t`` matches the teacher's on the
  cleaner ``x_{t'}``, ``t' = t - gap`` (``x_{t'}`` shares the noise ``e``), as a
  temperature-scaled KL divergence, only where the teacher is confident (``conf_threshold``), on
  unlabelled pixels.
* **Pseudo-labels** (optional, ``pseudo_weight > 0``): class-balanced confident pixels of the
  scene join the cross-entropy. Transductive DAFT (:mod:`hsizoo.finetune`) draws them from label
  propagation over the scene's k-NN graph (:mod:`hsizoo.method.transduction`), refreshed with
  the teacher's embeddings and predictions; without the graph, from the teacher alone.

``DaftConfig(enabled=False)`` is plain fine-tuning: cross-entropy on the clean shots only.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["DaftConfig", "Teacher", "agreement_loss", "alignment_loss", "cosine_alpha_bar",
           "daft_losses", "q_sample"]


@dataclass
class DaftConfig:
    """Switches and weights of DAFT (each term can be turned off for ablations).

    Attributes:
        enabled: False = plain fine-tuning (cross-entropy on the clean shots only).
        teacher: "frozen" (the initial model) or "ema" (moving average of the student).
        ema_decay: EMA decay per optimiser step.
        timesteps: T of the schedule.
        t_max: Largest timestep sampled, as a fraction of T.
        t_gap: t - t' for the cleaner teacher input of the agreement term, as a fraction of T.
        ce_weight: Weight of the cross-entropy on the shots.
        ce_noised: Also apply cross-entropy to noised shots.
        align_weight: Weight of the feature alignment (b); 0 turns it off. Off by default:
            with transductive pseudo-labels it added no accuracy on the simulated tuning scenes
            and took 2.4x the training time (see the ablation rows of README's results).
        agree_weight: Weight of the prediction agreement (c); 0 turns it off (off by default,
            as ``align_weight``).
        temperature: Softmax temperature of the agreement KL.
        conf_threshold: Teacher confidence needed for a pixel to enter the agreement term.
        pseudo_weight: Weight of the cross-entropy on teacher pseudo-labels; 0 turns it off.
        unlabelled_batch: Unlabelled pixels per optimiser step.
        use_unlabelled: Use the scene's unlabelled pixels in (b) and (c); False = shots only.
    """

    enabled: bool = True
    teacher: str = "ema"
    ema_decay: float = 0.99
    timesteps: int = 1000
    t_max: float = 0.4
    t_gap: float = 0.2
    ce_weight: float = 1.0
    ce_noised: bool = True
    align_weight: float = 0.0
    agree_weight: float = 0.0
    temperature: float = 2.0
    conf_threshold: float = 0.6
    pseudo_weight: float = 1.0
    unlabelled_batch: int = 128
    use_unlabelled: bool = True

    def __post_init__(self) -> None:
        if self.teacher not in ("frozen", "ema"):
            raise ValueError(f"teacher must be 'frozen' or 'ema', got {self.teacher!r}.")
        if not 0.0 < self.t_max <= 1.0 or not 0.0 <= self.t_gap <= self.t_max:
            raise ValueError("Need 0 < t_max <= 1 and 0 <= t_gap <= t_max.")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}.")

    def as_dict(self) -> dict[str, Any]:
        """JSON-able fields."""
        return asdict(self)


def cosine_alpha_bar(timesteps: int, s: float = 0.008) -> torch.Tensor:
    """Cosine schedule: alpha-bar_t for t = 0..T, decreasing from 1 to ~0.

    Args:
        timesteps: T.
        s: Small offset that keeps the first steps from being too small (Nichol & Dhariwal).

    Returns:
        (T + 1,) float32 tensor, ``a[0] = 1`` and non-increasing.
    """
    t = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    a = (f / f[0]).clamp(min=1e-5, max=1.0)
    return a.float()


def q_sample(x: torch.Tensor, t: torch.Tensor, alpha_bar: torch.Tensor,
             noise: torch.Tensor | None = None) -> torch.Tensor:
    """Noise a batch along the schedule: ``sqrt(a_t) x + sqrt(1 - a_t) e``.

    Args:
        x: (B, ...) standardised patches.
        t: (B,) integer timesteps.
        alpha_bar: Schedule from :func:`cosine_alpha_bar`.
        noise: The Gaussian noise ``e`` (drawn if None).

    Returns:
        The noised batch.
    """
    noise = torch.randn_like(x) if noise is None else noise
    a = alpha_bar.to(x.device)[t].view(-1, *([1] * (x.ndim - 1))).to(x.dtype)
    return a.sqrt() * x + (1 - a).sqrt() * noise


def alignment_loss(student_feats: torch.Tensor, teacher_feats: torch.Tensor) -> torch.Tensor:
    """Feature alignment (b): mean of ``1 - cos(student, teacher)``; 0 for identical features."""
    return (1.0 - F.cosine_similarity(student_feats, teacher_feats.detach(), dim=-1)).mean()


def agreement_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                   temperature: float = 2.0, threshold: float = 0.0) -> torch.Tensor:
    """Prediction agreement (c): temperature-scaled KL(teacher || student), confidence-masked.

    Args:
        student_logits: (B, K) student logits on the noisier input.
        teacher_logits: (B, K) teacher logits on the cleaner input.
        temperature: Softmax temperature (the loss is multiplied by its square, as in
            knowledge distillation, so that gradients keep their scale).
        threshold: Pixels whose teacher confidence (at temperature 1) is below this are ignored.

    Returns:
        Scalar loss (0 when no pixel passes the threshold).
    """
    t_logits = teacher_logits.detach()
    keep = t_logits.softmax(-1).amax(-1) >= threshold
    if not bool(keep.any()):
        return student_logits.sum() * 0.0
    log_p_s = F.log_softmax(student_logits[keep] / temperature, dim=-1)
    p_t = F.softmax(t_logits[keep] / temperature, dim=-1)
    kl = F.kl_div(log_p_s, p_t, reduction="batchmean")
    return kl * temperature ** 2


class Teacher:
    """The DAFT teacher: a frozen copy of the initial model, or an EMA of the student.

    The copy and its update are timm's ``ModelEmaV3`` with ``exclude_buffers=True``: parameters
    move as ``teacher + (1 - decay) * (student - teacher)``, buffers are copied from the student.

    Args:
        model: The model to copy (the student at the start of DAFT).
        mode: "frozen" or "ema".
        decay: EMA decay.
    """

    def __init__(self, model: nn.Module, mode: str = "ema", decay: float = 0.99) -> None:
        from timm.utils import ModelEmaV3

        if mode not in ("frozen", "ema"):
            raise ValueError(f"teacher mode must be 'frozen' or 'ema', got {mode!r}.")
        self.mode = mode
        self.decay = float(decay)
        # Buffers follow the student (not averaged), as the teacher always had them.
        self._ema = ModelEmaV3(model, decay=self.decay, exclude_buffers=True)
        self.model = self._ema.module  # in eval mode
        for p in self.model.parameters():
            p.requires_grad_(False)

    def update(self, student: nn.Module) -> None:
        """EMA step towards the student (no-op for a frozen teacher)."""
        if self.mode == "ema":
            self._ema.update(student)

    @torch.no_grad()
    def features_and_logits(self, x: torch.Tensor, wavelengths: Sequence[float]
                            ) -> tuple[torch.Tensor, torch.Tensor]:
        """Pooled features (B, F) and logits (B, K) of the teacher."""
        return _features_and_logits(self.model, x, wavelengths)


def _features_and_logits(model: nn.Module, x: torch.Tensor, wavelengths: Sequence[float]
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    feats = model.forward_head(model.forward_features(x, wavelengths), pre_logits=True)
    return feats, model.head(feats)


def daft_losses(student: nn.Module, teacher: Teacher | None, x_lab: torch.Tensor,
                y_lab: torch.Tensor, x_unl: torch.Tensor | None, wavelengths: Sequence[float],
                cfg: DaftConfig, alpha_bar: torch.Tensor, x_pseudo: torch.Tensor | None = None,
                y_pseudo: torch.Tensor | None = None, label_smoothing: float = 0.1
                ) -> tuple[torch.Tensor, dict[str, float]]:
    """One step's DAFT objective.

    Args:
        student: The model being fine-tuned (training mode).
        teacher: The teacher; may be None when ``cfg.enabled`` is False.
        x_lab: (B, bands, P, P) augmented labelled patches.
        y_lab: (B,) class indices 0..K-1.
        x_unl: (U, bands, P, P) unlabelled patches of the scene, or None.
        wavelengths: Band centres in nm.
        cfg: Switches and weights.
        alpha_bar: Noise schedule.
        x_pseudo: Optional pseudo-labelled patches.
        y_pseudo: Their pseudo-labels (class indices).
        label_smoothing: Label smoothing of the cross-entropy.

    Returns:
        The total loss and a dict of the individual terms (floats) for logging.
    """
    terms: dict[str, torch.Tensor] = {}
    if not cfg.enabled:
        logits = student(x_lab, wavelengths)
        terms["ce"] = F.cross_entropy(logits, y_lab, label_smoothing=label_smoothing)
        total = cfg.ce_weight * terms["ce"]
        return total, {k: float(v.detach()) for k, v in terms.items()}

    T = cfg.timesteps
    gen_t = lambda n: torch.randint(  # noqa: E731
        max(1, int(round(cfg.t_gap * T))), max(2, int(round(cfg.t_max * T))) + 1, (n,))
    B = x_lab.shape[0]
    parts = [x_lab]
    t_lab = gen_t(B)
    noise_lab = torch.randn_like(x_lab)
    if cfg.ce_noised:
        parts.append(q_sample(x_lab, t_lab, alpha_bar, noise_lab))
    has_pseudo = x_pseudo is not None and cfg.pseudo_weight > 0 and x_pseudo.shape[0] > 0
    if has_pseudo:
        parts.append(x_pseudo)
    use_unl = cfg.use_unlabelled and x_unl is not None and x_unl.shape[0] > 0
    need_teacher = teacher is not None and (cfg.align_weight > 0 or cfg.agree_weight > 0)
    if use_unl and need_teacher:
        t_unl = gen_t(x_unl.shape[0])
        noise_unl = torch.randn_like(x_unl)
        xt_unl = q_sample(x_unl, t_unl, alpha_bar, noise_unl)
        parts.append(xt_unl)
    # One student pass over everything keeps the CPU busy with large matrix products.
    x_all = torch.cat(parts)
    feats = student.forward_head(student.forward_features(x_all, wavelengths), pre_logits=True)
    logits = student.head(feats)
    chunks_f = list(torch.split(feats, [p.shape[0] for p in parts]))
    chunks_l = list(torch.split(logits, [p.shape[0] for p in parts]))
    i = 0
    ce = F.cross_entropy(chunks_l[i], y_lab, label_smoothing=label_smoothing)
    i += 1
    if cfg.ce_noised:
        ce = 0.5 * (ce + F.cross_entropy(chunks_l[i], y_lab, label_smoothing=label_smoothing))
        i_noised = i
        i += 1
    terms["ce"] = ce
    total = cfg.ce_weight * ce
    if has_pseudo:
        terms["pseudo"] = F.cross_entropy(chunks_l[i], y_pseudo, label_smoothing=label_smoothing)
        total = total + cfg.pseudo_weight * terms["pseudo"]
        i += 1
    if need_teacher:
        # Teacher on the same noised inputs (trajectory alignment) and on cleaner ones (agreement).
        tx = [parts[i_noised]] if cfg.ce_noised else []
        sf = [chunks_f[i_noised]] if cfg.ce_noised else []
        if use_unl:
            tx.append(xt_unl)
            sf.append(chunks_f[i])
        if cfg.align_weight > 0 and tx:
            t_feats, _ = teacher.features_and_logits(torch.cat(tx), wavelengths)
            terms["align"] = alignment_loss(torch.cat(sf), t_feats)
            total = total + cfg.align_weight * terms["align"]
        if cfg.agree_weight > 0 and use_unl:
            t_clean = (t_unl - int(round(cfg.t_gap * T))).clamp(min=0)
            x_clean = q_sample(x_unl, t_clean, alpha_bar, noise_unl)
            _, t_logits = teacher.features_and_logits(x_clean, wavelengths)
            terms["agree"] = agreement_loss(chunks_l[i], t_logits, cfg.temperature,
                                            cfg.conf_threshold)
            total = total + cfg.agree_weight * terms["agree"]
    return total, {k: float(v.detach()) for k, v in terms.items()}
