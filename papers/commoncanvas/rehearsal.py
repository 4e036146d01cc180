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
per block, amp_fp16, checkpoints and the resume) is rehearsed. The compiled blocks themselves are checked by
``ci/compile_check.py`` (this UNet's shape, static shapes as the entry point compiles them, beside eager; part of
the GPU check): under torch's automatic dynamic shapes they failed in the inductor, hence
``TrainConfig.compile_dynamic=False``.

03_data_scarcity runs at scale full with each data-set size a job of ``shared.train.jobs`` (scene_jobs.py)
on 2 nodes of 1 slot each (the rehearsal's nnodes=2 x nproc_per_node=1; on a CPU the slots are the preset's
``workers``, set to 1 here, so each node claims one job), each preempted once after its first periodic checkpoint and
restarted, resuming from it (EMA weights included). Its training recipe is 02_telephoning's (read from
02's metrics.json), so 02's overrides shrink it: 4 steps of batch 4 with a checkpoint every 2 steps and 1
warmup step. Shrunk in 03 itself: the sizes (8, 24 and 48 images; 48 is 02's whole set, so its model is
02's, as at full) and the sample grid (4 prompts).

01_components and 02_telephoning (UNLAUNCHED: they train in the notebook's own process, so
``ci/rehearsal.verify`` has no launched run to check) run at full first, because 03 reads their outputs.
Shrunk: image counts (64 per helper network, 32 labelled, 48 unlabelled, 64 evaluation images, 16 prompts),
steps (2 per helper network and the captioner, 4 per text-to-image model), batches, widths (32 channels per
autoencoder level; 64 per UNet level, two per norm group, as the lowest level is 1 x 1 latent pixel; 8 per
recognizer level; a 32-d 1-layer text tower), one layer per block, and 2 sampling steps. Everything else is
the full preset's: 64 px scenes with every colour and count, the noisy style, the 4-level autoencoder with
attention in its middle block and 4 latent channels, the UNet's block types, heads, linear projections, pooled
text conditioning, Min-SNR-5, caption dropout and cosine schedule, the learning rates, the EMA half life and
the guidance scale, the held-out split and the claims' ratios. None of the scene studies reads data_dir (they
generate their scenes); they get make_data_dir's (SD2's) like every rehearsed notebook of the paper.

speedups has a full preset but no rehearsal: it times in the notebook's own process (no run to launch).
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
# 03_data_scarcity's sizes end at 02's unlabelled_images, so its largest size reuses 02's model (as at full)
UNLABELLED_IMAGES = 48
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
    # workers: the jobs at once per node on a CPU; 1, so each node claims one of the two sizes trained here
    "03_data_scarcity": {"sizes": [8, 24, UNLABELLED_IMAGES], "grid_prompts": 4, "workers": 1},
}
HELPER_TRAIN = {"images": 64, "max_steps": 2, "global_batch_size": 8}
UNLAUNCHED = {
    "01_components": {
        "autoencoder": {"block_out_channels": [32, 32, 32, 32], "layers_per_block": 1},
        "autoencoder_train": HELPER_TRAIN,
        "recognizer": {"channels": [8, 8, 8], "feature_dim": 16}, "recognizer_train": HELPER_TRAIN,
        "feature_net": {"channels": [8, 8, 8], "feature_dim": 16}, "feature_train": HELPER_TRAIN,
        "eval_images": 64,
    },
    "02_telephoning": {
        "labelled": {"images": 32},
        "captioner": {"channels": [8, 8, 8], "feature_dim": 16, "max_steps": 2, "global_batch_size": 8},
        "unlabelled_images": UNLABELLED_IMAGES,
        "model": {"block_out_channels": [64, 64, 64, 64], "layers_per_block": 1,
                  "text": {"hidden_size": 32, "num_layers": 1}},
        # 03's jobs train with this recipe: a checkpoint at step 2 of 4, where each job is preempted once
        "train": {"max_steps": 4, "global_batch_size": 4, "warmup_steps": 1, "checkpoint_every": 2},
        "eval": {"prompts": 16, "sampling_steps": 2},
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
