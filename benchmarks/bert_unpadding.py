"""MLM training throughput of our encoder against transformers' BertForMaskedLM at the same shape,
on batches with 0%, 25% and 50% padding, side by side in one run.

A step is forward + backward + AdamW on an MLM batch masked at 15% (BERT's rate). Rows:
- hf:            transformers BertForMaskedLM (SDPA attention), logits at every position
- ours padded:   shared.models.bert with unpad=False (classic BERT, the same weights)
- ours unpadded: unpad=True: the batch runs as one packed sequence of real tokens; MLM head only at
                 masked tokens (as MosaicBERT does)
All three start from the same weights (ours loaded with bert_hf.mlm_from_hf). Rounds interleave the
models, so load from other processes hits them alike, and the fastest round per model is reported
(noise only adds time); the CPU time of the process per step is reported too (on a shared machine the reliable column). Tokens/s counts real
(non-padding) tokens.

    python benchmarks/bert_unpadding.py                        # BERT 4 layers H256, seq 128, batch 16
    python benchmarks/bert_unpadding.py --layers 12 --hidden 768 --heads 12 --batch 32 --device cuda
"""
from __future__ import annotations

import argparse

import torch

from papers.mosaicbert.throughput import padded_mlm_batch, time_training_steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--vocab", type=int, default=30522)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--paddings", default="0,0.25,0.5")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    from transformers import BertConfig as HFConfig, BertForMaskedLM as HFBertForMaskedLM
    from shared.models.bert_hf import mlm_from_hf

    dev = torch.device(args.device)
    torch.manual_seed(0)
    hf = HFBertForMaskedLM(HFConfig(vocab_size=args.vocab, hidden_size=args.hidden, num_hidden_layers=args.layers,
                                    num_attention_heads=args.heads, intermediate_size=4 * args.hidden,
                                    max_position_embeddings=args.seq, hidden_dropout_prob=0.0,
                                    attention_probs_dropout_prob=0.0)).to(dev)
    models = {"hf": hf, "ours padded": mlm_from_hf(hf).to(dev),
              "ours unpadded": mlm_from_hf(hf, unpad=True).to(dev)}
    print(f"device={dev} threads={torch.get_num_threads()} torch={torch.__version__} layers={args.layers} "
          f"hidden={args.hidden} heads={args.heads} vocab={args.vocab} seq={args.seq} batch={args.batch}")
    print(f"{'padding':>8} {'model':<15}{'ms/step':>10}{'real tok/s':>12}{'vs hf':>8}{'CPU ms/step':>13}"
          f"{'tok/CPU-s':>11}{'vs hf':>8}")
    for padding in (float(p) for p in args.paddings.split(",")):
        batch = padded_mlm_batch(padding, args.batch, args.seq, args.vocab)
        real = int(batch["attention_mask"].sum())
        fastest = time_training_steps(models, batch, rounds=args.rounds)
        for name, t in fastest.items():
            w, c = t["wall_s"], t["cpu_s"]
            print(f"{1 - real / batch['attention_mask'].numel():>8.0%} {name:<15}{1e3 * w:>10.1f}{real / w:>12,.0f}"
                  f"{fastest['hf']['wall_s'] / w:>7.2f}x{1e3 * c:>13.1f}{real / c:>11,.0f}"
                  f"{fastest['hf']['cpu_s'] / c:>7.2f}x")


if __name__ == "__main__":
    main()
