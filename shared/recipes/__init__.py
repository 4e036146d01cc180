"""Paper-specific pipelines built from the shared pieces (each tested in tests/test_recipes_*.py).

- domain_lm     domain tokenizer + decoder pretraining on one domain's text, bits per byte (BioMedLM)
- qa_finetune   multiple-choice and answer-generation finetuning of a pretrained decoder (BioMedLM)
- general_base  a tiny Llama-shaped base pretrained on general text, or a local Llama checkpoint (LoRA vs full)
- finetune      one full or LoRA (peft) finetuning run, with weight-change spectra along training (LoRA vs full)
- finetune_tasks  code / math data in both regimes, and the forgetting sets (LoRA vs full)
- lora_vs_full  the sweep plan, launches, result tables (LoRA vs full)
- upsampling    "pretrain, then branch": a baseline checkpointed at its branch steps, and branches that
                resume from them with a domain-upsampled mix or one domain removed (domain upsampling)
- upsampling_evals     the benchmarks of those runs: held-out stand-ins at smoke scale, MMLU / GSM8K /
                       HumanEval files at full scale (domain upsampling)
- upsampling_analysis  per-seed paired gains, the f sweep and the ablation deltas (domain upsampling)
"""
