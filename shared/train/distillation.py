"""Knowledge distillation (Hinton et al. 2015) as a trainer loss, with schedules that cut the
teacher's cost and a count of every teacher forward pass.

    loss = (1 - alpha) * CE(student, y) + alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T))

The T^2 factor keeps the soft term's gradient on the scale of the hard term's as T changes
(Hinton et al. 2015, sec. 2).

`DistillationLoss` is both the `loss_fn` given to `Trainer` and a trainer callback (it reads the
step). On steps where its `KDSchedule` says no, it computes the plain cross-entropy and runs no
teacher. Teachers are previous runs' models; with several, their temperature-softened probabilities
are averaged (an ensemble teacher), and each one's forward pass is counted.
"""
from __future__ import annotations

from collections.abc import Sequence
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
            temperature: float = 4.0, alpha: float = 0.5) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Hinton distillation loss of student logits [B, C] against teacher logits [B, C] (or a list of
    them: an ensemble, averaged in probability) and labels [B]. Returns (loss, {"ce", "kd"})."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    teachers = teacher_logits if isinstance(teacher_logits, (list, tuple)) else [teacher_logits]
    p_teacher = torch.stack([F.softmax(t.detach().float() / temperature, dim=-1) for t in teachers]).mean(0)
    log_p_student = F.log_softmax(student_logits.float() / temperature, dim=-1)
    # KL(p_t || p_s) = sum p_t (log p_t - log p_s); xlogy handles p_t = 0.
    kl = (torch.xlogy(p_teacher, p_teacher) - p_teacher * log_p_student).sum(-1).mean()
    ce = F.cross_entropy(student_logits.float(), labels)
    loss = (1.0 - alpha) * ce + alpha * temperature ** 2 * kl
    return loss, {"ce": ce.detach(), "kd": kl.detach()}


@dataclass
class KDSchedule:
    """Which optimizer steps use the teacher.

    stop_fraction: distill only while step < stop_fraction * max_steps (1.0 = throughout).
    every: distill on one step in `every` (steps 0, every, 2 * every, ...).
    A step uses the teacher when both allow it.
    """

    stop_fraction: float = 1.0
    every: int = 1

    def __post_init__(self) -> None:
        if not 0.0 <= self.stop_fraction <= 1.0:
            raise ValueError(f"stop_fraction must be in [0, 1], got {self.stop_fraction}")
        if self.every < 1:
            raise ValueError(f"every must be >= 1, got {self.every}")

    def uses_teacher(self, step: int, max_steps: int) -> bool:
        return step < self.stop_fraction * max_steps and step % self.every == 0

    def teacher_fraction(self, max_steps: int) -> float:
        """Fraction of the max_steps steps that run the teacher."""
        return sum(self.uses_teacher(s, max_steps) for s in range(max_steps)) / max_steps


class DistillationLoss:
    """Trainer loss_fn (and callback) for classification batches {"x": [B, ...], "y": [B]}.

    teachers: frozen models (put in eval mode, never updated); [] = no distillation (plain CE).
    teacher_forward_examples counts examples passed through each teacher (summed over teachers);
    multiply by a teacher's forward FLOPs per example for its compute. The counts (and
    teacher_seconds) are in the trainer's checkpoints (state_dict), so a resumed run counts on.
    """

    def __init__(self, teachers: Sequence[nn.Module], max_steps: int, temperature: float = 4.0,
                 alpha: float = 0.5, schedule: KDSchedule | None = None):
        self.teachers = list(teachers)
        for t in self.teachers:
            t.eval()
            t.requires_grad_(False)
        self.max_steps, self.temperature, self.alpha = max_steps, temperature, alpha
        self.schedule = schedule or KDSchedule()
        self.step = 0
        self.teacher_forward_examples = 0
        self.teacher_seconds = 0.0

    # trainer callback hooks: the loss is called before the step counter advances
    def on_fit_start(self, trainer) -> None:
        self.step = trainer.step

    def on_step_end(self, trainer, record) -> None:
        self.step = trainer.step

    def state_dict(self) -> dict:
        return {"teacher_forward_examples": self.teacher_forward_examples, "teacher_seconds": self.teacher_seconds}

    def load_state_dict(self, state: dict) -> None:
        self.teacher_forward_examples = int(state["teacher_forward_examples"])
        self.teacher_seconds = float(state["teacher_seconds"])

    def __call__(self, model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict]:
        x, y = batch["x"], batch["y"]
        logits = model(x).logits
        if not self.teachers or not self.schedule.uses_teacher(self.step, self.max_steps):
            loss = F.cross_entropy(logits, y)
            return loss, {"ce": loss.detach(), "teacher_used": 0.0}
        t0 = time.perf_counter()
        with torch.no_grad():
            teacher_logits = [t(x).logits for t in self.teachers]
        self.teacher_seconds += time.perf_counter() - t0
        self.teacher_forward_examples += len(x) * len(self.teachers)
        loss, parts = kd_loss(logits, teacher_logits, y, self.temperature, self.alpha)
        return loss, {**parts, "teacher_used": 1.0}
