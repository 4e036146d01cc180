"""TextToImageDiffusion on diffusers: shapes in pixel and latent space, the noising and targets
against diffusers' own scheduler, classifier-free guidance, sampling with each diffusers sampler,
training through the shared Trainer, the autoencoder loss, and the SD2 configuration."""
import pytest
import torch

from papers.commoncanvas.scenes import SceneConfig, WordTokenizer, generate_scenes
from shared.models.diffusion import (AutoencoderConfig, DiffusionConfig, TextEncoderConfig, TextToImageDiffusion,
                                     autoencoder_loss, build_sampler, build_unet, classifier_free_guidance,
                                     generate, sd2_config)
from shared.train import TrainConfig
from papers.commoncanvas.text_to_image import train_autoencoder, train_diffusion

TOK = WordTokenizer(SceneConfig().vocabulary(), max_length=10)


def tiny(latent=False, **kw) -> DiffusionConfig:
    ae = AutoencoderConfig(block_out_channels=(8, 16), latent_channels=4, norm_num_groups=4,
                           mid_block_attention=False) if latent else None
    return DiffusionConfig(image_size=8, latent=latent, block_out_channels=(8, 16), norm_num_groups=4,
                           attention_heads=2, text=TextEncoderConfig(vocab_size=TOK.vocab_size, hidden_size=16,
                                                                     num_layers=1, num_heads=2, max_length=10),
                           autoencoder=ae, **kw)


def make(latent=False, **kw) -> TextToImageDiffusion:
    torch.manual_seed(0)
    return TextToImageDiffusion(tiny(latent, **kw), null_input_ids=TOK.encode([""])[0][0])


def batch(n=4):
    """Scenes at 8 px (one object each) and their captions' token ids."""
    data = generate_scenes(n, SceneConfig(image_size=8, counts=(1,)), seed=0)
    return data.float_images(), TOK.encode(data.captions)[0]


@pytest.mark.parametrize("latent", [False, True])
def test_shapes_and_loss(latent):
    model = make(latent)
    x, ids = batch()
    z = model.encode_images(x)
    assert z.shape == ((4, 4, 4, 4) if latent else (4, 3, 8, 8))
    assert model.decode(z).shape == x.shape
    emb = model.encode_text(ids)
    assert emb.shape == (4, 10, 16)
    t = torch.tensor([0, 10, 500, 999])
    assert model.predict(z, t, emb).shape == z.shape
    out = model(images=x, input_ids=ids)
    loss = out.loss
    assert out.logits is None and loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert model.unet.conv_in.weight.grad is not None
    if latent:
        assert all(p.grad is None for p in model.autoencoder.parameters())
    with pytest.raises(ValueError, match="exactly one"):
        model(images=x, latents=z, input_ids=ids)
    with pytest.raises(ValueError, match="exactly one"):
        model(images=x)


def test_noising_and_targets_match_diffusers_scheduler():
    model = make(prediction_type="v_prediction")
    x0, noise = torch.randn(5, 3, 8, 8), torch.randn(5, 3, 8, 8)
    t = torch.tensor([0, 1, 250, 700, 999])
    sched = model.noise_scheduler
    torch.testing.assert_close(model.add_noise(x0, noise, t), sched.add_noise(x0, noise, t))
    torch.testing.assert_close(model.target(x0, noise, t), sched.get_velocity(x0, noise, t))
    assert torch.equal(make().target(x0, noise, t), noise)


def test_caption_dropout_replaces_captions_by_the_empty_one():
    model = make(caption_dropout=0.999)
    x, ids = batch()
    torch.manual_seed(1)
    dropped = model(images=x, input_ids=ids).loss
    torch.manual_seed(1)
    model.eval()   # eval: no dropout; same noise draws after the (skipped) dropout draw
    torch.rand(4)
    null = model(images=x, input_ids=model.null_input_ids.expand(4, -1)).loss
    torch.testing.assert_close(dropped, null)


def test_classifier_free_guidance_math():
    u, c = torch.randn(3, 4), torch.randn(3, 4)
    torch.testing.assert_close(classifier_free_guidance(u, c, 1.0), c)
    torch.testing.assert_close(classifier_free_guidance(u, c, 0.0), u)
    torch.testing.assert_close(classifier_free_guidance(u, c, 3.0), u + 3 * (c - u))


def test_generate_applies_guidance_with_the_ddim_scheduler():
    """generate's batched CFG equals a hand-written loop over diffusers' DDIMScheduler."""
    model = make().eval()
    _, ids = batch(2)
    w, steps = 2.5, 4
    got = generate(model, input_ids=ids, num_inference_steps=steps, guidance_scale=w,
                   generator=torch.Generator().manual_seed(0))
    sched = build_sampler(model, "ddim")
    sched.set_timesteps(steps)
    x = torch.randn((2, 3, 8, 8), generator=torch.Generator().manual_seed(0))
    cond, uncond = model.encode_text(ids), model.null_text_embeds(2)
    with torch.no_grad():
        for t in sched.timesteps:
            tt = t.expand(2)
            e = classifier_free_guidance(model.predict(x, tt, uncond), model.predict(x, tt, cond), w)
            x = sched.step(e, t, x).prev_sample
    torch.testing.assert_close(got, x.clamp(-1, 1), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("sampler", ["ddim", "ddpm", "dpm++", "euler"])
def test_every_sampler_produces_images(sampler):
    model = make(latent=sampler == "ddim")
    _, ids = batch(3)
    out = generate(model, input_ids=ids, num_inference_steps=3, guidance_scale=2.0, sampler=sampler,
                   generator=torch.Generator().manual_seed(0))
    assert out.shape == (3, 3, 8, 8) and out.min() >= -1 and out.max() <= 1 and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="sampler"):
        build_sampler(model, "heun2")


def test_training_through_the_shared_trainer_lowers_the_loss(tmp_path):
    model = make()
    x, ids = batch(16)
    cfg = TrainConfig(max_steps=40, lr=3e-3, precision="fp32", progress_bar=False, run_dir=str(tmp_path / "run"),
                      warmup_steps=5, log_every=1)
    history, ema = train_diffusion(model, {"images": x, "input_ids": ids}, cfg, batch_size=16, ema_half_life=10)
    losses = history.losses
    assert sum(losses[-10:]) / 10 < 0.7 * sum(losses[:10]) / 10
    assert ema.num_updates == 40 and (tmp_path / "run" / "checkpoints").exists()


def test_autoencoder_trains():
    model = make(latent=True)
    x, _ = batch(32)
    ae = model.autoencoder
    before = autoencoder_loss(ae, {"images": x})[0].item()
    cfg = TrainConfig(max_steps=40, lr=3e-3, precision="fp32", progress_bar=False)
    h = train_autoencoder(ae, x, cfg, batch_size=32)
    after = autoencoder_loss(ae, {"images": x})[0].item()
    assert after < 0.5 * before, (before, after)
    assert not any(p.requires_grad for p in ae.parameters()) and len(h.train) == 40


def test_config_validation_and_sd2_shapes():
    with pytest.raises(ValueError, match="prediction_type"):
        tiny(prediction_type="x0")
    with pytest.raises(ValueError, match="autoencoder"):
        DiffusionConfig(latent=True)
    with pytest.raises(ValueError, match="unknown"):
        DiffusionConfig.from_dict({"bogus": 1})
    assert DiffusionConfig.from_dict(tiny(latent=True).to_dict()) == tiny(latent=True)
    sd2 = sd2_config()
    assert sd2.latent_size == 64 and sd2.unet_channels == 4 and sd2.text.hidden_size == 1024
    with torch.device("meta"):
        unet = build_unet(sd2)
    n = sum(p.numel() for p in unet.parameters())
    assert 860e6 < n < 870e6, n   # SD2's UNet has 865.9M parameters
