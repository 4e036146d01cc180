"""Scale presets of the BioMedLM notebooks: plain literals (notebooks override keys), each notebook's
built into its typed spec (`NOTEBOOKS`, read by `start_run(..., presets=...)`).

smoke: a 2-core CPU, offline text. Biomedical = GCIDE dictionary entries labelled (Med.), (Anat.),
       (Physiol.), ... plus the generated biomedical world's abstracts (shared.data.generated.biomedical);
       general = GCIDE entries without those labels, WordNet, fortunes and the Python docs, capped to
       about the same megabytes, plus the biomedical sources at the Pile's PubMed share (17.5%), so the
       general model sees every fact of the world, less often. 2-layer GPT-2-style decoders, vocabulary 2048.
small: one GPU, < 1 h: the same offline text with a 4-layer d256 decoder trained longer.
full:  the paper's configuration (Bolton et al. 2024, arXiv 2403.18421v1, Tables 1, 2, 5, 6; the
       stanford-crfm/BioMedLM model card and repo): byte-level BPE with 28,896 tokens, compared with
       GPT-2's tokenizer (read from data_dir); GPT-2-style decoder, 2560 hidden, 32 layers, 20 heads,
       context 1024; 300B tokens at 1024 x 1024 tokens per batch (286,102 steps); Decoupled AdamW lr
       1.6e-4, betas (0.9, 0.95), eps 1e-8, wd 1.6e-5, cosine with 100 warmup batches; bf16, FSDP.
       Only the biomedical model is pretrained: the general baseline is the existing GPT-Neo 2.7B
       (a transformers checkpoint under data_dir, with its GPT-2 tokenizer), as in the paper.
       Finetuning (both models alike): MedMCQA, MedQA, PubMedQA, BioASQ and MMLU Medical Genetics
       (trained on MedMCQA + MedQA), each for its own number of epochs, warmup ratio 0.5 (the repo's
       commands). The README's recipe card gives every value's source; the epochs and learning rates
       are assumed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from papers.biomedlm.pretrain import GPT2_STYLE
from papers.biomedlm.qa_finetune import HEADS, READERS
from shared.experiment import NotebookPresets
from shared.train import TrainConfig
from shared.utils.config import StrictConfig

# ------------------------------------------------------------------------------------------- data
WORLD = {"n_diseases": 40, "docs_per_disease": 16, "test_fraction": 0.45, "seed": 0}
# a domain: {"sources": {source: mixture weight}, "max_mb": {source: megabytes cap of the training text},
#            "tokenizer_max_mb": {source: megabytes cap of the tokenizer's training text}}
GENERAL_MB = {"gcide_general": 0.8, "wordnet": 0.4, "fortunes": 0.4, "python_docs": 0.4}
BIOMEDICAL_MIX = {"gcide_medical": 0.4, "biomedical_abstracts": 0.6}
# The general corpus carries biomedical text at its natural rate: the Pile's PubMed share (PubMed Central
# 14.40% + PubMed Abstracts 3.07% of its effective size, Gao et al. 2020 Table 1), the corpus of GPT-Neo,
# a general model the paper compares against. So the general model sees every fact of the biomedical
# world too, about six times less often than the biomedical model: the difference is density.
PILE_PUBMED_SHARE = 0.1440 + 0.0307
GENERAL_ONLY_MIX = {"gcide_general": 0.4, "wordnet": 0.2, "fortunes": 0.2, "python_docs": 0.2}
GENERAL_MIX = {**{k: w * (1 - PILE_PUBMED_SHARE) for k, w in GENERAL_ONLY_MIX.items()},
               **{k: w * PILE_PUBMED_SHARE for k, w in BIOMEDICAL_MIX.items()}}
# megabytes of biomedical text in the general corpus: the same share of its bytes (the abstracts' cap is
# above their size, so all of them are in, each fact at the general corpus's rate)
_BIOMEDICAL_MB = sum(GENERAL_MB.values()) * PILE_PUBMED_SHARE / (1 - PILE_PUBMED_SHARE)
GENERAL_WITH_BIOMEDICAL_MB = {**GENERAL_MB, **{k: round(w * _BIOMEDICAL_MB, 3) for k, w in BIOMEDICAL_MIX.items()}}
SMOKE_DOMAINS = {
    "biomedical": {"sources": BIOMEDICAL_MIX, "max_mb": {}, "tokenizer_max_mb": {}},
    "general": {"sources": GENERAL_MIX, "max_mb": GENERAL_WITH_BIOMEDICAL_MB,
                "tokenizer_max_mb": GENERAL_WITH_BIOMEDICAL_MB},
}
# held-out text: {name: {source: megabytes cap or None}}
SMOKE_HELDOUT = {
    "biomedical (GCIDE medical)": {"gcide_medical": None},
    "biomedical abstracts (generated)": {"biomedical_abstracts": None},
    "general": {"gcide_general": 0.03, "wordnet": 0.03, "fortunes": 0.03, "python_docs": 0.03},
}
# words whose segmentation is inspected: the most over-represented words of held-out biomedical text
# (the test split, which neither tokenizer trained on) against held-out general text
SMOKE_TERMS = {"domain": {"gcide_medical": None}, "general": {"gcide_general": None, "wordnet": None},
               "split": "test", "n_terms": 40, "min_count": 3,
               "exclude": ["physiol", "biochem", "bacteriol", "microbiol", "pathol", "veter"]}
# full scale pretrains only the biomedical model: the paper's general baseline is GPT-Neo 2.7B, an existing
# model that 03_finetune_qa reads from data_dir (FULL_BASELINES)
# data_dir/pubmed/train holds the Pile's PubMed Abstracts (pubmed/train/abstracts) and PubMed Central
# (pubmed/train/central): the model trains on both, the tokenizer on the abstracts only (the paper's Sec. 3.2)
FULL_DOMAINS = {
    "biomedical": {"sources": {"dir:pubmed/train": 1.0}, "max_mb": {},
                   "tokenizer_sources": {"dir:pubmed/train/abstracts": 1.0},
                   "tokenizer_max_mb": {"dir:pubmed/train/abstracts": 2000.0}},
}
# 01_tokenizer at full compares the PubMed tokenizer with GPT-2's (the paper's Table 3), saved under data_dir/gpt2
FULL_TOKENIZER_DOMAINS = {"biomedical": FULL_DOMAINS["biomedical"],
                          "general": {"sources": {"pretrained:gpt2": 1.0}, "max_mb": {}, "tokenizer_max_mb": {}}}
FULL_HELDOUT = {"biomedical (PubMed)": {"dir:pubmed/test": 20.0}, "general": {"dir:general/test": 20.0}}
FULL_TERMS = {"domain": {"dir:pubmed/test": 20.0}, "general": {"dir:general/test": 20.0}, "split": "test",
              "n_terms": 60, "min_count": 50, "exclude": []}

# ------------------------------------------------------------------------------------- tokenizer
TOKENIZER = {
    "smoke": {"vocab_sizes": [1024, 2048, 4096], "model_vocab": 2048, "domains": SMOKE_DOMAINS,
              "heldout": SMOKE_HELDOUT, "terms": SMOKE_TERMS, "world": WORLD, "show_terms": 16},
    "small": {"vocab_sizes": [1024, 2048, 4096, 8192], "model_vocab": 4096, "domains": SMOKE_DOMAINS,
              "heldout": SMOKE_HELDOUT, "terms": SMOKE_TERMS, "world": WORLD, "show_terms": 24},
    "full": {"vocab_sizes": [28896], "model_vocab": 28896, "domains": FULL_TOKENIZER_DOMAINS, "heldout": FULL_HELDOUT,
             "terms": FULL_TERMS, "world": None, "show_terms": 30, "needs_data_dir": True},
}

# ------------------------------------------------------------------------------------- pretraining
SMOKE_MODEL = {"n_layer": 2, "n_head": 4, "d_model": 128, "max_seq_len": 128, **GPT2_STYLE}
SMOKE_TRAIN = {"max_steps": 250, "global_batch_size": 16, "micro_batch_size": 16, "lr": 5e-3,
               "weight_decay": 1e-5, "schedule": "cosine", "warmup_fraction": 0.05, "alpha_f": 0.1,
               "precision": "fp32", "log_every": 10, "progress_bar": False}
PAPER_TRAIN = {"max_steps": 286102, "global_batch_size": 1024, "micro_batch_size": 4, "optimizer": "adamw",
               "lr": 1.6e-4, "weight_decay": 1.6e-5, "weight_decay_scaling": "schedule", "betas": [0.9, 0.95],
               "eps": 1e-8, "schedule": "cosine", "warmup_steps": 100, "alpha_f": 0.0, "grad_clip": 1.0,
               "precision": "bf16", "parallelism": "fsdp", "log_every": 10, "checkpoint_every": 2000,
               "progress_bar": True}
PRETRAIN = {
    "smoke": {"domains": SMOKE_DOMAINS, "heldout": SMOKE_HELDOUT, "world": WORLD, "vocab_size": 2048,
              "seq_len": 128, "model": SMOKE_MODEL, "train": SMOKE_TRAIN, "fresh": True},
    "small": {"domains": SMOKE_DOMAINS, "heldout": SMOKE_HELDOUT, "world": WORLD, "vocab_size": 4096,
              "seq_len": 256, "model": {**SMOKE_MODEL, "n_layer": 4, "d_model": 256, "max_seq_len": 256},
              "train": {**SMOKE_TRAIN, "max_steps": 3000, "global_batch_size": 32, "micro_batch_size": 32,
                        "lr": 2e-3, "precision": "bf16"}, "fresh": True},
    "full": {"domains": FULL_DOMAINS, "heldout": FULL_HELDOUT, "world": None, "vocab_size": 28896,
             "seq_len": 1024, "model": {"flavour": "biomedlm-2.7b"}, "train": PAPER_TRAIN, "fresh": False, "needs_data_dir": True},
}

# -------------------------------------------------------------------------------------- finetuning
# existing models finetuned beside the pretrained ones: {name: transformers checkpoint folder under data_dir}
# (the paper's GPT-Neo 2.7B, EleutherAI/gpt-neo-2.7B saved with save_pretrained)
FULL_BASELINES = {"general": "gpt-neo-2.7B"}

SMOKE_FT = {"max_steps": 60, "global_batch_size": 8, "micro_batch_size": 8, "lr": 3e-4, "schedule": "cosine",
            "warmup_fraction": 0.1, "alpha_f": 0.1, "weight_decay": 0.0, "precision": "fp32", "log_every": 5,
            "progress_bar": False}
SMOKE_TASKS = {"medmcqa": {"fmt": "medmcqa", "train_file": "{qa_dir}/medmcqa/train.jsonl",
                           "test_file": "{qa_dir}/medmcqa/test.jsonl"},
               "medqa": {"fmt": "medqa", "train_file": "{qa_dir}/medqa/train.jsonl",
                         "test_file": "{qa_dir}/medqa/test.jsonl"},
               "pubmedqa": {"fmt": "pubmedqa", "train_file": "{qa_dir}/pubmedqa/train.jsonl",
                            "test_file": "{qa_dir}/pubmedqa/test.jsonl"}}
# n_train: the training questions of each benchmark (the paper's Sec. 4), which turn epochs into steps in the plan
FULL_TASKS = {"medmcqa": {"fmt": "medmcqa", "train_file": "{data_dir}/medmcqa/train.jsonl",
                          "test_file": "{data_dir}/medmcqa/dev.jsonl", "n_train": 182822},
              "medqa": {"fmt": "medqa", "train_file": "{data_dir}/medqa/train.jsonl",
                        "test_file": "{data_dir}/medqa/test.jsonl", "n_train": 10178},
              "pubmedqa": {"fmt": "pubmedqa", "train_file": "{data_dir}/pubmedqa/train.jsonl",
                           "test_file": "{data_dir}/pubmedqa/test.jsonl", "n_train": 450},
              "bioasq": {"fmt": "bioasq", "train_file": "{data_dir}/bioasq/train.jsonl",
                         "test_file": "{data_dir}/bioasq/test.jsonl", "n_train": 670},
              # the paper's MMLU model trains on MedMCQA + MedQA (qa_finetune.write_mc_jsonl writes that file)
              "mmlu_medical_genetics": {"fmt": "mmlu", "train_file": "{data_dir}/mmlu/train_medmcqa_medqa.jsonl",
                                        "test_file": "{data_dir}/mmlu/medical_genetics_test.csv",
                                        "n_train": 182822 + 10178}}
# Hugging Face Trainer settings of the repo's finetune commands (its placeholders {lr}, {num_epochs} and
# {grad_accum} filled by assumption): AdamW betas (0.9, 0.999), eps 1e-8, no weight decay, linear decay to 0
# after a warmup of half the run, gradient norm clipped at 1, bf16
FULL_FT = {"epochs": 3, "global_batch_size": 32, "micro_batch_size": 4, "lr": 2e-5, "betas": [0.9, 0.999],
           "eps": 1e-8, "weight_decay": 0.0, "weight_decay_scaling": "lr", "schedule": "linear",
           "warmup_fraction": 0.5, "alpha_f": 0.0, "grad_clip": 1.0, "precision": "bf16", "parallelism": "fsdp",
           "log_every": 10, "checkpoint_every": 500, "progress_bar": True,
           "per_fmt": {"medqa": {"epochs": 10}, "pubmedqa": {"epochs": 20}, "bioasq": {"epochs": 20}}}
FINETUNE = {
    "smoke": {"tasks": SMOKE_TASKS, "train": SMOKE_FT, "max_len": 128, "world": WORLD, "seeds": [0, 1],
              "textgen": {"train_file": "{qa_dir}/patients/train.jsonl", "test_file": "{qa_dir}/patients/test.jsonl",
                          "train": {**SMOKE_FT, "max_steps": 30, "lr": 1e-3}, "max_new_tokens": 16, "show": 6},
              "fresh": True},
    "small": {"tasks": SMOKE_TASKS, "train": {**SMOKE_FT, "max_steps": 300, "precision": "bf16"}, "max_len": 256,
              "world": WORLD, "seeds": [0, 1, 2],
              "textgen": {"train_file": "{qa_dir}/patients/train.jsonl", "test_file": "{qa_dir}/patients/test.jsonl",
                          "train": {**SMOKE_FT, "max_steps": 200, "lr": 1e-3}, "max_new_tokens": 24, "show": 10},
              "fresh": True},
    "full": {"tasks": FULL_TASKS, "max_len": 512, "world": None, "seeds": [0], "head": "classifier", "train": FULL_FT,
             "textgen": {"kind": "summarization", "train_file": "{data_dir}/meqsum/train.source",
                         "test_file": "{data_dir}/meqsum/test.source",
                         "train": {**{k: v for k, v in FULL_FT.items() if k != "per_fmt"}, "epochs": 10},
                         "n_train": 1000, "max_new_tokens": 400, "show": 10},
             "baselines": FULL_BASELINES, "fresh": False, "needs_data_dir": True},
}

# The paper's numbers (arXiv 2403.18421v1: abstract and Tables 7-11; GPT-Neo 2.7B finetuned, Tables 8, 10, 11)
PAPER = {"medmcqa": 57.3, "mmlu_medical_genetics": 69.0, "medqa": 50.3, "pubmedqa": 74.4, "bioasq": 95.7,
         "gpt_neo_2.7b": {"medqa": 37.7, "pubmedqa": 66.1, "bioasq": 67.1},
         "vocab_size": 28896, "params": 2.7e9, "tokens": 300e9}


# ------------------------------------------------------------------------------------- typed specs
@dataclass
class WorldPreset(StrictConfig):
    """The generated biomedical world (shared.data.generated.biomedical.biomedical_splits)."""
    n_diseases: int
    docs_per_disease: int
    test_fraction: float
    seed: int


@dataclass
class DomainText(StrictConfig):
    """A domain's text: {source: mixture weight}, and megabyte caps of its training / tokenizer text.
    tokenizer_sources: the sources its BPE trains on where they are not the model's (BioMedLM's tokenizer
    saw PubMed abstracts only; its model abstracts and full text); None: ``sources``."""
    sources: dict[str, float]
    max_mb: dict[str, float] = field(default_factory=dict)
    tokenizer_max_mb: dict[str, float] = field(default_factory=dict)
    tokenizer_sources: dict[str, float] | None = None


@dataclass
class TermsPreset(StrictConfig):
    """Which words' segmentation is inspected: the most over-represented words of `domain` text against
    `general` text ({source: megabytes cap or None}), both read from `split` ("test": text that neither
    tokenizer trained on, so the terms are not picked from a tokenizer's own training text)."""
    domain: dict[str, float | None]
    general: dict[str, float | None]
    n_terms: int
    min_count: int
    exclude: tuple[str, ...] = ()
    split: str = "test"

    def __post_init__(self):
        if self.split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {self.split!r}")


@dataclass
class TokenizerPreset(StrictConfig):
    """01_tokenizer: BPEs of each domain at each vocabulary size, scored on held-out text."""
    vocab_sizes: tuple[int, ...]
    model_vocab: int
    domains: dict[str, DomainText]
    heldout: dict[str, dict[str, float | None]]
    terms: TermsPreset
    world: WorldPreset | None
    show_terms: int
    needs_data_dir: bool = False


@dataclass
class PretrainPreset(StrictConfig):
    """02_pretrain: one decoder per domain, same shape and tokens (full scale: the biomedical one only;
    the general baseline is an existing model, FinetunePreset.baselines). model: GPTConfig keywords or
    a flavour name (shared.models.flavours); vocab_size is the domain tokenizer's."""
    domains: dict[str, DomainText]
    heldout: dict[str, dict[str, float | None]]
    world: WorldPreset | None
    vocab_size: int
    seq_len: int
    model: str | dict[str, Any]
    train: TrainConfig
    fresh: bool
    needs_data_dir: bool = False


@dataclass
class FinetuneTrain(TrainConfig):
    """TrainConfig plus `epochs` (passes over the training examples; replaces max_steps) and
    `per_fmt` ({question format: overrides of these keys}), read by qa_finetune.finetune_train."""
    epochs: float | None = None
    per_fmt: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self):
        super().__post_init__()
        names = {f for f in self.__dataclass_fields__ if f != "per_fmt"}
        for fmt, over in self.per_fmt.items():
            if fmt not in READERS or set(over) - names:
                raise ValueError(f"per_fmt[{fmt!r}]: formats are {sorted(READERS)}, keys {sorted(names)}; "
                                 f"got keys {sorted(over)}")


@dataclass
class QATaskFiles(StrictConfig):
    """One multiple-choice benchmark: its reader (papers.biomedlm.qa_finetune.READERS) and files
    ("{qa_dir}" / "{data_dir}" placeholders); n_train: its number of training questions, if known
    (the plan turns epochs into steps with it)."""
    fmt: str
    train_file: str
    test_file: str
    n_train: int | None = None

    def __post_init__(self):
        if self.fmt not in READERS:
            raise ValueError(f"fmt={self.fmt!r}; valid choices: {', '.join(sorted(READERS))}")


TEXTGEN_KINDS = ("qa", "summarization")


@dataclass
class TextgenPreset(StrictConfig):
    """Generation for patient questions: files, finetuning, decoding length, rows shown. kind "qa": jsonl
    {"question", "answer"} rows, a Question / Answer prompt, scored by naming the reference's keyword (the
    generated world); "summarization": MeQSum as the repo finetunes it (<split>.source / .target line files,
    source, separator, target), scored by ROUGE (qa_finetune.read_source_target, encode_summaries, rouge)."""
    train_file: str
    test_file: str
    train: FinetuneTrain
    max_new_tokens: int
    show: int
    n_train: int | None = None
    kind: str = "qa"

    def __post_init__(self):
        if self.kind not in TEXTGEN_KINDS:
            raise ValueError(f"textgen kind must be one of {TEXTGEN_KINDS}, got {self.kind!r}")


@dataclass
class FinetunePreset(StrictConfig):
    """03_finetune_qa: the same finetuning of each pretrained decoder, and of each existing baseline, on
    each benchmark, several seeds. head: how an option is scored: "lm" (its summed log-likelihood,
    qa_finetune.mc_loss) or the paper's "classifier" (a scalar per [question; option] sequence;
    qa_finetune.HEADS). baselines: {model name: transformers checkpoint folder under data_dir (or an
    absolute path)}, finetuned and evaluated like the pretrained decoders with their own tokenizers
    (qa_finetune.finetuning_inits)."""
    tasks: dict[str, QATaskFiles]
    train: FinetuneTrain
    max_len: int
    world: WorldPreset | None
    seeds: tuple[int, ...]
    textgen: TextgenPreset
    fresh: bool
    needs_data_dir: bool = False
    head: str = "lm"
    baselines: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")


NOTEBOOKS = {
    "01_tokenizer": NotebookPresets(TokenizerPreset, TOKENIZER),
    "02_pretrain": NotebookPresets(PretrainPreset, PRETRAIN),
    "03_finetune_qa": NotebookPresets(FinetunePreset, FINETUNE),
}
