"""Scheduled mixtures: realised proportions, determinism, exact resume, rank sharding."""
import numpy as np
import pytest
import torch

from shared.data.mixture import (ConstantSchedule, LinearSchedule, Mixture, PiecewiseSchedule,
                                 domain_upsampling)

SEQ = 4


class FakeStream:
    """Sequence i of stream `base` is filled with base + i, so a batch shows where each row came from."""

    def __init__(self, n, base):
        self.n, self.base = n, base

    def __len__(self):
        return self.n

    def get_batch(self, idx):
        x = (self.base + torch.as_tensor(np.asarray(idx)))[:, None].repeat(1, SEQ)
        return {"input_ids": x, "targets": x + 1, "doc_ids": torch.zeros_like(x),
                "loss_mask": torch.ones_like(x, dtype=torch.bool)}


def streams(sizes=(50, 30, 20)):
    return {name: FakeStream(n, 1000 * (k + 1)) for k, (name, n) in enumerate(zip(("web", "math", "code"), sizes))}


def draw(mix, n):
    return [next(mix) for _ in range(n)]


def same(a, b):
    return len(a) == len(b) and all(x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)
                                    for x, y in zip(a, b))


BASE = {"web": 0.9, "math": 0.05, "code": 0.05}
UP = {"web": 0.4, "math": 0.3, "code": 0.3}


@pytest.mark.parametrize("allocation", ["exact", "random"])
def test_realised_proportions_per_phase(allocation):
    """Exact allocation: realised = expected - credit; smooth weighted round robin kept |credit| <=
    (K-1)/2 in thousands of random schedules (K streams), and a phase's count differs from
    B x sum(weights) by the credit at its start and end, so we allow 2(K-1) (twice the margin).
    Random allocation: counts are binomial; we allow 4.5 standard deviations (two-sided tail ~7e-6 per
    check; the seed is fixed, so the test is deterministic)."""
    B, steps = 16, 200
    mix = Mixture(streams(), domain_upsampling(BASE, UP, 0.2), B, steps, seed=0, allocation=allocation)
    counts = {"base": np.zeros(3), "up": np.zeros(3)}
    for step in range(steps):
        phase = "up" if step >= 160 else "base"
        assert mix.weights() == (UP if phase == "up" else BASE)
        counts[phase] += np.bincount(next(mix)["stream_ids"].numpy(), minlength=3)
    for phase, w, n_steps in (("base", BASE, 160), ("up", UP, 40)):
        p = np.array(list(w.values()))
        expected = B * n_steps * p
        tol = 2 * (3 - 1) if allocation == "exact" else 4.5 * np.sqrt(B * n_steps * p * (1 - p))
        assert np.all(np.abs(counts[phase] - expected) <= tol), (phase, counts[phase], expected)


def test_exact_allocation_tracks_tiny_weights_with_small_batches():
    mix = Mixture(streams(), {"web": 0.97, "math": 0.02, "code": 0.01}, global_batch_size=4, total_steps=100)
    ids = torch.cat([b["stream_ids"] for b in draw(mix, 100)]).numpy()
    assert list(np.bincount(ids, minlength=3)) == [388, 8, 4]


def test_deterministic_by_seed_and_epoch_permutations():
    a = draw(Mixture(streams(), BASE, 8, 50, seed=1), 20)
    assert same(a, draw(Mixture(streams(), BASE, 8, 50, seed=1), 20))
    assert not same(a, draw(Mixture(streams(), BASE, 8, 50, seed=2), 20))
    # within an epoch of a stream nothing repeats; the next epoch is a new permutation
    mix = Mixture({"only": FakeStream(24, 0)}, {"only": 1.0}, 8, 10, seed=0)
    seen = torch.cat([b["input_ids"][:, 0] for b in draw(mix, 6)]).tolist()
    assert sorted(seen[:24]) == list(range(24)) and sorted(seen[24:]) == list(range(24))
    assert seen[:24] != seen[24:]


@pytest.mark.parametrize("allocation", ["exact", "random"])
def test_exact_resume(allocation):
    kw = dict(schedule=domain_upsampling(BASE, UP, 0.3), global_batch_size=8, total_steps=40, seed=3,
              allocation=allocation)
    full = draw(Mixture(streams(), **kw), 40)
    first = Mixture(streams(), **kw)
    draw(first, 17)
    state = first.state_dict()
    resumed = Mixture(streams(), **kw)
    resumed.load_state_dict(state)
    assert resumed.step == 17
    assert same(draw(resumed, 23), full[17:])


def test_resume_mid_step_with_micro_batches():
    kw = dict(schedule=BASE, global_batch_size=12, total_steps=20, seed=0, micro_batch_size=4)
    full = draw(Mixture(streams(), **kw), 30)
    m = Mixture(streams(), **kw)
    draw(m, 7)                              # 2 steps + 1 micro batch
    resumed = Mixture(streams(), **kw)
    resumed.load_state_dict(m.state_dict())
    assert (resumed.step, resumed.micro) == (2, 1)
    assert same(draw(resumed, 23), full[7:])
    other = Mixture(streams(), **{**kw, "micro_batch_size": 6})
    with pytest.raises(ValueError, match="middle of a step"):
        other.load_state_dict(m.state_dict())
    with pytest.raises(ValueError, match="seed"):
        Mixture(streams(), **{**kw, "seed": 1}).load_state_dict(m.state_dict())


def test_rank_shards_concatenate_to_the_global_batch():
    kw = dict(schedule=domain_upsampling(BASE, UP, 0.5), global_batch_size=12, total_steps=10, seed=4)
    single = draw(Mixture(streams(), **kw), 10)
    for world in (2, 3, 4):
        ranks = [draw(Mixture(streams(), rank=r, world_size=world, **kw), 10) for r in range(world)]
        for step in range(10):
            for key in single[step]:
                glued = torch.cat([ranks[r][step][key] for r in range(world)])
                assert torch.equal(glued, single[step][key]), (world, step, key)
    # micro batches of a rank concatenate to that rank's slice
    micro = draw(Mixture(streams(), rank=1, world_size=2, micro_batch_size=2, **kw), 9)
    rank1 = draw(Mixture(streams(), rank=1, world_size=2, **kw), 3)
    for step in range(3):
        assert torch.equal(torch.cat([b["input_ids"] for b in micro[3 * step:3 * step + 3]]),
                           rank1[step]["input_ids"])
    # a state saved under one world size resumes under another at a step boundary
    two = Mixture(streams(), rank=0, world_size=2, **kw)
    draw(two, 4)
    one = Mixture(streams(), **kw)
    one.load_state_dict(two.state_dict())
    assert same(draw(one, 6), single[4:])


def test_schedules():
    lin = LinearSchedule([(0.0, {"a": 1.0, "b": 0.0}), (0.5, {"a": 0.0, "b": 1.0})])
    assert lin.weights(0.25) == pytest.approx({"a": 0.5, "b": 0.5})
    assert lin.weights(0.9) == {"a": 0.0, "b": 1.0}
    pw = PiecewiseSchedule([(0.0, {"a": 3, "b": 1}), (0.8, {"a": 1, "b": 1})])
    assert pw.weights(0.79) == {"a": 0.75, "b": 0.25} and pw.weights(0.8) == {"a": 0.5, "b": 0.5}
    assert domain_upsampling(BASE, UP, 0.0).weights(0.99) == BASE
    assert domain_upsampling(BASE, UP, 1.0).weights(0.0) == UP
    assert ConstantSchedule({"a": 2, "b": 2}).weights(0.3) == {"a": 0.5, "b": 0.5}
    with pytest.raises(ValueError):
        PiecewiseSchedule([(0.1, {"a": 1})])
    with pytest.raises(ValueError):
        ConstantSchedule({"a": -1, "b": 2}).weights(0)
    with pytest.raises(ValueError):
        domain_upsampling(BASE, UP, 1.5)
    # linear schedules drive the mixture too; a stream with zero weight is never drawn
    mix = Mixture(streams(), LinearSchedule([(0.0, {"web": 1.0}), (1.0, {"web": 0.0, "math": 1.0})]), 8, 20)
    ids = [b["stream_ids"] for b in draw(mix, 20)]
    assert set(ids[0].tolist()) == {0} and set(ids[-1].tolist()) == {1}
    assert 2 not in torch.cat(ids).tolist()


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown streams"):
        Mixture(streams(), {"web": 1, "books": 1}, 8, 10)
    with pytest.raises(ValueError, match="divisible"):
        Mixture(streams(), BASE, 10, 10, world_size=4)
    with pytest.raises(ValueError, match="allocation"):
        Mixture(streams(), BASE, 8, 10, allocation="greedy")
    with pytest.raises(ValueError, match="no sequences"):
        Mixture({"web": FakeStream(0, 0)}, {"web": 1}, 8, 10)


def test_with_packed_datasets(tmp_path):
    from shared.data.packing import PackedDataset, pack_documents
    from shared.data.tokenizer import train_bpe
    a_docs, b_docs = [f"alpha {i} " * 5 for i in range(40)], [f"beta {i} " * 5 for i in range(40)]
    tok = train_bpe(a_docs + b_docs, 300, show_progress=False)
    ds = {n: PackedDataset(pack_documents(d, tok, 16, tmp_path / n)) for n, d in (("a", a_docs), ("b", b_docs))}
    batch = next(Mixture(ds, {"a": 0.5, "b": 0.5}, 6, 10))
    assert batch["input_ids"].shape == (6, 16) and batch["loss_mask"].dtype == torch.bool
    assert batch["input_ids"].dtype == batch["targets"].dtype == batch["doc_ids"].dtype == torch.int64
