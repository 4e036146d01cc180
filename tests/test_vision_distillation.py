"""shared.train.distillation: the loss matches the formula (T^2 scaling included), schedules pick
the steps that run the teacher, and teacher forward passes are counted."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from shared.data.images import ImageSet
from shared.models.output import ModelOutput
from shared.train import TrainConfig
from shared.train.classification import fit_classifier
from shared.train.distillation import DistillationLoss, KDSchedule, kd_loss


def test_kd_loss_matches_the_formula():
    torch.manual_seed(0)
    s, t, y = torch.randn(5, 4), torch.randn(5, 4), torch.tensor([0, 1, 2, 3, 0])
    T, a = 3.0, 0.7
    loss, parts = kd_loss(s, t, y, temperature=T, alpha=a)
    pt, ps = F.softmax(t / T, -1), F.softmax(s / T, -1)
    kl = (pt * (pt.log() - ps.log())).sum(-1).mean()
    want = (1 - a) * F.cross_entropy(s, y) + a * T * T * kl
    assert loss.item() == pytest.approx(want.item(), rel=1e-5)
    assert parts["kd"].item() == pytest.approx(kl.item(), rel=1e-5)
    # the KL term vanishes when student = teacher, leaving (1 - alpha) * CE
    same, _ = kd_loss(t, t, y, temperature=T, alpha=a)
    assert same.item() == pytest.approx(((1 - a) * F.cross_entropy(t, y)).item(), rel=1e-5)


def test_t_squared_keeps_the_soft_gradient_scale():
    # For large T, the soft term's gradient w.r.t. the logits is ~ (s - t) / (C T^2); times T^2 it is T-free.
    torch.manual_seed(0)
    t = torch.randn(1, 10)
    grads = []
    for T in (20.0, 40.0):
        s = torch.randn(1, 10, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
        kd_loss(s, t, torch.tensor([0]), temperature=T, alpha=1.0)[0].backward()
        grads.append(s.grad.norm().item())
    assert grads[0] == pytest.approx(grads[1], rel=0.02)


def test_ensemble_teachers_average_probabilities():
    s, y = torch.zeros(2, 3), torch.tensor([0, 1])
    t1, t2 = torch.tensor([[5.0, 0, 0], [0, 5.0, 0]]), torch.tensor([[0, 0, 5.0], [0, 0, 5.0]])
    loss, parts = kd_loss(s, [t1, t2], y, temperature=1.0, alpha=1.0)
    p = (F.softmax(t1, -1) + F.softmax(t2, -1)) / 2
    want = (p * (p.log() - math.log(1 / 3))).sum(-1).mean()
    assert parts["kd"].item() == pytest.approx(want.item(), rel=1e-5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="temperature"):
        kd_loss(torch.zeros(1, 2), torch.zeros(1, 2), torch.tensor([0]), temperature=0.0)
    with pytest.raises(ValueError, match="alpha"):
        kd_loss(torch.zeros(1, 2), torch.zeros(1, 2), torch.tensor([0]), alpha=1.5)
    with pytest.raises(ValueError, match="stop_fraction"):
        KDSchedule(stop_fraction=2.0)


def test_schedules_pick_the_teacher_steps():
    assert KDSchedule().teacher_fraction(100) == 1.0
    early = KDSchedule(stop_fraction=0.2)
    assert [s for s in range(10) if early.uses_teacher(s, 10)] == [0, 1]
    assert early.teacher_fraction(100) == pytest.approx(0.2)
    sparse = KDSchedule(every=10)
    assert sparse.teacher_fraction(100) == pytest.approx(0.1)
    assert [s for s in range(25) if sparse.uses_teacher(s, 25)] == [0, 10, 20]


class CountingTeacher(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 2)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return ModelOutput(self.lin(x.flatten(1)), None)


class Student(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))

    def forward(self, x):
        return ModelOutput(self.net(x), None)


def test_teacher_runs_only_on_scheduled_steps_and_is_counted():
    torch.manual_seed(0)
    x = torch.randn(32, 1, 2, 2)
    data = ImageSet(x, (x.flatten(1).sum(1) > 0).long(), ("a", "b"))
    teacher = CountingTeacher()
    before = [p.clone() for p in teacher.parameters()]
    loss = DistillationLoss([teacher], max_steps=20, schedule=KDSchedule(stop_fraction=0.5, every=2))
    student = Student()
    trainer = fit_classifier(student, data, TrainConfig(max_steps=20, lr=1e-2, progress_bar=False, log_every=1), 8,
                             loss_fn=loss)
    assert teacher.calls == 5                        # steps 0, 2, 4, 6, 8
    assert loss.teacher_forward_examples == 5 * 8
    used = [r["teacher_used"] for r in trainer.history.train]
    assert used == [1.0 if (s < 10 and s % 2 == 0) else 0.0 for s in range(20)]
    assert all(torch.equal(a, b) for a, b in zip(before, teacher.parameters()))   # teacher frozen
