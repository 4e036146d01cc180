"""shared.train.lm: the masked LM loss equals a plain cross-entropy over the unmasked tokens, and a
tiny decoder trained through the shared Trainer on a packed batch drives its loss down."""
import torch
import torch.nn.functional as F

from shared.train import TrainConfig, Trainer
from shared.eval.perplexity import perplexity_eval
from shared.train.lm import IGNORE_INDEX, lm_loss, masked_targets


def batch(seed=0, b=2, t=12, vocab=50):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (b, t + 1), generator=g)
    doc_ids = torch.cat([torch.zeros(b, t // 2, dtype=torch.long), torch.ones(b, t - t // 2, dtype=torch.long)], 1)
    loss_mask = torch.ones(b, t, dtype=torch.bool)
    loss_mask[:, t // 2 - 1] = False            # the last token of document 0 does not predict document 1
    return {"input_ids": ids[:, :-1], "targets": ids[:, 1:], "doc_ids": doc_ids, "loss_mask": loss_mask}


def test_masked_loss_matches_plain_cross_entropy(tiny_gpt):
    model = tiny_gpt(vocab_size=50, seed=0, max_seq_len=16)
    b = batch()
    loss, metrics = lm_loss(model, b)
    logits = model(b["input_ids"], b["doc_ids"]).logits
    expected = F.cross_entropy(logits.flatten(0, 1), masked_targets(b).flatten(), ignore_index=IGNORE_INDEX)
    assert torch.allclose(loss, expected, atol=1e-5)
    assert metrics["num_tokens"] == int(b["loss_mask"].sum()) == 22


def test_tiny_decoder_learns_a_fixed_batch_through_the_trainer(tiny_gpt):
    model = tiny_gpt(vocab_size=50, seed=0, max_seq_len=16)
    fixed = batch(seed=1)
    data = iter(lambda: fixed, None)   # the same batch forever
    held_out = {"fixed": [fixed]}
    before = perplexity_eval(held_out)(model)["fixed_loss"]
    Trainer(model, lm_loss, data, TrainConfig(max_steps=40, lr=1e-2, progress_bar=False, log_every=10)).fit()
    after = perplexity_eval(held_out)(model)["fixed_loss"]
    assert after < 0.5 * before, (before, after)
