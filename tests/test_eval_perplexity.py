import math

import pytest
import torch
import torch.nn.functional as F

from eval_helpers import SuccessorLM, TinyLM, UniformLM
from shared.eval.perplexity import evaluate_perplexity

V = 11


def test_uniform_model_has_perplexity_vocab_size():
    data = torch.randint(0, V, (5, 9))
    out = evaluate_perplexity(UniformLM(V), {"d": data}, batch_size=2)["d"]
    assert out.tokens == 5 * 8
    assert out.mean_loss == pytest.approx(math.log(V), rel=1e-6)
    assert out.perplexity == pytest.approx(V, rel=1e-5)


def test_matches_direct_cross_entropy_and_separates_domains():
    torch.manual_seed(0)
    model = TinyLM(V)
    a = torch.randint(0, V, (6, 12))
    b = torch.arange(6 * 12).reshape(6, 12) % V          # a "successor" domain
    out = evaluate_perplexity(model, {"a": a, "b": b}, batch_size=4)
    for name, data in (("a", a), ("b", b)):
        with torch.no_grad():
            logits = model(data[:, :-1])
            ref = F.cross_entropy(logits.reshape(-1, V), data[:, 1:].reshape(-1)).item()
        assert out[name].mean_loss == pytest.approx(ref, rel=1e-5)
    succ = evaluate_perplexity(SuccessorLM(V), {"a": a, "b": b})
    assert succ["b"].perplexity < 1.01 < succ["a"].perplexity


def test_variable_length_lists_are_masked_not_padded_into_the_loss():
    model = TinyLM(V)
    seqs = [[1, 2, 3], [4, 5, 6, 7, 8, 9], [2, 2]]
    got = evaluate_perplexity(model, {"d": seqs}, batch_size=3)["d"]
    total, count = 0.0, 0
    with torch.no_grad():
        for s in seqs:
            x = torch.tensor([s])
            total += F.cross_entropy(model(x[:, :-1])[0], x[0, 1:], reduction="sum").item()
            count += len(s) - 1
    assert got.tokens == count
    assert got.mean_loss == pytest.approx(total / count, rel=1e-5)


def test_batch_dicts_with_targets_and_loss_mask():
    model = UniformLM(V)
    ids = torch.randint(0, V, (2, 6))
    targets = torch.randint(0, V, (2, 6))
    targets[0, 0] = -100
    mask = torch.ones(2, 6, dtype=torch.bool)
    mask[1, 3:] = False
    out = evaluate_perplexity(model, {"d": [{"input_ids": ids, "targets": targets, "loss_mask": mask}]})["d"]
    assert out.tokens == 12 - 1 - 3


def test_restores_training_mode_and_rejects_bad_input():
    model = TinyLM(V)
    model.train()
    evaluate_perplexity(model, {"d": torch.randint(0, V, (2, 4))})
    assert model.training
    with pytest.raises(ValueError):
        evaluate_perplexity(model, {"d": torch.randint(0, V, (4,))})
    with pytest.raises(ValueError):
        evaluate_perplexity(model, {})
