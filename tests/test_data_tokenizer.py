"""Byte-level BPE training, transformers round trip, and the corpus tokenizer cache."""
import pytest
from transformers import AutoTokenizer

from shared.data import tokenizer as T
from shared.data.corpora import load_corpus

TEXTS = load_corpus("arithmetic", n_train=300, n_test=10) + load_corpus("functions", n_train=200, n_test=10)


@pytest.fixture(scope="module")
def tok():
    return T.train_bpe(TEXTS, vocab_size=600, show_progress=False)


def test_bpe_vocab_specials_and_bytes(tok):
    assert 300 < len(tok) <= 600
    assert tok.convert_ids_to_tokens([0, 1]) == [T.EOS, T.PAD]
    assert tok.eos_token_id == 0 and tok.bos_token_id == 0 and tok.pad_token_id == 1
    s = "Zoë paid $12 <<3*4=12>> — 😀\n\tdef f(x):"
    ids = tok.encode(s)
    assert tok.decode(ids) == s                        # byte-level: lossless, never unknown
    assert len(ids) < len(s.encode("utf-8"))            # merges learned
    assert tok.encode("hello") == tok("hello")["input_ids"]   # no BOS/EOS added implicitly


def test_saved_tokenizer_loads_with_autotokenizer_identically(tok, tmp_path):
    tok.save_pretrained(str(tmp_path))
    auto = AutoTokenizer.from_pretrained(str(tmp_path), local_files_only=True)
    for s in TEXTS[:20] + ["", "  leading spaces", "<|endoftext|>x<|pad|>"]:
        assert auto.encode(s) == tok.encode(s)
    assert auto.eos_token == T.EOS and auto.pad_token == T.PAD and len(auto) == len(tok)


def test_encoder_special_tokens():
    tok = T.train_bpe(TEXTS[:50], vocab_size=400, special_tokens=T.ENCODER_SPECIAL_TOKENS, show_progress=False)
    assert tok.mask_token == T.MASK and tok.mask_token_id == 2
    assert tok.cls_token == "<|cls|>" and tok.sep_token == "<|sep|>"


def test_bad_arguments():
    with pytest.raises(ValueError, match="vocab_size"):
        T.train_bpe(TEXTS, vocab_size=200)
    with pytest.raises(ValueError, match="endoftext"):
        T.train_bpe(TEXTS, vocab_size=400, special_tokens=("<|pad|>",))


def test_corpus_tokenizer_cached_by_key(tmp_path, monkeypatch):
    monkeypatch.setenv("REPLICATIONS_CACHE", str(tmp_path))
    a = T.corpus_tokenizer(["arithmetic", "facts"], vocab_size=500, seed=0, max_docs=200)
    folders = list((tmp_path / "tokenizers").iterdir())
    assert len(folders) == 1 and (folders[0] / "tokenizer.json").exists()
    b = T.corpus_tokenizer(["arithmetic", "facts"], vocab_size=500, seed=0, max_docs=200)   # from cache
    assert a.get_vocab() == b.get_vocab()
    T.corpus_tokenizer(["arithmetic", "facts"], vocab_size=520, seed=0, max_docs=200)
    assert len(list((tmp_path / "tokenizers").iterdir())) == 2
    assert T.tokenizer_key(["a"], 500, 0, None, T.DEFAULT_SPECIAL_TOKENS, 2) != \
        T.tokenizer_key(["a"], 500, 1, None, T.DEFAULT_SPECIAL_TOKENS, 2)
