"""Activation checkpointing (TrainConfig.activation_checkpointing): the same loss and gradients,
fewer bytes kept for backward, state_dict names unchanged, and the trainer applies it."""
import torch

from shared.train import TrainConfig, Trainer
from shared.train.distributed import apply_activation_checkpointing


def _loss_and_grads(model, ids):
    out = model(ids[:, :-1], targets=ids[:, 1:])
    out.loss.backward()
    return out.loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


def _saved_bytes(model, ids) -> int:
    total = 0

    def pack(t):
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(ids[:, :-1], targets=ids[:, 1:])
    return total


def test_same_gradients_fewer_saved_bytes_same_names(tiny_gpt):
    ids = torch.randint(0, 50, (4, 33), generator=torch.Generator().manual_seed(0))
    plain, ckpt = tiny_gpt(n_layer=4), tiny_gpt(n_layer=4)
    names = list(ckpt.state_dict())
    assert len(apply_activation_checkpointing(ckpt)) == 4
    assert list(ckpt.state_dict()) == names
    plain_bytes, ckpt_bytes = _saved_bytes(plain, ids), _saved_bytes(ckpt, ids)
    print(f"saved for backward: {plain_bytes} B plain, {ckpt_bytes} B checkpointed")
    assert ckpt_bytes < 0.6 * plain_bytes
    (l1, g1), (l2, g2) = _loss_and_grads(plain, ids), _loss_and_grads(ckpt, ids)
    assert torch.allclose(l1, l2)
    for n in g1:
        assert torch.allclose(g1[n], g2[n], atol=1e-6), n


def test_trainer_switch_trains_like_without(tiny_gpt):
    ids = torch.randint(0, 50, (64, 17), generator=torch.Generator().manual_seed(1))
    batches = [ids[i:i + 8] for i in range(0, 64, 8)]

    def loss_fn(model, batch):
        return model(batch[:, :-1], targets=batch[:, 1:]).loss, {}

    losses = []
    for ac in (False, True):
        cfg = TrainConfig(max_steps=6, lr=1e-2, warmup_steps=0, activation_checkpointing=ac, progress_bar=False,
                          checkpoint_at_end=False, precision="fp32")
        trainer = Trainer(tiny_gpt(), loss_fn, iter(batches), cfg)
        losses.append(trainer.fit().losses)
        assert getattr(trainer.model.blocks[0], "_activation_checkpointed", False) == ac
    assert max(abs(a - b) for a, b in zip(*losses)) < 1e-5


def test_transformers_models_use_their_own_switch():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=32))
    assert apply_activation_checkpointing(model) == [] and model.is_gradient_checkpointing
