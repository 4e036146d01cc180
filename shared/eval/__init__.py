"""Evaluation: perplexity by domain, multiple choice by log-likelihood, exact match, code pass@k.

Submodules (import what you need; the sandbox has no torch dependency):
    perplexity       evaluate_perplexity(model, {domain: data}) -> {domain: DomainLoss}
    multiple_choice  score_questions(model, tokenizer, questions) -> MCResult (acc, acc_norm)
    generation       generate(...), evaluate_gsm8k (GSM8K exact match)
    answers          normalize_number, extract_answer, exact_match (pure text)
    code             run_program(source, timeout_s) -> ProgramResult; evaluate_completions (pass@k)
    passk            pass_at_k(n, c, k), mean_pass_at_k
    sandbox          process isolation internals (namespaces, uid drop, rlimits, audit guard)
    formats          read_mmlu, read_medmcqa, read_medqa, read_pubmedqa, read_gsm8k, read_humaneval
    perplexity_eval  (in perplexity) the held-out eval_fn handed to shared.train.Trainer
    glue             GLUE-style encoder finetuning: task specs, metrics, readers; glue_standins offline
    tokenization     how a tokenizer cuts a domain's text (fertility, whole terms)
    spectral         spectra of weight matrices and finetuning perturbations
    diversity        diversity of sampled generations
"""
