"""The scene text-to-image plumbing: components and trained models survive a save/load round trip,
training data are precomputed latents (and text embeddings for a frozen encoder), evaluation runs."""
import pytest
import torch

from papers.commoncanvas.scenes import SceneConfig, generate_scenes
from shared.models.diffusion import AutoencoderConfig
from papers.commoncanvas.scales import NOTEBOOKS
from papers.commoncanvas.scene_t2i import (build_scene_t2i, evaluate_t2i, latent_scaling_factor, load_components,
                                           load_t2i, new_components, sample_images, save_components, save_t2i,
                                           scene_t2i_config, scene_training_data)
from papers.commoncanvas.scenes import WordTokenizer
from shared.experiment import SCALES
from shared.models.diffusion import TextToImageDiffusion
from shared.train.ema import EMA

SCENE = SceneConfig(image_size=16)
MODEL = {"block_out_channels": [8, 16], "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
         "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"], "attention_heads": 2, "norm_num_groups": 4,
         "pooled_text_conditioning": True, "snr_gamma": 5.0, "train_text_encoder": False,
         "text": {"hidden_size": 16, "num_layers": 1, "num_heads": 2}}


def components():
    ae = AutoencoderConfig(block_out_channels=(8, 16), latent_channels=4, norm_num_groups=4, mid_block_attention=False)
    return new_components(SCENE, ae, {"channels": (8, 16), "feature_dim": 16}, {"channels": (8, 16), "feature_dim": 8})


def test_components_round_trip(tmp_path):
    comps = components()
    data = generate_scenes(32, SCENE, seed=0)
    comps.autoencoder_cfg.scaling_factor = latent_scaling_factor(comps.autoencoder, data.float_images())
    save_components(comps, tmp_path / "c")
    loaded = load_components(tmp_path / "c")
    assert loaded.scene == SCENE and loaded.tokenizer.words == comps.tokenizer.words
    assert loaded.autoencoder_cfg.scaling_factor == comps.autoencoder_cfg.scaling_factor
    x = data.float_images()[:4]
    for name in ("recognizer", "feature_net"):
        torch.testing.assert_close(getattr(loaded, name).features(x), getattr(comps, name).eval().features(x))
    with pytest.raises(FileNotFoundError, match="01_components"):
        load_components(tmp_path / "missing")


def test_scene_model_data_sampling_and_round_trip(tmp_path):
    comps = components()
    data = generate_scenes(12, SCENE, seed=1)
    model = build_scene_t2i(comps, MODEL)
    assert model.cfg.latent and model.cfg.latent_size == 8 and model.unet.config.addition_embed_type == "text"
    train = scene_training_data(model, comps, data)
    assert set(train) == {"latents", "text_embeds"} and train["latents"].shape == (12, 4, 8, 8)
    loss = model(**{k: v[:4] for k, v in train.items()}).loss
    assert torch.isfinite(loss)
    joint = build_scene_t2i(comps, {**MODEL, "train_text_encoder": True})
    assert set(scene_training_data(joint, comps, data)) == {"latents", "input_ids"}
    ema = EMA(model, half_life_steps=1.0)
    with torch.no_grad():
        next(model.unet.parameters()).add_(1.0)      # training weights now differ from the EMA's
    path = save_t2i(model, tmp_path / "m.safetensors", ema=ema)
    loaded = load_t2i(path, comps)
    a = sample_images(loaded, comps, data.captions[:3], num_inference_steps=2)
    b = sample_images(model, comps, data.captions[:3], ema=ema, num_inference_steps=2)
    torch.testing.assert_close(a, b)
    scores = evaluate_t2i(model, comps, data, data, ema=ema, num_inference_steps=2)
    assert {"fid", "consistency_mean", "consistency_all", "consistency_colour"} <= set(scores)


@pytest.mark.parametrize("scale", SCALES)
def test_every_scale_builds_its_scene_model(scale):
    """02_telephoning's model preset on 01_components' scene and autoencoder of the same scale, full included,
    builds a model (on the meta device: shapes only) whose UNet sees the autoencoder's latents."""
    components, telephoning = NOTEBOOKS["01_components"].build(scale), NOTEBOOKS["02_telephoning"].build(scale)
    tok = WordTokenizer(components.scene.vocabulary())
    cfg = scene_t2i_config(telephoning.model, components.scene.image_size, components.autoencoder, tok.vocab_size,
                           tok.max_length)
    assert cfg.latent_size == components.scene.image_size // 2 ** (len(components.autoencoder.block_out_channels) - 1)
    with torch.device("meta"):
        model = TextToImageDiffusion(cfg)
    assert model.unet.config.sample_size == cfg.latent_size and model.num_params() > 0
