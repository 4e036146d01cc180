"""Data for every paper: offline corpora, tokenizers, packing, scheduled mixtures.

Modules (import what you need; nothing heavy is imported here):
- corpora        named corpora: `load_corpus(name, split, max_docs, seed, **gen_kwargs) -> list[str]`
- debian_text    readers for Debian text packages (GCIDE with domain labels, WordNet, Python docs, ...)
- generated/     arithmetic (GSM8K-shaped), facts (MMLU-shaped), functions (HumanEval-shaped)
- formats        jsonl / parquet / text readers, `iter_documents(path)` for full-scale data_dir
- tokenizer      byte-level BPE: `train_bpe`, `corpus_tokenizer` (cached), `load_tokenizer`
- packing        `pack_documents`, `tokenize_data_dir`, `packed_corpus`, `PackedDataset`
- mixture        `Mixture` (resumable, rank-sharded sampler), schedules, `domain_upsampling`
- lm_streams     named text streams for decoder pretraining (sources, tokenizer, packing), `StreamSpec`
- mlm, mlm_cache masked-LM encoding, dynamic masking, masking-rate schedules; the on-disk token cache
- images         small image classification sets (digits, generated shapes, CIFAR-10 files)
- cache          cache folders ($REPLICATIONS_CACHE, default <repo>/.cache/data), content hashes
Debian packages are fetched by `bash ci/fetch_offline_data.sh`.
"""
