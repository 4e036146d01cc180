"""papers.biomedlm.pretrain and qa_finetune: sources, tokenizer, streams, bits per byte, and the pretrain
(shared.pipelines.lm_pretrain) -> finetune -> evaluate pipeline end to end on a tiny model and tiny data (a few seconds)."""
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from papers.biomedlm import pretrain as D
from papers.biomedlm import qa_finetune as Q
from papers.biomedlm import scales
from shared.data.formats import write_jsonl
from shared.data.generated import biomedical as B
from shared.data.lm_streams import StreamSpec, pack_stream
from shared.data.packing import PackedDataset
from shared.data.tokenizer import load_tokenizer
from shared.eval._model_io import encode
from shared.eval.formats import MCQuestion
from shared.eval.multiple_choice import build_prompt, continuation_logprobs, continuations
from shared.models.gpt import GPT
from shared.pipelines.lm_pretrain import gpt_config, load_pretrained
from shared.train import run_training

WORLD = {"n_diseases": 16, "test_fraction": 0.25, "docs_per_disease": 2, "seed": 1}
TINY = dict(n_layer=1, n_head=2, d_model=32, max_seq_len=64, **D.GPT2_STYLE)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    splits = D.biomedical_world(WORLD)
    write_jsonl(root / "bio" / "part0.jsonl", [{"text": t} for t in splits.documents * 3])
    files = B.write_benchmark_files(splits, root / "qa")
    write_jsonl(root / "qa" / "patients.jsonl", splits.patient_questions("train"))
    return root, files


@pytest.fixture(scope="module")
def tok_dir(data_dir, tmp_path_factory):
    return D.train_tokenizer({"dir:bio": 1.0}, vocab_size=320, data_dir=str(data_dir[0]),
                             out_dir=tmp_path_factory.mktemp("tok") / "tok")


def test_sources(data_dir):
    root, _ = data_dir
    docs = D.source_documents("dir:bio", data_dir=str(root))
    assert len(docs) == 3 * 16 * 2
    capped = D.source_documents("dir:bio", data_dir=str(root), max_mb=0.001)
    assert sum(len(d.encode()) for d in capped) <= 1000 and capped
    abstracts = D.source_documents(D.ABSTRACTS, "train", world=WORLD)
    fresh = D.source_documents(D.ABSTRACTS, "test", world=WORLD)
    assert abstracts == D.biomedical_world(WORLD).documents and not set(fresh) & set(abstracts)
    sub = D._cap_bytes(abstracts, 0.002, seed=0, name="x")
    assert sub == D._cap_bytes(abstracts, 0.002, seed=0, name="x") and sum(len(d) for d in sub) <= 2000
    assert [d for d in abstracts if d in sub] == sub          # corpus order kept
    with pytest.raises(ValueError, match="unknown source"):
        D.source_documents("pubmed")
    with pytest.raises(ValueError, match="data_dir"):
        D.source_documents("dir:bio")


def test_tokenizer_is_cached_and_has_the_vocabulary(tok_dir, data_dir):
    tok = load_tokenizer(tok_dir)
    assert len(tok) == 320 and tok.eos_token_id is not None
    again = D.train_tokenizer({"dir:bio": 1.0}, vocab_size=320, data_dir=str(data_dir[0]), out_dir=tok_dir)
    assert again == tok_dir
    with pytest.raises(ValueError, match="ran out of merges"):
        D.train_tokenizer({"dir:bio": 1.0}, vocab_size=60000, data_dir=str(data_dir[0]),
                          out_dir=tok_dir.parent / "big")


def test_doc_chunks_predict_every_token_once_and_bits_per_byte(tok_dir):
    tok = load_tokenizer(tok_dir)
    docs = ["Tanairosis affects the retina. " * 6, "short"]
    chunks, n_bytes = D.doc_chunks(tok, docs, max_len=16)
    assert n_bytes == sum(len(d.encode()) + 1 for d in docs)
    n_targets = sum(len(c) - 1 for c in chunks)
    assert n_targets == sum(len(encode(tok, d)) + 1 for d in docs)
    assert all(len(c) <= 16 for c in chunks) and chunks[0][0] == tok.eos_token_id
    torch.manual_seed(0)
    model = GPT(gpt_config(TINY, len(tok))).eval()
    r = D.bits_per_byte(model, tok, docs, max_len=16)
    with torch.no_grad():   # the same number, summed chunk by chunk by hand
        nats = sum(F.cross_entropy(model(torch.tensor([c[:-1]])).logits[0], torch.tensor(c[1:]), reduction="sum").item()
                   for c in chunks)
    assert r["bits_per_byte"] == pytest.approx(nats / math.log(2) / n_bytes, rel=1e-5)
    assert r["tokens"] == n_targets


@pytest.mark.parametrize("style", Q.STYLES)
def test_option_scores_agree_with_the_evaluator(tok_dir, style):
    tok = load_tokenizer(tok_dir)
    torch.manual_seed(0)
    model = GPT(gpt_config(TINY, len(tok))).eval()
    qs = [MCQuestion("Which drug treats Tanairosis?", ("abcmab", "xytinib", "q", "lorem ipsum"), 1),
          MCQuestion("Organ?", ("retina", "liver", "skin", "brain"), 0, context="A short context.")]
    batch = Q.encode_mc(qs, tok, max_len=64, pad_id=tok.eos_token_id, style=style)
    assert batch["input_ids"].shape[:2] == (2, 4) and batch["labels"].tolist() == [1, 0]
    with torch.no_grad():
        ours = Q.option_scores(model, batch["input_ids"], batch["targets"])
    prompt = build_prompt if style == "listed" else (lambda q: Q.mc_prompt(q, "cloze"))
    pairs = [(encode(tok, prompt(q)), encode(tok, c)) for q in qs for c in continuations(q, "text")]
    ref = torch.tensor([s for s, _ in continuation_logprobs(model, pairs)]).view(2, 4)
    assert torch.allclose(ours, ref, atol=1e-4)
    result = Q.evaluate_mc(model, tok, qs, style=style)
    assert torch.allclose(torch.tensor(result.scores), ref, atol=1e-4)
    assert result.predictions == ref.argmax(-1).tolist() and result.n == 2
    loss, metrics = Q.mc_loss(model, batch)
    assert loss.item() == pytest.approx(F.cross_entropy(ref, batch["labels"]).item(), rel=1e-4)
    assert metrics["num_samples"] == 2
    with pytest.raises(ValueError, match="same number of options"):
        Q.encode_mc(qs + [MCQuestion("q", ("yes", "no", "maybe"), 0)], tok, 64)


def test_cloze_prompt_does_not_list_the_options():
    q = MCQuestion("Does x work?", ("yes", "no", "maybe"), 0, context="Results: it did.")
    assert Q.mc_prompt(q) == "Context: Results: it did.\nQuestion: Does x work?\nAnswer:"
    assert "A. yes" in Q.mc_prompt(q, "listed")
    with pytest.raises(ValueError, match="style"):
        Q.mc_prompt(q, "letters")


def test_textgen_masks_only_the_answer(tok_dir):
    tok = load_tokenizer(tok_dir)
    b = Q.encode_textgen([{"question": "What treats it?", "answer": "abcmab."}], tok, max_len=64)
    answer = encode(tok, " abcmab.") + [tok.eos_token_id]
    assert b["targets"][0][b["loss_mask"][0]].tolist() == answer


def test_pretrain_finetune_evaluate_end_to_end(tok_dir, data_dir, tmp_path):
    root, files = data_dir
    train = dict(max_steps=3, global_batch_size=4, micro_batch_size=2, lr=1e-3, progress_bar=False)
    spec = D.DomainPretrainSpec(tokenizer=str(tok_dir), sources={"dir:bio": 1.0, D.ABSTRACTS: 1.0}, model=TINY,
                                train=train, seq_len=32, world=WORLD, data_dir=str(root),
                                packed_dir=str(tmp_path / "packed"))
    assert D.DomainPretrainSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    with pytest.raises(ValueError, match="unknown DomainPretrainSpec key"):
        D.DomainPretrainSpec.from_dict({**spec.to_dict(), "lr": 1})
    hist = run_training("papers.biomedlm.pretrain:pretrain_main", spec.to_dict(), run_dir=tmp_path / "pre")
    assert [r["step"] for r in hist.train] == [1, 2, 3] and hist.train[-1]["samples"] == 3 * 4
    assert 0 < hist.train[-1]["tokens"] <= 3 * 4 * 32          # loss-masked tokens of 12 windows of 32
    model, tok = load_pretrained(tmp_path / "pre")
    assert model.cfg.vocab_size == 320 and len(tok) == 320

    ft = Q.QAFinetuneSpec(init=str(tmp_path / "pre"), task="mc", fmt="medqa",
                          train_file=str(files["medqa"]["train"]), train=dict(train, max_steps=2), max_len=64)
    hist = run_training("papers.biomedlm.qa_finetune:finetune_main", ft.to_dict(), run_dir=tmp_path / "ft")
    assert len(hist.train) == 2 and "accuracy" in hist.train[-1]
    tuned, tok = load_pretrained(tmp_path / "ft")
    assert any(not torch.equal(a, b) for a, b in zip(tuned.parameters(), model.parameters()))
    res = Q.evaluate_mc(tuned, tok, Q.read_questions("medqa", files["medqa"]["test"]))
    assert res.n == 4 * 2 * len(B.MEDQA_QUESTIONS) and 0.0 <= res.accuracy <= 1.0

    gen = Q.QAFinetuneSpec(init=str(tmp_path / "pre"), task="textgen",
                           train_file=str(root / "qa" / "patients.jsonl"), train=dict(train, max_steps=2), max_len=64)
    run_training("papers.biomedlm.qa_finetune:finetune_main", gen.to_dict(), run_dir=tmp_path / "gen")
    answers = Q.generate_answers(load_pretrained(tmp_path / "gen")[0], tok, ["What treats it?"], max_new_tokens=5)
    assert len(answers) == 1 and isinstance(answers[0], str)
    with pytest.raises(ValueError, match="task"):
        Q.QAFinetuneSpec(init="x", task="seqcls", train_file="x", train={})
    with pytest.raises(FileNotFoundError, match="model.json"):
        load_pretrained(tmp_path)


def test_the_full_preset_is_the_papers_model():
    full = scales.PRETRAIN["full"]
    cfg = gpt_config(full["model"], full["vocab_size"])
    assert cfg.max_seq_len == full["seq_len"]
    with torch.device("meta"):
        model = GPT(cfg)
    lm_head = full["vocab_size"] * cfg.d_model
    assert (model.num_params() + lm_head) / 1e9 == pytest.approx(2.7, abs=0.05)   # 2.7B with an untied head
    train = full["train"]
    assert train["max_steps"] * train["global_batch_size"] * full["seq_len"] == pytest.approx(300e9, rel=1e-5)
    assert (train["lr"], train["weight_decay"], train["parallelism"]) == (1.6e-4, 1.6e-5, "fsdp")


def test_streams_of_capped_and_uncapped_sources(tok_dir, data_dir, tmp_path):
    root, _ = data_dir
    tok = load_tokenizer(tok_dir)
    streams = D.domain_streams({"dir:bio": 1.0, D.ABSTRACTS: 1.0}, max_mb={D.ABSTRACTS: 0.002}, world=WORLD,
                               data_dir=str(root), packed_dir=str(tmp_path))
    assert streams["dir:bio"]["path"] == str(root / "bio")                 # uncapped folder: tokenized from files
    full = PackedDataset(pack_stream("bio", StreamSpec.from_dict(streams["dir:bio"]), tok, 32))
    assert full.index["num_documents"] == len(D.source_documents("dir:bio", data_dir=str(root)))
    capped = D.domain_streams({"dir:bio": 1.0}, max_mb={"dir:bio": 0.002}, data_dir=str(root))["dir:bio"]
    capped_ds = PackedDataset(pack_stream("bio", StreamSpec.from_dict(capped), tok, 32))
    assert 0 < len(capped_ds) < len(full)
    abstracts = StreamSpec.from_dict(streams[D.ABSTRACTS])
    assert Path(abstracts.packed_dir).parent == tmp_path
    docs = D.source_documents(D.ABSTRACTS, world=WORLD, max_mb=0.002)
    assert PackedDataset(pack_stream("abs", abstracts, tok, 32)).index["num_documents"] == len(docs)


def test_the_general_smoke_text_carries_the_biomedical_sources_at_the_piles_share():
    """The general model's text is general sources plus the biomedical sources at the Pile's PubMed share
    (so the general model can learn the generated world's facts); the biomedical model's is biomedical only."""
    general, biomedical = scales.SMOKE_DOMAINS["general"], scales.SMOKE_DOMAINS["biomedical"]
    assert math.isclose(sum(general["sources"].values()), 1.0)
    share = sum(w for k, w in general["sources"].items() if k in biomedical["sources"])
    assert math.isclose(share, scales.PILE_PUBMED_SHARE) and 0.17 < share < 0.18
    assert set(biomedical["sources"]) < set(general["sources"])
    for caps in (general["max_mb"], general["tokenizer_max_mb"]):   # every abstract is in (cap above its size)
        docs = D.source_documents(D.ABSTRACTS, "train", max_mb=caps[D.ABSTRACTS], world=scales.WORLD)
        assert docs == D.source_documents(D.ABSTRACTS, "train", world=scales.WORLD)


def test_terms_are_picked_from_held_out_text():
    for scale in ("smoke", "small", "full"):
        assert scales.NOTEBOOKS["01_tokenizer"].build(scale).terms.split == "test"
