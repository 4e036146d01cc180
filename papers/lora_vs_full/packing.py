"""Packing instruction-finetuning examples into fixed-length sequences, as the paper's code IFT runs did.

The authors trained with llm-foundry (danbider/lora-tradeoffs README: composer, streaming, llm-foundry,
peft). Their code IFT table gives 193 batches of 192 sequences per epoch of Magicoder's 111,183 rows:
111,183 / (193 x 192) = 3.0 examples per 4096-token sequence, llm-foundry's `packing_ratio` 3. Its
finetuning dataloader packs each device batch: packing_ratio x B examples go into B sequences
(`BinPackCollator`, llmfoundry/data/packing.py), so the steps per epoch are rows / (ratio x B). What
that collator does, and what this module does likewise (our own code):

- examples are never split: each (prompt + response + EOS, already cut to max_len + 1 tokens) goes whole
  into one sequence; sequences hold at most max_len + 1 tokens (max_len inputs, max_len targets);
- first-fit decreasing: a group's examples, longest first, each into the first sequence with room;
  once the examples left are only as many as the sequences still empty, each opens its own, so a group
  gives exactly B sequences whenever its examples fit; sequences beyond B (examples that did not fit)
  are carried into the next group's packing (dropped at the end of an epoch, like the partial last group);
- the loss stays on response tokens: prompts and padding are masked, and so is the target that crosses
  from one example into the next (the next example's first token, a prompt token, which llm-foundry
  leaves unlabelled with the prompt, and since late 2024 masks explicitly in `_combine_in_place`);
- attention crosses example boundaries: the collator adds a `sequence_id`, but composer's
  HuggingFaceModel passes the model only the arguments of its forward, and LlamaForCausalLM.forward takes
  none such, so the Llama-2 runs attend causally over the whole packed sequence (position ids run on
  across examples too). Ours calls the model on input_ids alone, the same thing.

A group is `packing_group` sequences (the authors' device batch: 192 sequences over 32 GPUs = 6), fixed
by the task so the packing does not depend on the world size. Examples are shuffled per epoch with the
same seeded generator as shared.train.ResumableBatches, then packed; the packing is deterministic in
(data, seed, epoch).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class PackExample:
    """One encoded example: its tokens (L,) (prompt + response + EOS) and loss_mask (L - 1,), True where
    token t + 1 (a response token or the EOS) is the target of position t."""
    tokens: torch.Tensor
    loss_mask: torch.Tensor


def split_examples(data: dict[str, torch.Tensor]) -> list[PackExample]:
    """The examples of right-padded rows (tasks.encode_pairs: input_ids / targets / loss_mask, (N, T)),
    without their padding: a row ends at its last loss_mask position's target (the EOS, or the last
    response token kept)."""
    out = []
    for ids, targets, mask in zip(data["input_ids"], data["targets"], data["loss_mask"]):
        kept = torch.nonzero(mask).flatten()
        if kept.numel() == 0:
            raise ValueError("an encoded row has no response token to learn")
        end = int(kept[-1]) + 1                             # input positions of the row
        tokens = torch.cat([ids[:end], targets[end - 1:end]]).long()
        out.append(PackExample(tokens, mask[:end].bool().clone()))
    return out


def pack_group(items: list[int], lengths, n_bins: int, capacity: int, carried: list[list[int]] | None = None
               ) -> tuple[list[list[int]], list[list[int]]]:
    """First-fit-decreasing packing of one group (module docstring).

    items: the group's example indices; lengths: tokens of every example (indexed by example index);
    capacity: most tokens of a sequence; carried: sequences left over from the previous group (packed
    first). Returns (the n_bins fullest sequences, the rest), each a list of example indices in packing
    order."""
    bins = [list(b) for b in (carried or [])]
    fill = [sum(lengths[i] for i in b) for b in bins]
    order = sorted(items, key=lambda i: (-lengths[i], i))
    for k, i in enumerate(order):
        if lengths[i] > capacity:
            raise ValueError(f"an example of {lengths[i]} tokens exceeds a sequence of {capacity}")
        # as many examples left as empty sequences still needed: each opens its own
        if len(order) - k <= n_bins - len(bins):
            bins.append([i])
            fill.append(lengths[i])
            continue
        for b in range(len(bins)):
            if fill[b] + lengths[i] <= capacity:
                bins[b].append(i)
                fill[b] += lengths[i]
                break
        else:
            bins.append([i])
            fill.append(lengths[i])
    ranked = sorted(range(len(bins)), key=lambda b: -fill[b])    # stable: ties keep opening order
    return [bins[b] for b in ranked[:n_bins]], [bins[b] for b in ranked[n_bins:]]


def pack_epoch(lengths, order: list[int], ratio: float, group: int, capacity: int) -> list[list[int]]:
    """The sequences of one epoch: the examples in `order`, in consecutive groups of round(ratio x group),
    each packed into `group` sequences (leftovers carried to the next group); a last partial group and
    the leftovers after the last group are dropped. Returns lists of example indices."""
    per_group = max(int(round(ratio * group)), 1)
    out, carried = [], []
    for start in range(0, len(order) - per_group + 1, per_group):
        bins, carried = pack_group(order[start:start + per_group], lengths, group, capacity, carried)
        out.extend(bins)
    return out


def packed_rows(examples: list[PackExample], bins: list[list[int]], seq_len: int, pad_id: int = 0
                ) -> dict[str, torch.Tensor]:
    """{"input_ids", "targets" (int64), "loss_mask" (bool)}, each (len(bins), seq_len): each sequence
    the concatenation of its examples, the target that crosses into the next example masked, padded on
    the right (padding masked)."""
    ids = torch.full((len(bins), seq_len + 1), pad_id, dtype=torch.long)
    mask = torch.zeros((len(bins), seq_len), dtype=torch.bool)
    for row, members in enumerate(bins):
        tokens = torch.cat([examples[i].tokens for i in members])
        if len(tokens) > seq_len + 1:
            raise ValueError(f"a packed sequence of {len(tokens)} tokens exceeds {seq_len + 1}")
        pieces = []
        for k, i in enumerate(members):
            pieces.append(examples[i].loss_mask)
            if k + 1 < len(members):                       # last token of i -> first of the next: no target
                pieces.append(torch.zeros(1, dtype=torch.bool))
        ids[row, :len(tokens)] = tokens
        mask[row, :len(tokens) - 1] = torch.cat(pieces)
    return {"input_ids": ids[:, :-1].contiguous(), "targets": ids[:, 1:].contiguous(), "loss_mask": mask}


def packed_steps_per_epoch(n_examples: int, ratio: float, group: int, global_batch_size: int) -> int:
    """Optimizer steps per epoch when every group packs into exactly `group` sequences (llm-foundry's
    arithmetic: 111,183 Magicoder rows at ratio 3, 6 sequences per group, 192 per step -> 193)."""
    per_group = max(int(round(ratio * group)), 1)
    return (n_examples // per_group) * group // global_batch_size


class PackedPairBatches:
    """Endless micro-batches of packed sequences (module docstring), resumable like
    shared.train.ResumableBatches: each draw takes the next micro_batch_size x world_size sequences of
    the epoch and yields rank's contiguous share; an epoch ends when fewer remain. State: epoch and
    position (in sequences).

    data: encoded pairs (tasks.encode_pairs); ratio: examples per sequence (llm-foundry's packing_ratio);
    group: sequences packed together; seq_len: the sequence length (max_len; max_len + 1 tokens each)."""

    def __init__(self, data: dict[str, torch.Tensor], ratio: float, group: int, seq_len: int,
                 micro_batch_size: int, *, rank: int = 0, world_size: int = 1, seed: int = 0, pad_id: int = 0):
        if ratio < 1 or group < 1:
            raise ValueError(f"need packing ratio >= 1 and group >= 1; got {ratio}, {group}")
        self.examples = split_examples(data)
        self.lengths = [len(e.tokens) for e in self.examples]
        self.ratio, self.group, self.seq_len, self.pad_id = ratio, group, seq_len, pad_id
        self.micro_batch_size, self.rank, self.world_size, self.seed = micro_batch_size, rank, world_size, seed
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, {world_size})")
        self.epoch, self.pos = 0, 0
        self._bins_epoch, self._bins = -1, []
        if micro_batch_size * world_size > len(self.bins()):
            raise ValueError(f"a global micro-batch of {micro_batch_size} x {world_size} sequences exceeds the "
                             f"{len(self._bins)} packed sequences of an epoch")

    def bins(self, epoch: int | None = None) -> list[list[int]]:
        """The packed sequences of an epoch (default: the current one), as example indices."""
        epoch = self.epoch if epoch is None else epoch
        if epoch != self._bins_epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            order = torch.randperm(len(self.examples), generator=g).tolist()
            self._bins = pack_epoch(self.lengths, order, self.ratio, self.group, self.seq_len + 1)
            self._bins_epoch = epoch
        return self._bins

    def __iter__(self) -> PackedPairBatches:
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        per_draw = self.micro_batch_size * self.world_size
        if self.pos + per_draw > len(self.bins()):
            self.epoch, self.pos = self.epoch + 1, 0
        start = self.pos + self.rank * self.micro_batch_size
        members = self.bins()[start:start + self.micro_batch_size]
        self.pos += per_draw
        return packed_rows(self.examples, members, self.seq_len, self.pad_id)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "pos": self.pos, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state["seed"] != self.seed:
            raise ValueError(f"data state has seed={state['seed']}, this iterator has {self.seed}: "
                             "it cannot resume that stream")
        self.epoch, self.pos = int(state["epoch"]), int(state["pos"])


__all__ = ["PackExample", "PackedPairBatches", "pack_epoch", "pack_group", "packed_rows", "packed_steps_per_epoch",
           "split_examples"]
