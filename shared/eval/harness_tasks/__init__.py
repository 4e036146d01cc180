"""lm-evaluation-harness task YAMLs for the Mosaic Eval Gauntlet tasks the harness does not ship (Jeopardy, SQuAD
v1.1, CoQA, SVAMP, the two simple-arithmetic sets), with their row handling and scoring (``gauntlet_docs``).
``shared.eval.benchmarks.task_manager`` adds this folder to the harness's task index."""
