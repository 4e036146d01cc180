"""The CPU rehearsal of the full presets (``python ci/run_notebooks.py --scale full --rehearse --paper biomedlm``;
``ci/rehearsal.py``): the three notebooks at scale full, on 2 torchrun nodes, shrunk only in size; the pretraining run and one
finetuning run of each kind (head and task: ``PREEMPT_KINDS``) preempted once and resumed.

Shrunk: the BPE vocabulary (28,896 -> 512, the one size tried, and the model's), the terms inspected (60 -> 8,
counted at least 3 times rather than 50), the biomedlm-2.7b flavour (2 layers of width 64, context 64), the
pretraining run (8 steps of 2 sequences of 64 tokens, warmup 1, a checkpoint every 4 steps), every finetuning
run (1 epoch over 8 training questions or MeQSum pairs, 16 for MMLU's MedMCQA + MedQA: 2 per batch, 1 per
micro-batch, a checkpoint every step; sequences of 64 tokens; 4 test questions each; summaries of 8 new tokens;
2 rows shown), GPT-2's tokenizer (a BPE of this data_dir's general text) and GPT-Neo 2.7B (a 2-layer
GPTNeoForCausalLM of width 32 with its alternating global / local attention). Everything else is the full preset's: GPT-2's tokenizer read from
``data_dir/gpt2``, the PubMed folders (the tokenizer on the abstracts only, the model on abstracts and central),
GPT-2-style decoder switches, Decoupled AdamW, bf16, FSDP, every finetuning task (MedMCQA, MedQA, PubMedQA,
BioASQ, MMLU Medical Genetics trained on MedMCQA + MedQA) with the classifier head, the GPT-Neo baseline
finetuned like the pretrained decoder, MeQSum summarisation scored by ROUGE, and ``data_dir`` in the public
layouts the README lists (MedMCQA's 1-based release, MedQA's 4-option jsonl, PubMedQA's pqa_labeled rows, the
repo's BioASQ seqcls rows, MMLU's original CSV, MeQSum line files).
"""
from __future__ import annotations

import random
from pathlib import Path

import torch

from papers.biomedlm.qa_finetune import write_mc_jsonl
from shared.data.formats import write_jsonl
from shared.data.tokenizer import train_bpe
from shared.eval.benchmark_fixtures import ROWS
from shared.eval.formats import read_medmcqa, read_medqa

VOCAB = 512
FT = {"epochs": 1, "global_batch_size": 2, "micro_batch_size": 1, "checkpoint_every": 1, "log_every": 1,
      "progress_bar": False}
# one finetuning run preempted per head and task: the runs of a kind differ only in their data files and base
PREEMPT_KINDS = {"03_finetune_qa": ["head", "task"]}
NOTEBOOKS = {
    "01_tokenizer": {"vocab_sizes": [VOCAB], "model_vocab": VOCAB, "terms": {"n_terms": 8, "min_count": 3},
                     "show_terms": 8},
    "02_pretrain": {
        "vocab_size": VOCAB, "seq_len": 64,
        "model": {"n_layer": 2, "d_model": 64, "n_head": 4, "d_ff": 256, "max_seq_len": 64},
        "train": {"max_steps": 8, "global_batch_size": 2, "micro_batch_size": 1, "warmup_steps": 1,
                  "checkpoint_every": 4, "log_every": 1, "progress_bar": False},
    },
    "03_finetune_qa": {
        "max_len": 64,
        "train": {**FT, "per_fmt": {fmt: {"epochs": 1} for fmt in ("medqa", "pubmedqa", "bioasq")}},
        "textgen": {"train": FT, "max_new_tokens": 8, "show": 2},
    },
}

DISEASES = ["hepatitis", "carcinoma", "leukemia", "nephritis", "myocarditis", "pneumonia", "sepsis", "melanoma",
            "thrombosis", "encephalitis"]
DRUGS = ["metformin", "cisplatin", "rituximab", "warfarin", "amoxicillin", "tacrolimus", "imatinib", "heparin"]
GENES = ["BRCA1", "TP53", "EGFR", "KRAS", "HER2", "APOE", "CFTR", "JAK2"]
ORGANS = ["liver", "kidney", "myocardium", "lung", "pancreas", "spleen", "marrow", "cortex"]
PLACES = ["market", "harbour", "library", "station", "garden", "village", "bakery", "river"]
THINGS = ["apples", "letters", "boats", "songs", "stones", "lanterns", "ribbons", "kettles"]
NAMES = ["Sam", "Ann", "Tom", "Lucy", "Ravi", "Mia", "Omar", "Ines"]


def _abstract(i: int) -> str:
    d, g, r, o = (DISEASES[i % 10], GENES[i % 8], DRUGS[(i * 3) % 8], ORGANS[(i * 5) % 8])
    return (f"Background: {d} of the {o} is associated with {g} mutations. Methods: {20 + i} patients with {d} "
            f"received {r} ({5 * (i % 9 + 1)} mg daily) for {i % 12 + 2} weeks; {g} expression in the {o} was "
            f"measured by immunohistochemistry. Results: {r} reduced {g} expression by {i % 40 + 10}% and "
            f"improved survival (p = 0.0{i % 9 + 1}). Conclusion: {r} is a candidate therapy for {d}.")


def _article(i: int) -> str:
    return " ".join(_abstract(i + k) for k in range(3)) + f" Discussion: the {ORGANS[i % 8]} cohort was small."


def _general(i: int) -> str:
    n, p, t = NAMES[i % 8], PLACES[(i * 3) % 8], THINGS[(i * 5) % 8]
    return (f"{n} walked {i % 9 + 1} miles to the {p} and bought {i % 7 + 2} {t} for the family. On the way "
            f"home the weather turned, so {n} waited at the {PLACES[(i + 1) % 8]} and read a book about "
            f"{THINGS[(i + 2) % 8]}.")


def _jsonl(path: Path, texts: list[str]) -> None:
    write_jsonl(path, [{"text": t} for t in texts])


def _question(i: int) -> tuple[str, list[str], int]:
    """(a question, 4 options, the right one's index): the answer cycles over the 4 positions."""
    d, r = DISEASES[i % 10], DRUGS[i % 8]
    right, k = r, i % 4
    wrong = [x for x in DRUGS if x != right][i % 5:i % 5 + 3]
    options = wrong[:k] + [right] + wrong[k:]
    return f"Which drug treats {d} in study {i}?", options, k


def _medmcqa(i: int) -> dict:
    """The MedMCQA release's row (cop 1-based)."""
    q, o, k = _question(i)
    return {"id": f"rehearsal-{i}", "question": q, "opa": o[0], "opb": o[1], "opc": o[2], "opd": o[3], "cop": k + 1,
            "choice_type": "single", "exp": "", "subject_name": "Pharmacology", "topic_name": ""}


def _medqa(i: int) -> dict:
    """MedQA-USMLE's 4-option jsonl row."""
    q, o, k = _question(100 + i)
    options = dict(zip("ABCD", o))
    return {"question": q, "answer": o[k], "options": options, "meta_info": "step1", "answer_idx": "ABCD"[k]}


def make_data_dir(root: Path) -> None:
    """The full presets' data_dir at toy size (the README's layout): ``pubmed/train/{abstracts,central}``,
    ``pubmed/test``, ``general/test``, ``gpt2/`` (a 512-token BPE of general text standing in for GPT-2's),
    ``gpt-neo-2.7B/`` (a 2-layer GPTNeoForCausalLM with that tokenizer), the QA benchmarks and MeQSum."""
    root = Path(root)
    _jsonl(root / "pubmed" / "train" / "abstracts" / "part-0.jsonl", [_abstract(i) for i in range(240)])
    _jsonl(root / "pubmed" / "train" / "central" / "part-0.jsonl", [_article(i) for i in range(40)])
    _jsonl(root / "pubmed" / "test" / "part-0.jsonl", [_abstract(1000 + i) for i in range(24)])
    _jsonl(root / "general" / "test" / "part-0.jsonl", [_general(1000 + i) for i in range(24)])
    general_tok = train_bpe([_general(i) for i in range(400)], VOCAB, show_progress=False)
    general_tok.save_pretrained(str(root / "gpt2"))

    from transformers import GPTNeoConfig, GPTNeoForCausalLM    # third-party, slow to import
    torch.manual_seed(0)
    eos = general_tok.eos_token_id
    neo = GPTNeoForCausalLM(GPTNeoConfig(vocab_size=len(general_tok), max_position_embeddings=128, hidden_size=32,
                                         num_layers=2, num_heads=2, attention_types=[[["global", "local"], 1]],
                                         window_size=16, bos_token_id=eos, eos_token_id=eos))
    neo.save_pretrained(str(root / "gpt-neo-2.7B"))
    general_tok.save_pretrained(str(root / "gpt-neo-2.7B"))

    n_train, n_test = 8, 4
    for split, rows in (("train", range(n_train)), ("dev", range(50, 50 + n_test))):
        write_jsonl(root / "medmcqa" / f"{split}.jsonl", [_medmcqa(i) for i in rows])
    for split, rows in (("train", range(n_train)), ("test", range(50, 50 + n_test))):
        write_jsonl(root / "medqa" / f"{split}.jsonl", [_medqa(i) for i in rows])
    rng = random.Random(0)
    for split, n in (("train", n_train), ("test", n_test)):        # PubMedQA pqa_labeled rows
        write_jsonl(root / "pubmedqa" / f"{split}.jsonl", [ROWS["pubmedqa"](rng, i) for i in range(n)])
        write_jsonl(root / "bioasq" / f"{split}.jsonl",            # the repo's seqcls layout
                    [{"id": f"rehearsal-{i}", "sentence1": f"Is {DRUGS[i % 8]} used for {DISEASES[i % 10]}?",
                      "sentence2": _abstract(i), "label": ("yes", "no")[i % 2]} for i in range(n)])
    write_mc_jsonl(read_medmcqa(root / "medmcqa" / "train.jsonl") + read_medqa(root / "medqa" / "train.jsonl"),
                   root / "mmlu" / "train_medmcqa_medqa.jsonl")
    (root / "mmlu" / "medical_genetics_test.csv").write_text(
        "".join(f'"{q}",{",".join(o)},{"ABCD"[k]}\n' for q, o, k in map(_question, range(200, 200 + n_test))))
    (root / "meqsum").mkdir(parents=True, exist_ok=True)
    for split, rows in (("train", range(n_train)), ("test", range(50, 50 + n_test))):
        (root / "meqsum" / f"{split}.source").write_text(
            "".join(f"SUBJECT: {DISEASES[i % 10]} MESSAGE: my {ORGANS[i % 8]} hurts, can {DRUGS[i % 8]} help?\n"
                    for i in rows))
        (root / "meqsum" / f"{split}.target").write_text(
            "".join(f"Can {DRUGS[i % 8]} treat {DISEASES[i % 10]}?\n" for i in rows))
