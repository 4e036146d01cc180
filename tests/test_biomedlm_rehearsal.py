"""papers/biomedlm/rehearsal.py: its data_dir has everything the full presets read (the preflight finds no data
error), its files parse with the notebooks' readers, and its overrides shrink only sizes of the full presets."""
from __future__ import annotations

from papers.biomedlm import qa_finetune as Q
from papers.biomedlm import rehearsal
from papers.biomedlm.scales import FULL_TASKS, NOTEBOOKS
from shared.data.tokenizer import load_tokenizer
from shared.preflight import preflight
from shared.train.model_files import load_transformers_lm


def test_the_rehearsal_data_dir_is_the_full_layout(tmp_path):
    rehearsal.make_data_dir(tmp_path)
    report = preflight("biomedlm", scale="full", data_dir=str(tmp_path))
    data_errors = [e for e in report["errors"] if "GiB" not in e]      # memory verdicts are a GPU's, not data
    assert not data_errors, data_errors
    for name, task in FULL_TASKS.items():
        for key in ("train_file", "test_file"):
            questions = Q.read_questions(task["fmt"], task[key].format(data_dir=tmp_path))
            assert questions and all(q.answer is not None for q in questions), (name, key)
    assert len(Q.read_source_target(tmp_path / "meqsum" / "train.source")) >= 2
    model, tok = load_transformers_lm(tmp_path / "gpt-neo-2.7B")
    assert type(model).__name__ == "GPTNeoForCausalLM" and tok.eos_token_id is not None
    gpt2 = load_tokenizer(tmp_path / "gpt2")                 # GPT-2's stand-in: its own text, its own size
    assert gpt2.eos_token_id is not None and len(gpt2) == model.config.vocab_size


def test_the_overrides_build_the_full_specs_and_preempt_every_run():
    for notebook, overrides in rehearsal.NOTEBOOKS.items():
        NOTEBOOKS[notebook].build("full", overrides)
    pre = NOTEBOOKS["02_pretrain"].resolve("full", rehearsal.NOTEBOOKS["02_pretrain"])
    assert pre["train"]["checkpoint_every"] < pre["train"]["max_steps"]
    assert pre["train"]["global_batch_size"] % (2 * pre["train"]["micro_batch_size"]) == 0
    ft = NOTEBOOKS["03_finetune_qa"].resolve("full", rehearsal.NOTEBOOKS["03_finetune_qa"])
    for train in (ft["train"], ft["textgen"]["train"]):
        assert train["global_batch_size"] % (2 * train["micro_batch_size"]) == 0
        # 1 epoch over at least 4 examples: at least 2 steps, so the checkpoint of step 1 preempts the run
        assert train["checkpoint_every"] < train["epochs"] * 4 / train["global_batch_size"]
