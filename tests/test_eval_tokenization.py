"""Tokenizer statistics: tokens per word, whole-word rates, segmentation, domain-term selection."""
import pytest

from shared.data.tokenizer import train_bpe
from shared.eval import tokenization as T

MED = ["The inflammation of the kidney causes pain.", "The kidney filters blood; inflammation follows infection.",
       "Nephritis is inflammation of the kidney."] * 30
GEN = ["The cat sat on the mat and looked at the sun.", "A dog ran in the park with the ball.",
       "The sun was warm and the park was green."] * 30


@pytest.fixture(scope="module")
def toks():
    return (train_bpe(MED, vocab_size=300, show_progress=False),
            train_bpe(GEN, vocab_size=300, show_progress=False))


def test_words_and_counts():
    assert T.words("Anat. & Med.: the X-ray 3 times") == ["Anat", "Med", "the", "X", "ray", "times"]
    assert T.word_counts(["a b a", "b"]) == {"a": 2, "b": 2}


def test_domain_tokenizer_uses_fewer_tokens_on_its_domain(toks):
    med_tok, gen_tok = toks
    assert T.tokens_per_word(med_tok, MED[:3]) < T.tokens_per_word(gen_tok, MED[:3])
    assert T.tokens_per_word(gen_tok, GEN[:3]) < T.tokens_per_word(med_tok, GEN[:3])
    assert T.bytes_per_token(med_tok, MED[:3]) > T.bytes_per_token(gen_tok, MED[:3])
    with pytest.raises(ValueError, match="no words"):
        T.tokens_per_word(med_tok, ["123 !!"])


def test_segment_and_whole_word_rate(toks):
    med_tok, gen_tok = toks
    assert T.segment(med_tok, "inflammation") == ["inflammation"]
    pieces = T.segment(gen_tok, "inflammation")
    assert len(pieces) > 1 and "".join(pieces) == "inflammation"
    assert T.word_token_count(med_tok, "inflammation") == 1
    rate = T.whole_word_rate(med_tok, ["inflammation", "kidney", "zyx"], counts={"inflammation": 3, "kidney": 1,
                                                                                 "zyx": 4})
    assert rate["whole_by_type"] == pytest.approx(2 / 3)
    assert rate["whole_by_occurrence"] == pytest.approx(4 / 8)
    assert rate["tokens_per_type"] > 1


def test_domain_terms_rank_domain_words_first():
    terms = T.domain_terms(MED, GEN, k=3, min_count=3, min_length=5)
    words = [w for w, _, _ in terms]
    assert set(words) <= {"inflammation", "kidney", "nephritis", "causes", "filters", "blood", "follows",
                          "infection"}
    assert words[:2] == ["inflammation", "kidney"]        # the most frequent domain-only words rank top
    assert terms == sorted(terms, key=lambda t: (-t[1] * t[2], t[0]))
    names = T.domain_terms(["Dunglison wrote kidney notes"] * 5, GEN, k=5, min_count=3, min_length=5)
    assert [w for w, _, _ in names] == ["kidney", "notes", "wrote"]      # capitalised names drop out
    assert T.domain_terms(MED, GEN, k=50, exclude={"kidney"})[0][0] != "kidney"
    assert all(w != "kidney" for w, _, _ in T.domain_terms(MED, GEN, k=50, exclude={"kidney"}))
