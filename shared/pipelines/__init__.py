"""End-to-end pipelines that two or more papers share, built from data, models, train and eval.

- lm_pretrain   one decoder-LM pretraining pipeline: typed specs (model, train, data mixture, eval),
                branching, resume, export, torchrun launch (see its module docstring)
- mlm_pretrain  one encoder MLM pretraining pipeline (mosaicbert, masking_schedules): typed run config,
                resumable dynamically masked batches, checkpoint finetuning on GLUE or its stand-ins
- finetune      supervised finetuning of a causal LM on (prompt, response) pairs: the encoding that
                lora_vs_full and biomedlm share
- vision_classification  one small-image classification pipeline (example_difficulty, kd_sequences,
                prunability): typed data, model, optimizer specs; IMP, distillation and record callbacks

Layer: pipelines import utils, scaling, kernels, data, models, train and eval; only papers and
experiment-level code import pipelines.
"""
