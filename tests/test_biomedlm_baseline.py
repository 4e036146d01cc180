"""The paper's general baseline at full scale: GPT-Neo 2.7B, an existing transformers checkpoint under data_dir,
finetuned and evaluated by the same code as the pretrained decoder (papers.biomedlm.qa_finetune.load_decoder,
finetuning_inits, finetune_main), and sized by the preflight (papers.biomedlm.preflight). A tiny random GPT-Neo
saved in float16 with its own BPE stands in for the 2.7B checkpoint (a few seconds on a CPU)."""
from pathlib import Path

import pytest
import torch

from papers.biomedlm import pretrain as D
from papers.biomedlm import preflight as P
from papers.biomedlm import qa_finetune as Q
from papers.biomedlm import scales
from shared.data.formats import write_jsonl
from shared.data.generated import biomedical as B
from shared.data.tokenizer import train_bpe
from shared.preflight import World
from shared.preflight.report import data_errors
from shared.train import run_training

WORLD = {"n_diseases": 16, "test_fraction": 0.25, "docs_per_disease": 2, "seed": 1}
BASELINE = "gpt-neo-tiny"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """data_dir with a tiny GPT-Neo checkpoint (float16 weights, its tokenizer) and MedQA / patient-question
    files in their public layouts."""
    from transformers import GPTNeoConfig, GPTNeoForCausalLM

    root = tmp_path_factory.mktemp("data")
    splits = D.biomedical_world(WORLD)
    B.write_benchmark_files(splits, root)
    write_jsonl(root / "patients" / "train.jsonl", splits.patient_questions("train"))
    tok = train_bpe(splits.documents, 300, show_progress=False)
    torch.manual_seed(0)
    config = GPTNeoConfig(vocab_size=len(tok), hidden_size=32, num_layers=2, num_heads=4, max_position_embeddings=128,
                          attention_types=[[["global", "local"], 1]], window_size=16,
                          bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id)
    GPTNeoForCausalLM(config).half().save_pretrained(str(root / BASELINE))
    tok.save_pretrained(str(root / BASELINE))
    return root


def test_a_transformers_checkpoint_loads_in_fp32_with_its_tokenizer(data_dir):
    model, tok = Q.load_decoder(data_dir / BASELINE)
    assert type(model).__name__ == "GPTNeoForCausalLM" and not model.training
    assert {p.dtype for p in model.parameters()} == {torch.float32}          # stored as float16
    assert tok.eos_token_id == model.config.eos_token_id
    assert Q.transformer_blocks(model) == list(model.transformer.h)
    with pytest.raises(FileNotFoundError, match="config.json"):
        Q.load_decoder(data_dir / "medqa")


def test_finetuning_inits_put_baselines_beside_the_pretrained_decoders(data_dir, tmp_path):
    inits = Q.finetuning_inits(tmp_path, ["biomedical"], {"general": BASELINE}, str(data_dir))
    assert inits == {"biomedical": tmp_path / "biomedical", "general": data_dir / BASELINE}
    assert Q.finetuning_inits(tmp_path, ["biomedical"], {"general": str(data_dir / BASELINE)}, None)["general"] \
        == data_dir / BASELINE
    with pytest.raises(FileNotFoundError, match="no transformers checkpoint"):
        Q.finetuning_inits(tmp_path, ["biomedical"], {"general": "gpt-neo-2.7B"}, str(data_dir))
    with pytest.raises(ValueError, match="data_dir"):
        Q.finetuning_inits(tmp_path, ["biomedical"], {"general": BASELINE}, None)
    with pytest.raises(ValueError, match="also a pretrained domain"):
        Q.finetuning_inits(tmp_path, ["general"], {"general": BASELINE}, str(data_dir))


def test_the_full_preset_finetunes_gpt_neo_and_pretrains_only_the_biomedical_model():
    assert list(scales.NOTEBOOKS["02_pretrain"].build("full").domains) == ["biomedical"]
    full = scales.NOTEBOOKS["03_finetune_qa"].build("full")
    assert full.baselines == {"general": "gpt-neo-2.7B"} and full.head == "classifier"
    assert scales.NOTEBOOKS["03_finetune_qa"].build("smoke").baselines == {}


def test_baseline_finetunes_and_evaluates_through_the_full_code_path(data_dir, tmp_path):
    """The full preset's heads and recipe (epochs, linear warmup-decay, per-format overrides, bf16 / FSDP
    falling back to fp32 on one CPU process), only the sizes shrunk."""
    full = scales.NOTEBOOKS["03_finetune_qa"].resolve("full")
    train = {**full["train"], "epochs": 1, "global_batch_size": 4, "micro_batch_size": 2, "lr": 1e-3,
             "per_fmt": {"medqa": {"epochs": 2}}, "progress_bar": False, "log_every": 1}
    init = Q.finetuning_inits(tmp_path / "pre", [], full["baselines"] | {"general": BASELINE}, str(data_dir))["general"]
    base, tok = Q.load_decoder(init)
    test = Q.read_questions("medqa", data_dir / "medqa" / "test.jsonl")
    spec = Q.QAFinetuneSpec(init=str(init), task="mc", fmt="medqa", train_file=str(data_dir / "medqa" / "train.jsonl"),
                            train=train, max_len=64, head=full["head"], max_examples=6)
    hist = run_training("papers.biomedlm.qa_finetune:finetune_main", spec.to_dict(), run_dir=tmp_path / "ft")
    assert [r["step"] for r in hist.train] == [1, 2, 3]               # 2 epochs of 6 questions, 4 per batch
    assert (tmp_path / "ft" / Q.TRANSFORMERS_DIR / "config.json").is_file()
    tuned, tuned_tok = Q.load_decoder(tmp_path / "ft")
    assert type(tuned) is type(base) and len(tuned_tok) == len(tok)
    assert any(not torch.equal(a, b) for a, b in zip(tuned.parameters(), base.parameters()))
    res = Q.evaluate_mc(tuned, tok, test, head=full["head"], max_length=64)
    assert res.n == len(test) and 0.0 <= res.accuracy <= 1.0
    zero = Q.evaluate_mc(base, tok, test, head="lm", max_length=64)
    assert zero.n == len(test)

    gen = Q.QAFinetuneSpec(init=str(init), task="textgen", train_file=str(data_dir / "patients" / "train.jsonl"),
                           train={**train, "epochs": None, "max_steps": 2}, max_len=64)
    hist = run_training("papers.biomedlm.qa_finetune:finetune_main", gen.to_dict(), run_dir=tmp_path / "gen")
    assert len(hist.train) == 2 and hist.train[-1]["loss"] > 0
    answers = Q.generate_answers(Q.load_decoder(tmp_path / "gen")[0], tok, ["What treats it?"], max_new_tokens=4)
    assert len(answers) == 1 and isinstance(answers[0], str)


def test_preflight_sizes_the_baseline_and_requires_its_checkpoint(data_dir, tmp_path):
    tiny = P.baseline_config(data_dir / BASELINE)
    model, _ = Q.load_decoder(data_dir / BASELINE)
    cost = P.baseline_cost(tiny, 64, "tiny")
    assert cost.params == sum(p.numel() for p in model.parameters())      # tied head counted once
    assert cost.block_params == sum(p.numel() for p in model.transformer.h[0].parameters())
    neo = P.baseline_config(None)                 # the public GPT-Neo 2.7B configuration
    assert (neo.num_layers, neo.hidden_size, neo.num_heads, neo.vocab_size, neo.max_position_embeddings) == \
        (32, 2560, 20, 50257, 2048)
    assert P.baseline_cost(neo, 512, "neo").params == 2_651_307_520

    spec = scales.NOTEBOOKS["03_finetune_qa"].build("full")
    spec.baselines = {"general": str(data_dir / BASELINE)}    # an absolute folder: its config.json is read
    runs = {r.name: r for r in P.plan("03_finetune_qa", spec, World(8, 4))}
    assert runs["general-medqa"].model.params == cost.params
    assert runs["biomedical-medqa"].model.params > 2.5e9
    reqs = P.requirements("03_finetune_qa", scales.NOTEBOOKS["03_finetune_qa"].build("full"))
    assert any(r.kind == "hf_checkpoint" and r.path == "gpt-neo-2.7B" for r in reqs)
    assert any("missing hf_checkpoint" in e and "gpt-neo-2.7B" in e for e in data_errors(reqs, tmp_path))
    (tmp_path / "gpt-neo-2.7B").symlink_to(data_dir / BASELINE)
    assert not [e for e in data_errors(reqs, tmp_path) if "gpt-neo" in e]


def test_smoke_questions_round_trip_through_the_bioasq_and_mmlu_readers(data_dir, tmp_path):
    """The 03 notebook's reader check: the world's questions written as an MMLU CSV and BioASQ rows and
    read back by READERS are the same questions (BioASQ: the yes / no ones, two options)."""
    medmcqa = Q.read_questions("medmcqa", data_dir / "medmcqa" / "test.jsonl")
    mmlu = Q.read_questions("mmlu", Q.write_mmlu_csv(medmcqa, tmp_path / "mmlu" / "medical_genetics_test.csv"))
    assert [(q.question, q.choices, q.answer) for q in mmlu] == [(q.question, q.choices, q.answer) for q in medmcqa]
    assert {q.subject for q in mmlu} == {"medical genetics"}
    pubmedqa = Q.read_questions("pubmedqa", data_dir / "pubmedqa" / "test.jsonl")
    bioasq = Q.read_questions("bioasq", Q.write_bioasq_jsonl(pubmedqa, tmp_path / "bioasq" / "test.jsonl"))
    yes_no = [q for q in pubmedqa if q.choices[q.answer] != "maybe"]
    assert bioasq and [(q.question, q.context, q.choices[q.answer]) for q in bioasq] == \
        [(q.question, q.context, q.choices[q.answer]) for q in yes_no]
    assert {q.choices for q in bioasq} == {Q.BIOASQ_CHOICES}
    with pytest.raises(ValueError, match="four options"):
        Q.write_mmlu_csv(pubmedqa, tmp_path / "x.csv")


# --------------------------------------------------------------- MeQSum summarization (the full preset's textgen)
def _write_source_target(folder: Path, split: str, pairs: list[tuple[str, str]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{split}.source").write_text("\n".join(s for s, _ in pairs) + "\n\n")     # a trailing blank line
    (folder / f"{split}.target").write_text("\n".join(t for _, t in pairs) + "\n")
    return folder / f"{split}.source"


def test_summaries_read_encode_and_score_as_the_repo_does(data_dir, tmp_path):
    pairs = [("My mother has a rash after taking the new drug, what should we do?", "What to do about a drug rash?"),
             ("Is it safe to take two pills of the same medicine in one day?", "Can I take two doses a day?")]
    path = _write_source_target(tmp_path / "meqsum", "train", pairs)
    rows = Q.read_source_target(path)
    assert rows == [{"source": s, "target": t} for s, t in pairs]
    (tmp_path / "meqsum" / "train.target").write_text("only one line\n")
    with pytest.raises(ValueError, match="2 sources but 1 targets"):
        Q.read_source_target(path)
    with pytest.raises(ValueError, match=".source"):
        Q.read_source_target(tmp_path / "meqsum" / "train.target")

    _, tok = Q.load_decoder(data_dir / BASELINE)
    enc = Q.encode_summaries(rows, tok)
    eos = tok.eos_token_id
    for i, r in enumerate(rows):
        prompt = Q.summary_prompt_ids(tok, r["source"])
        target = Q.encode(tok, r["target"]) + [eos]
        assert prompt[-1] == eos                                          # the separator
        learned = enc["targets"][i][enc["loss_mask"][i]].tolist()
        assert learned == target                                          # the loss sees the target and its end only
        assert enc["input_ids"][i, :len(prompt)].tolist() == prompt
    long = Q.encode_summaries([{"source": "word " * 2000, "target": "short"}], tok)
    assert long["input_ids"].shape[1] <= Q.SUMMARY_MAX_SOURCE + 1 + Q.SUMMARY_MAX_TARGET + 1

    scores = Q.rouge(["what to do about a drug rash", "nothing alike"], ["What to do about a drug rash?", "cats"])
    assert scores["rouge1"] == pytest.approx(50.0) and scores["rougeL"] == pytest.approx(50.0)


def test_the_full_preset_summarises_meqsum_through_finetune_main(data_dir, tmp_path):
    tg = scales.NOTEBOOKS["03_finetune_qa"].resolve("full")["textgen"]
    assert tg["kind"] == "summarization" and tg["train_file"].endswith("meqsum/train.source")
    assert scales.NOTEBOOKS["03_finetune_qa"].build("smoke").textgen.kind == "qa"
    path = _write_source_target(tmp_path / "meqsum", "train", [("what dose of the drug for a child?", "child dose?")] * 4)
    spec = Q.QAFinetuneSpec(init=str(data_dir / BASELINE), task="summarization", train_file=str(path),
                            train={"max_steps": 2, "global_batch_size": 2, "micro_batch_size": 2, "lr": 1e-3,
                                   "precision": "fp32", "progress_bar": False, "log_every": 1})
    hist = run_training("papers.biomedlm.qa_finetune:finetune_main", spec.to_dict(), run_dir=tmp_path / "sum")
    assert len(hist.train) == 2 and hist.train[-1]["loss"] > 0
    model, tok = Q.load_decoder(tmp_path / "sum")
    out = Q.generate_summaries(model, tok, ["what dose of the drug for a child?"], max_new_tokens=4)
    assert len(out) == 1 and isinstance(out[0], str)
