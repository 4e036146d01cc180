"""The CPU rehearsal of the full presets (``python ci/run_notebooks.py --scale full --rehearse --paper
commoncanvas``; ``ci/rehearsal.py``).

sd2_full_scale runs at scale full on 2 torchrun nodes with the SD2 flavour ("sd2-unet") cut to sizes only: the
same four UNet levels (cross-attention in the first three, linear projections) at 32/32/64/64 channels, one
layer per block and 2/2/4/4 heads; the text tower and KL-f8 autoencoder that data_dir holds are tiny (a 1-layer
32-d CLIP text model, a 4-level autoencoder of 8 channels with SD's scaling factor 0.18215). The two phases keep
their names and order (the 512px phase is the one EMA runs in) at 64 and 128 px, 4 steps each with a checkpoint
every 2 steps (so each phase is preempted once and resumes), a global batch of 4 (2 ranks x micro-batch 2), and
EMA from step 2 of the last phase. The evaluation scores 2 COCO images at 64 px with 2 sampling steps. Everything
else is the full preset's: amp_fp16 (fp16 autocast and GradScaler, on CPU too), ZeRO-2 (``fsdp_grad_op``),
AdamW and its decay, the speedups, the latent and text-embedding cache written before each phase by its own
torchrun launch (posterior draws), the data_dir layout (captions.jsonl with images, tokenizer/, text_encoder/,
vae/, COCO captions and images, the FID Inception state dict, the CLIP folder).

One switch that is not a size is turned off: ``speedups.compile`` (True in the full preset). torch.compile of
the UNet's blocks on a CPU generates and builds C++ kernels with g++; on a shared 2-core machine that takes
longer than the whole rehearsal may (over 6 minutes for one forward and backward of this tiny UNet), and the
switch changes the speed, not the update. Everything the compiled path shares with this one (FSDP2 wrapping
per block, amp_fp16, checkpoints and the resume) is rehearsed.

Notebooks with a full preset but no rehearsal here: 01_components, 02_telephoning, 03_data_scarcity and
speedups train (or time) in the notebook's own process, not under torchrun, so ``ci/rehearsal.verify`` (which
needs launched runs on both nodes) has nothing to check in them.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from papers.commoncanvas.eval_fixtures import write_generation_eval_fixtures
from papers.commoncanvas.generation_eval import GenerationEvalSpec
from papers.commoncanvas.image_captions import write_scene_manifest
from papers.commoncanvas.scales import SD2_FULL
from shared.data.tokenizer import train_bpe

TEXT = {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64}
NOTEBOOKS = {
    "sd2_full_scale": {
        "model": {"block_out_channels": [32, 32, 64, 64], "layers_per_block": 1, "attention_heads": [2, 2, 4, 4],
                  "text": TEXT},
        "phases": [{"name": "256px", "resolution": 64, "max_steps": 4},
                   {"name": "512px", "resolution": 128, "max_steps": 4}],
        "train": {"global_batch_size": 4, "micro_batch_size": 2, "warmup_steps": 1, "log_every": 1,
                  "checkpoint_every": 2, "progress_bar": False},
        "ema": {"start_step": 2},
        "speedups": {"compile": False},      # see the module docstring
        "sample_prompts": 2, "sampling_steps": 2,
        "evaluation": {"images": 2, "resolution": 64, "sampling_steps": 2, "micro_batch_size": 2, "kid_subsets": 2},
    },
}
MANIFEST_IMAGES, IMAGE_SIZE = 16, 64


def make_data_dir(root: Path) -> None:
    """The full preset's data_dir at toy size: ``captions.jsonl`` with ``images/*.png`` (generated scenes),
    ``tokenizer/`` (a byte-level BPE on the captions), ``text_encoder/`` (a random CLIPTextModel, TEXT's shape),
    ``vae/`` (a random 4-level AutoencoderKL, downsampling 8), and the evaluation's files where the full
    preset's ``evaluation`` points (``eval_fixtures``: COCO captions with images, FID Inception weights, CLIP)."""
    from diffusers import AutoencoderKL                          # heavy: only when the data_dir is written
    from transformers import CLIPTextConfig, CLIPTextModel

    root = Path(root)
    manifest = write_scene_manifest(root, MANIFEST_IMAGES, IMAGE_SIZE, seed=0, manifest=SD2_FULL["manifest"])
    captions = [json.loads(line)["caption"] for line in manifest.read_text().splitlines()]
    tokenizer = train_bpe(captions * 4, 400, show_progress=False)
    tokenizer.save_pretrained(str(root / SD2_FULL["tokenizer_path"]))
    torch.manual_seed(0)
    text = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=TEXT["hidden_size"], num_hidden_layers=TEXT["num_layers"],
        num_attention_heads=TEXT["num_heads"], intermediate_size=TEXT["intermediate_size"],
        max_position_embeddings=SD2_FULL["max_length"], pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id))
    text.save_pretrained(str(root / SD2_FULL["text_encoder_path"]))
    vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(8, 8, 8, 8),
                        layers_per_block=1, latent_channels=4, norm_num_groups=4, sample_size=IMAGE_SIZE,
                        scaling_factor=0.18215)
    vae.save_pretrained(str(root / SD2_FULL["autoencoder_path"]))
    evaluation = GenerationEvalSpec.from_dict({**SD2_FULL["evaluation"], **NOTEBOOKS["sd2_full_scale"]["evaluation"]})
    write_generation_eval_fixtures(root, evaluation, image_size=IMAGE_SIZE, seed=0)
