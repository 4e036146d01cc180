"""Every scale's preset of every CommonCanvas notebook (plain literals; notebooks override keys), and the
typed spec each one builds into (``run.spec``).

smoke: a 2-core CPU: 16 px generated scenes, a 1M-parameter latent UNet, 400 steps.
small: one GPU, < 1 h: 32 px scenes with more colours and objects, a bigger UNet, 10k steps.
full:  01-03 are the scene study at the largest size we would run (the paper has no scene study, so
       most values there are assumptions); the paper's own training is ``sd2_full_scale``: SD2
       (flavour "sd2-unet") on ``data_dir/captions.jsonl`` at 256 px then 512 px with the authors'
       SD2-base recipe (mosaicml/diffusion's SD-2-base-256 / -512 yamls), and ``speedups`` times the SD2
       shapes at 512 px. ``## Recipe`` in README.md gives the source of every full value.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from papers.commoncanvas.diffusion_speedups import SpeedupConfig
from papers.commoncanvas.generation_eval import GenerationEvalSpec
from papers.commoncanvas.scenes import SceneConfig
from papers.commoncanvas.speedup_benchmark import BenchConfig
from shared.experiment.presets import NotebookPresets
from shared.models.diffusion import AutoencoderConfig
from shared.train.config import TrainConfig
from shared.utils.config import StrictConfig


# ---- typed specs ------------------------------------------------------------------------------------
@dataclass
class NetTrainSpec(StrictConfig):
    """One helper network's training run on freshly generated scenes."""
    images: int                      # generated training images
    max_steps: int
    global_batch_size: int
    lr: float
    kl_weight: float | None = None   # the autoencoder's KL term (None for the CNNs)


@dataclass
class RecognizerSpec(StrictConfig):
    """A SceneRecognizer's size (its image size and classes come from the scene config)."""
    channels: tuple[int, ...]
    feature_dim: int


@dataclass
class ComponentsSpec(StrictConfig):
    """01_components: the shared autoencoder, recognizer and FID feature network."""
    scene: SceneConfig
    noisy_style: dict[str, float]    # SceneConfig fields replaced for the noisy half of the scorers' data
    autoencoder: AutoencoderConfig
    autoencoder_train: NetTrainSpec
    recognizer: RecognizerSpec
    recognizer_train: NetTrainSpec
    feature_net: RecognizerSpec
    feature_train: NetTrainSpec
    eval_images: int


@dataclass
class LabelledSpec(StrictConfig):
    """The captioner's labelled "web" split: how many scenes, rendered with these SceneConfig changes."""
    images: int
    style: dict[str, float]


@dataclass
class CaptionerSpec(StrictConfig):
    channels: tuple[int, ...]
    feature_dim: int
    max_steps: int
    global_batch_size: int
    lr: float


@dataclass
class T2ITrainSpec(StrictConfig):
    """A scene text-to-image model's training run."""
    max_steps: int
    global_batch_size: int
    lr: float
    warmup_steps: int
    ema_half_life: float
    checkpoint_every: int = 0        # steps between checkpoints (with the EMA weights) to resume from; 0: none


@dataclass
class T2IEvalSpec(StrictConfig):
    prompts: int                     # held-out prompts, one generated image each
    sampling_steps: int
    guidance_scale: float


@dataclass
class TelephoningSpec(StrictConfig):
    """02_telephoning."""
    components_dir: str | None       # None: 01_components' output of this run
    labelled: LabelledSpec
    captioner: CaptionerSpec
    unlabelled_images: int
    model: dict[str, Any]            # DiffusionConfig fields (text: TextEncoderConfig fields; see build_scene_t2i)
    train: T2ITrainSpec
    eval: T2IEvalSpec
    # one in this many compositions (colour, shape, position, count) never appears in the unlabelled images
    # or the prompts of 02/03; 03_data_scarcity evaluates on them (scenes.split_compositions)
    held_out_compositions_every: int = 4


@dataclass
class DataScarcitySpec(StrictConfig):
    """03_data_scarcity (the model, training and evaluation are 02_telephoning's, read from its metrics)."""
    components_dir: str | None       # None: 01_components' output of this run
    telephoning_dir: str | None      # None: 02_telephoning's output of this run
    sizes: tuple[int, ...]           # nested subsets of 02_telephoning's training images
    plateau_fid_ratio: float         # on the plateau: FID within this factor of the largest size's
    grid_prompts: int
    scarce_fid_ratio: float = 1.5    # scarcity shows: FID at the smallest size at least this factor of the best
    workers: int = 1                 # on a CPU: sizes trained at once, one job process each (on GPUs: nproc_per_node)


@dataclass
class GeneratedScenesSpec(StrictConfig):
    images: int
    image_size: int


@dataclass
class PhaseSpec(StrictConfig):
    """One resolution phase; each starts from the previous phase's weights."""
    name: str
    resolution: int
    max_steps: int


@dataclass
class EMASpec(StrictConfig):
    half_life_steps: float
    update_every: int = 1
    start_step: int = 0


@dataclass
class SD2TrainingSpec(StrictConfig):
    """sd2_full_scale: the torchrun entry point papers.commoncanvas.text_to_image:train_main per phase."""
    generated_scenes: GeneratedScenesSpec | None   # written to out_dir/data when data_dir is None
    manifest: str
    max_images: int | None
    max_length: int
    model: str | dict[str, Any]      # a flavour name, {"flavour": "sd2-unet", **fields} or DiffusionConfig fields
    tokenizer_path: str | None       # local folders relative to data_dir (None: built fresh)
    text_encoder_path: str | None
    autoencoder_path: str | None
    phases: tuple[PhaseSpec, ...]
    train: TrainConfig
    ema: EMASpec | None
    speedups: SpeedupConfig
    fresh: bool
    sample_prompts: int
    sampling_steps: int
    needs_data_dir: bool = False
    ema_phases: tuple[str, ...] | None = None   # the phases EMA runs in (None: every phase)
    latent_sample: bool = False     # train on posterior draws of the autoencoder (SD2), not its mean
    precompute_latents: bool = False   # encode images and captions once per phase (latent_cache)
    evaluation: GenerationEvalSpec | None = None   # FID / KID / CLIP score on held-out captions (full scale)


# ---- 01_components ----------------------------------------------------------------------------------
COMPONENTS_SMOKE = {
    "scene": {"image_size": 16, "counts": [1, 2]},
    "noisy_style": {"background_noise": 25.0, "colour_jitter": 20.0},
    "autoencoder": {"block_out_channels": [32, 64], "latent_channels": 4, "layers_per_block": 1,
                    "norm_num_groups": 8, "mid_block_attention": False},
    "autoencoder_train": {"images": 4000, "max_steps": 300, "global_batch_size": 32, "lr": 3e-3, "kl_weight": 1e-6},
    "recognizer": {"channels": [32, 64], "feature_dim": 128},
    "recognizer_train": {"images": 6000, "max_steps": 300, "global_batch_size": 64, "lr": 3e-3},
    "feature_net": {"channels": [16, 32], "feature_dim": 64},
    "feature_train": {"images": 6000, "max_steps": 200, "global_batch_size": 64, "lr": 3e-3},
    "eval_images": 512,
}
COMPONENTS_SMALL = {
    **COMPONENTS_SMOKE,
    "scene": {"image_size": 32, "counts": [1, 2, 3], "colours": ["red", "green", "blue", "yellow", "magenta", "cyan"]},
    "autoencoder": {"block_out_channels": [64, 128, 128], "latent_channels": 4, "layers_per_block": 2,
                    "norm_num_groups": 32, "mid_block_attention": True},
    "autoencoder_train": {"images": 40000, "max_steps": 4000, "global_batch_size": 64, "lr": 1e-3, "kl_weight": 1e-6},
    "recognizer": {"channels": [32, 64, 128], "feature_dim": 256},
    "recognizer_train": {"images": 40000, "max_steps": 3000, "global_batch_size": 128, "lr": 2e-3},
    "feature_net": {"channels": [32, 64, 64], "feature_dim": 128},
    "feature_train": {"images": 40000, "max_steps": 2000, "global_batch_size": 128, "lr": 2e-3},
    "eval_images": 2000,
}
# assumed: the paper has no scene study; full is the small study at 64 px with every colour, SD's
# KL-f8-shaped autoencoder (4 levels, 4 latent channels) and more images and steps.
COMPONENTS_FULL = {
    **COMPONENTS_SMALL,
    "scene": {"image_size": 64, "counts": [1, 2, 3],
              "colours": ["red", "green", "blue", "yellow", "magenta", "cyan", "white", "orange"]},
    "autoencoder": {"block_out_channels": [128, 256, 512, 512], "latent_channels": 4, "layers_per_block": 2,
                    "norm_num_groups": 32, "mid_block_attention": True},   # SD2's KL-f8 autoencoder shape
    "autoencoder_train": {"images": 200000, "max_steps": 20000, "global_batch_size": 128, "lr": 1e-4,
                          "kl_weight": 1e-6},                               # assumed: scaled up from small
    "recognizer": {"channels": [64, 128, 256], "feature_dim": 512},         # assumed
    "recognizer_train": {"images": 200000, "max_steps": 10000, "global_batch_size": 256, "lr": 1e-3},  # assumed
    "feature_net": {"channels": [64, 128, 128], "feature_dim": 256},        # assumed
    "feature_train": {"images": 200000, "max_steps": 6000, "global_batch_size": 256, "lr": 1e-3},      # assumed
    "eval_images": 10000,           # assumed: FID's usual 10k samples
}

# ---- 02_telephoning ---------------------------------------------------------------------------------
T2I_SMOKE = {"block_out_channels": [32, 64], "layers_per_block": 1,
             "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
             "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"], "attention_heads": 4, "norm_num_groups": 8,
             "pooled_text_conditioning": True, "snr_gamma": 5.0, "caption_dropout": 0.1,
             "train_text_encoder": False, "beta_schedule": "squaredcos_cap_v2", "prediction_type": "epsilon",
             "text": {"hidden_size": 64, "num_layers": 1, "num_heads": 4}}
T2I_SMALL = {**T2I_SMOKE, "block_out_channels": [64, 128, 256], "layers_per_block": 2,
             "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
             "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"], "attention_heads": 8,
             "norm_num_groups": 32, "text": {"hidden_size": 256, "num_layers": 4, "num_heads": 4}}
# SD2's UNet layout (cross-attention in the first three levels, linear projections, 64-d heads), narrower
T2I_FULL = {**T2I_SMALL, "block_out_channels": [128, 256, 512, 512],       # assumed: SD2's 320..1280 at 0.4x
            "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
            "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3, "attention_heads": [2, 4, 8, 8],
            "use_linear_projection": True, "text": {"hidden_size": 512, "num_layers": 8, "num_heads": 8}}  # assumed

TELEPHONING_SMOKE = {
    "components_dir": None,
    "labelled": {"images": 400, "style": {"background_noise": 25.0, "colour_jitter": 25.0}},
    "captioner": {"channels": [16, 32], "feature_dim": 64, "max_steps": 300, "global_batch_size": 32, "lr": 3e-3},
    "unlabelled_images": 4096,
    "held_out_compositions_every": 4,
    "model": T2I_SMOKE,
    "train": {"max_steps": 400, "global_batch_size": 32, "lr": 3e-3, "warmup_steps": 20, "ema_half_life": 30.0},
    "eval": {"prompts": 512, "sampling_steps": 10, "guidance_scale": 3.0},
}
TELEPHONING_SMALL = {
    **TELEPHONING_SMOKE,
    "labelled": {"images": 4000, "style": {"background_noise": 25.0, "colour_jitter": 25.0}},
    "captioner": {"channels": [32, 64, 64], "feature_dim": 128, "max_steps": 1500, "global_batch_size": 64,
                  "lr": 2e-3},
    "unlabelled_images": 50000,
    "model": T2I_SMALL,
    "train": {"max_steps": 10000, "global_batch_size": 128, "lr": 3e-4, "warmup_steps": 500, "ema_half_life": 1000.0},
    "eval": {"prompts": 2000, "sampling_steps": 25, "guidance_scale": 3.0},
}
TELEPHONING_FULL = {
    **TELEPHONING_SMALL,
    "labelled": {"images": 20000, "style": {"background_noise": 25.0, "colour_jitter": 25.0}},   # assumed
    "captioner": {"channels": [64, 128, 128], "feature_dim": 256, "max_steps": 6000, "global_batch_size": 256,
                  "lr": 1e-3},                                                                  # assumed
    "unlabelled_images": 200000,                                                                # assumed
    "model": T2I_FULL,
    # lr 1e-4, 10k warmup and EMA decay 0.9999 are SD2-base's; steps and batch are assumed for the scene study
    "train": {"max_steps": 50000, "global_batch_size": 256, "lr": 1e-4, "warmup_steps": 10000,
              "ema_half_life": 6931.1252,
              "checkpoint_every": 2500},   # ours: a preempted run (03's jobs) loses at most 5% of its steps
    "eval": {"prompts": 10000, "sampling_steps": 50, "guidance_scale": 3.0},   # assumed: FID's usual 10k samples
}

# ---- 03_data_scarcity -------------------------------------------------------------------------------
# The FID ratios are fixed from the seed-to-seed spread of single-seed FIDs of 400-step scene models (up to
# ~30% across seeds 0-2 of the earlier runs): 1.3 is "within that spread", 1.5 "clearly beyond it".
SCARCITY_SMOKE = {"components_dir": None, "telephoning_dir": None, "sizes": [32, 256, 1024, 4096],
                  "plateau_fid_ratio": 1.3, "scarce_fid_ratio": 1.5, "grid_prompts": 8, "workers": 3}
SCARCITY_SMALL = {**SCARCITY_SMOKE, "sizes": [100, 1000, 5000, 20000, 50000], "grid_prompts": 10, "workers": 1}
# assumed: sizes spaced as the paper's LAION subsets are (decades up to the largest set), on 02's 200k images
SCARCITY_FULL = {**SCARCITY_SMOKE, "sizes": [200, 2000, 10000, 50000, 200000], "grid_prompts": 10}

# ---- sd2_full_scale ---------------------------------------------------------------------------------
SD2_TINY = {"block_out_channels": [32, 64], "layers_per_block": 1, "attention_heads": 4, "norm_num_groups": 8,
            "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
            "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
            "use_linear_projection": True, "latent": True, "train_text_encoder": True, "beta_schedule": "scaled_linear",
            "beta_start": 0.00085, "beta_end": 0.012,
            "text": {"hidden_size": 64, "num_layers": 2, "num_heads": 4},
            "autoencoder": {"block_out_channels": [32, 64], "latent_channels": 4, "norm_num_groups": 8}}
SD2_SMOKE = {
    "generated_scenes": {"images": 64, "image_size": 32},
    "manifest": "captions.jsonl", "max_images": None, "max_length": 12,
    "model": SD2_TINY, "tokenizer_path": None, "text_encoder_path": None, "autoencoder_path": None,
    "phases": [{"name": "phase1", "resolution": 32, "max_steps": 6}],
    "train": {"global_batch_size": 8, "micro_batch_size": 8, "lr": 1e-3, "warmup_steps": 2, "schedule": "constant",
              "precision": "bf16", "parallelism": "fsdp", "log_every": 1, "checkpoint_every": 0,
              "progress_bar": False, "grad_clip": 1.0},
    "ema": {"half_life_steps": 4.0, "update_every": 1, "start_step": 0},
    "speedups": {"attention": "sdpa", "low_precision_norms": True, "channels_last": False, "compile": False},
    "fresh": True, "sample_prompts": 4, "sampling_steps": 10,
    # the full evaluation's code on files in the same formats that the notebook writes under data/ (COCO
    # captions of generated scenes, an FID Inception state dict and a tiny CLIP, both with random weights):
    # the scores only check the path; 4 images keep the 299 px Inception cheap on a CPU
    "evaluation": {"manifest": "coco/annotations/captions_val2014.json", "images": 4,
                   "fid_weights": "fid/pt_inception-random-weights.pth", "clip_dir": "clip-tiny-random",
                   "resolution": 32, "sampling_steps": 10, "guidance_scale": 3.0, "micro_batch_size": 8,
                   "kid_subsets": 100, "kid_subset_size": 1000},
}
SD2_SMALL = {
    **SD2_SMOKE,
    "generated_scenes": {"images": 20000, "image_size": 64},
    "model": {**SD2_TINY, "block_out_channels": [128, 256, 512], "layers_per_block": 2, "attention_heads": 8,
              "norm_num_groups": 32,
              "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
              "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
              "text": {"hidden_size": 256, "num_layers": 4, "num_heads": 4},
              "autoencoder": {"block_out_channels": [64, 128, 128], "latent_channels": 4, "norm_num_groups": 32}},
    "phases": [{"name": "phase1", "resolution": 64, "max_steps": 5000}],
    "train": {**SD2_SMOKE["train"], "global_batch_size": 64, "micro_batch_size": 64, "lr": 2e-4, "warmup_steps": 500,
              "log_every": 50, "checkpoint_every": 1000},
    "ema": {"half_life_steps": 500.0, "update_every": 1, "start_step": 1000},
    "speedups": {"attention": "sdpa", "low_precision_norms": True, "channels_last": True, "compile": True},
    "fresh": False, "sample_prompts": 8, "sampling_steps": 25,
    "evaluation": {**SD2_SMOKE["evaluation"], "images": 64, "resolution": 64, "sampling_steps": 25},
}
SD2_FULL = {
    **SD2_SMOKE,
    "needs_data_dir": True, "generated_scenes": None, "model": {"flavour": "sd2-unet"}, "max_length": 77,
    "tokenizer_path": "tokenizer", "text_encoder_path": "text_encoder", "autoencoder_path": "vae",
    # the authors' SD2-base recipe (mosaicml/diffusion yamls/hydra-yamls/SD-2-base-{256,512}.yaml; the card
    # in README.md cites every value): 550k steps at 256 px, then 850k at 512 px, each from a fresh step count
    "phases": [{"name": "256px", "resolution": 256, "max_steps": 550_000},
               {"name": "512px", "resolution": 512, "max_steps": 850_000}],
    # torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01): torch's defaults for betas and eps,
    # decay coupled to the LR on every parameter; composer's LinearWithWarmupScheduler with alpha_f 1.0
    # (10k warmup steps, then constant); no gradient clipping
    "train": {"global_batch_size": 2048, "micro_batch_size": 8, "optimizer": "adamw", "lr": 1e-4,
              "warmup_steps": 10_000, "schedule": "constant", "betas": [0.9, 0.999], "eps": 1e-8,
              "weight_decay": 0.01, "weight_decay_scaling": "lr", "decay_norm_and_bias": True,
              "precision": "amp_fp16", "parallelism": "fsdp_grad_op", "log_every": 100, "checkpoint_every": 10_000,
              "progress_bar": True, "grad_clip": None},
    # no EMA at 256 px; at 512 px smoothing 0.9999 per step (half life -1 / log2(0.9999) steps) from step 800k
    "ema": {"half_life_steps": 6931.1252, "update_every": 1, "start_step": 800_000}, "ema_phases": ["512px"],
    "latent_sample": True, "precompute_latents": True,
    "speedups": {"attention": "sdpa", "low_precision_norms": True, "channels_last": True, "compile": True},
    "fresh": False, "sample_prompts": 8, "sampling_steps": 50,
    # COCO-2014 validation captions, one per image, 30k images (the FID-30k protocol the SD papers report);
    # FID Inception and CLIP ViT-L/14 weights from data_dir
    "evaluation": {"manifest": "coco/annotations/captions_val2014.json", "images": 30_000,
                   "fid_weights": "fid/pt_inception-2015-12-05-6726825d.pth", "clip_dir": "clip-vit-large-patch14",
                   "resolution": 512, "sampling_steps": 50, "guidance_scale": 3.0, "micro_batch_size": 32,
                   "kid_subsets": 100, "kid_subset_size": 1000},
}

# ---- speedups ---------------------------------------------------------------------------------------
SPEEDUPS_SMOKE = {"model": "tiny", "image_size": 32, "global_batch_size": 16, "unet_channels": [32, 64],
                  "autoencoder_channels": [24, 40, 64], "autoencoder_layers": 1, "text_hidden": 64, "text_layers": 2,
                  "warmup_steps": 2, "steps_per_round": 5, "rounds": 7, "include_compile": False, "clock": "auto",
                  "round_robin": True, "max_length": 12}
SPEEDUPS_SMALL = {**SPEEDUPS_SMOKE, "model": "sd2-unet", "image_size": 256, "global_batch_size": 8, "warmup_steps": 3,
                  "steps_per_round": 5, "rounds": 5, "include_compile": True, "round_robin": False, "max_length": 77}
# The paper's speedups are for SD2 at 512 px in bf16 on GPUs; the batch per GPU is assumed (8, as sd2_full_scale's
# micro_batch_size), and so are the rounds (more, for a steadier median).
SPEEDUPS_FULL = {**SPEEDUPS_SMALL, "image_size": 512, "global_batch_size": 8, "rounds": 10}

NOTEBOOKS: dict[str, NotebookPresets] = {
    "01_components": NotebookPresets(ComponentsSpec, {"smoke": COMPONENTS_SMOKE, "small": COMPONENTS_SMALL,
                                                      "full": COMPONENTS_FULL}),
    "02_telephoning": NotebookPresets(TelephoningSpec, {"smoke": TELEPHONING_SMOKE, "small": TELEPHONING_SMALL,
                                                        "full": TELEPHONING_FULL}),
    "03_data_scarcity": NotebookPresets(DataScarcitySpec, {"smoke": SCARCITY_SMOKE, "small": SCARCITY_SMALL,
                                                           "full": SCARCITY_FULL}),
    "sd2_full_scale": NotebookPresets(SD2TrainingSpec, {"smoke": SD2_SMOKE, "small": SD2_SMALL, "full": SD2_FULL}),
    "speedups": NotebookPresets(BenchConfig, {"smoke": SPEEDUPS_SMOKE, "small": SPEEDUPS_SMALL,
                                              "full": SPEEDUPS_FULL}),
}
