import math

import pytest
import torch

from eval_helpers import BiasLM, CharTokenizer, TinyLM, UniformLM
from shared.eval.formats import MCQuestion
from shared.eval.multiple_choice import (build_prompt, continuation_logprobs, format_question,
                                         score_questions)

TOK = CharTokenizer()


def test_prompt_format():
    q = MCQuestion("What is 2 + 2?", ("3", "4"), 1)
    assert format_question(q) == "What is 2 + 2?\nA. 3\nB. 4\nAnswer:"
    shot = MCQuestion("1 + 1?", ("2", "5"), 0)
    assert build_prompt(q, [shot]) == "1 + 1?\nA. 2\nB. 5\nAnswer: A\n\nWhat is 2 + 2?\nA. 3\nB. 4\nAnswer:"
    ctx = MCQuestion("Is it?", ("yes", "no", "maybe"), 2, context="Some abstract.")
    assert format_question(ctx).startswith("Context: Some abstract.\nIs it?\nA. yes\nB. no\nC. maybe\n")


def test_batched_logprobs_match_one_at_a_time():
    model = TinyLM(TOK.vocab_size, seed=1)
    pairs = [(TOK.encode("Question one\nAnswer:"), TOK.encode(" B")),
             (TOK.encode("Q2?"), TOK.encode(" a longer continuation")),
             (TOK.encode("x"), TOK.encode("yz"))]
    got = continuation_logprobs(model, pairs, batch_size=2)
    for (ctx, cont), (s, n) in zip(pairs, got):
        ids = torch.tensor([ctx + cont])
        with torch.no_grad():
            logp = torch.log_softmax(model(ids)[0], dim=-1)
        ref = sum(logp[len(ctx) - 1 + j, t].item() for j, t in enumerate(cont))
        assert n == len(cont)
        assert s == pytest.approx(ref, abs=1e-4)


def test_left_truncation_to_max_length():
    model = UniformLM(TOK.vocab_size)
    (s, n), = continuation_logprobs(model, [(TOK.encode("a" * 50), TOK.encode(" Bc"))], max_length=8)
    assert n == 3 and s == pytest.approx(-3 * math.log(TOK.vocab_size), rel=1e-6)
    with pytest.raises(ValueError, match="does not fit"):
        continuation_logprobs(model, [(TOK.encode("a"), TOK.encode("b" * 9))], max_length=8)


def test_letter_scoring_follows_the_model_preference():
    # the model always prefers the letter C, so it answers C everywhere
    model = BiasLM(TOK.vocab_size, {TOK.stoi["C"]: 5.0})
    qs = [MCQuestion(f"q{i}", ("w", "x", "y", "z"), ans, subject=s)
          for i, (ans, s) in enumerate([(2, "a"), (2, "a"), (0, "b"), (3, "b")])]
    r = score_questions(model, TOK, qs, continuation="letter")
    assert r.predictions == [2, 2, 2, 2]
    assert r.accuracy == 0.5 and r.n == 4
    assert r.by_subject == {"a": {"accuracy": 1.0, "accuracy_norm": 1.0, "n": 2},
                            "b": {"accuracy": 0.0, "accuracy_norm": 0.0, "n": 2}}


def test_sum_and_length_normalised_scores_differ():
    # uniform model: summed log-likelihood prefers the shortest text, the per-token mean is a tie
    q = MCQuestion("pick", ("a long answer", "ab", "abcdef"), 1)
    r = score_questions(UniformLM(TOK.vocab_size), TOK, [q], continuation="text")
    logv = math.log(TOK.vocab_size)
    assert r.scores[0] == pytest.approx([-14 * logv, -3 * logv, -7 * logv], rel=1e-5)
    assert r.scores_norm[0] == pytest.approx([-logv] * 3, rel=1e-5)
    assert r.predictions == [1] and r.accuracy == 1.0
    # a model that likes 'e' and 'r' favours the long answer per token
    model = BiasLM(TOK.vocab_size, {TOK.stoi["e"]: 3.0, TOK.stoi["r"]: 3.0, TOK.stoi[" "]: 3.0,
                                    TOK.stoi["n"]: 3.0, TOK.stoi["s"]: 3.0, TOK.stoi["w"]: 3.0})
    q2 = MCQuestion("pick", ("answer", "b"), 0)
    r2 = score_questions(model, TOK, [q2], continuation="text")
    assert r2.predictions_norm == [0] and r2.accuracy_norm == 1.0


def test_unlabelled_questions_are_skipped_and_bad_style_raises():
    model = UniformLM(TOK.vocab_size)
    with pytest.raises(ValueError, match="no labelled"):
        score_questions(model, TOK, [MCQuestion("q", ("a", "b"), None)])
    with pytest.raises(ValueError, match="continuation style"):
        score_questions(model, TOK, [MCQuestion("q", ("a", "b"), 0)], continuation="logits")
