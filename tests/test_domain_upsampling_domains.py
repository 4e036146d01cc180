"""papers.domain_upsampling.domains: the smoke domains' held-out splits work at every seed, the
math benchmark's templates are never trained on, and the code benchmark reads held-out real code."""
import pytest

from papers.domain_upsampling import domains as D
from papers.domain_upsampling import scales
from shared.data.generated import arithmetic, facts
from shared.data.lm_streams import corpus_documents
from shared.data.tokenizer import train_bpe

SEEDS = range(12)


@pytest.mark.parametrize("seed", SEEDS)
def test_every_generated_problem_has_exactly_one_template(seed):
    for r in arithmetic.generate_arithmetic(150, seed):
        assert 0 <= D.template_of(r["question"]) < len(D.TEMPLATE_MARKERS)


@pytest.mark.parametrize("seed", SEEDS)
def test_math_splits_hold_out_whole_templates_at_every_seed(seed):
    kw = scales.SMOKE_MATH
    train, test = D.math_splits(kw["n_train"], kw["n_test"], seed)
    assert len(train) == kw["n_train"] and len(test) == kw["n_test"]
    assert {D.template_of(r["question"]) for r in test} == set(D.HELD_OUT_TEMPLATES)
    assert not {D.template_of(r["question"]) for r in train} & set(D.HELD_OUT_TEMPLATES)


def test_math_source_is_registered_and_matches_the_splits():
    docs = corpus_documents({"name": D.MATH_SOURCE, "n_train": 30, "n_test": 10, "seed": 3})
    train, _ = D.math_splits(30, 10, 3)
    assert docs == [arithmetic.to_text(r) for r in train]
    assert len(corpus_documents({"name": D.MATH_SOURCE, "n_train": 30, "n_test": 10}, split="test")) == 10


def test_math_splits_reject_bad_held_out_sets():
    with pytest.raises(ValueError, match="proper"):
        D.math_splits(10, 10, held_out=tuple(range(10)))
    with pytest.raises(ValueError, match="proper"):
        D.math_splits(10, 10, held_out=())


@pytest.mark.parametrize("seed", SEEDS)
def test_the_smoke_fact_base_has_four_options_at_every_seed(seed):
    splits = facts.fact_splits(seed=seed, **scales.SMOKE_FACTS)
    assert len(splits.test) > 50 and all(len(set(q["choices"])) == 4 for q in splits.test)


def test_code_windows_come_from_held_out_modules():
    tok = train_bpe(["def f(x):\n    return x + 1\n"] * 20, 300, show_progress=False)
    windows = D.code_heldout_windows(tok, n_windows=60, max_tokens=32)
    assert len(windows) == 60 and all(len(w) == 32 for w in windows)
    assert len({tuple(w) for w in windows}) > 50
