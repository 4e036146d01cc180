"""Every training speedup leaves the model's function unchanged: SDPA vs plain attention,
low-precision norms (identical without autocast, close under bf16 autocast), channels_last,
precomputed latents and text embeddings vs online encoding; and the benchmark runs."""
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from papers.commoncanvas import speedup_benchmark as bench
from papers.commoncanvas.scenes import SceneConfig, WordTokenizer, generate_scenes
from shared.models.diffusion import (AutoencoderConfig, DiffusionConfig, TextEncoderConfig, TextToImageDiffusion,
                                     sd2_config)
from papers.commoncanvas.diffusion_speedups import (LowPrecisionGroupNorm, LowPrecisionLayerNorm, SpeedupConfig,
                                                    apply_speedups, precompute_latents_and_text, set_attention,
                                                    use_low_precision_norms)

TOK = WordTokenizer(SceneConfig().vocabulary(), max_length=10)
REPO = Path(__file__).resolve().parents[1]


def make(train_text_encoder=False) -> TextToImageDiffusion:
    torch.manual_seed(0)
    cfg = DiffusionConfig(image_size=16, latent=True, block_out_channels=(8, 16), norm_num_groups=4,
                          attention_heads=2, train_text_encoder=train_text_encoder,
                          text=TextEncoderConfig(vocab_size=TOK.vocab_size, hidden_size=16, num_layers=1, num_heads=2,
                                                 max_length=10),
                          autoencoder=AutoencoderConfig(block_out_channels=(8, 16), latent_channels=4,
                                                        norm_num_groups=4))
    return TextToImageDiffusion(cfg, null_input_ids=TOK.encode([""])[0][0]).eval()


@pytest.fixture(scope="module")
def data():
    d = generate_scenes(6, SceneConfig(image_size=16), seed=0)
    return d.float_images(), TOK.encode(d.captions)[0]


def outputs(model, x, ids):
    z = model.encode_images(x)
    emb = model.encode_text(ids)
    t = torch.tensor([3, 50, 400, 999, 10, 600])
    return model.predict(z, t, emb), emb, model.decode(z)


def test_sdpa_attention_matches_plain(data):
    model = make()
    set_attention(model, "plain")
    ref = outputs(model, *data)
    procs = {type(p).__name__ for p in model.unet.attn_processors.values()}
    assert procs == {"AttnProcessor"} and model.text_encoder.model.config._attn_implementation == "eager"
    set_attention(model, "sdpa")
    assert {type(p).__name__ for p in model.unet.attn_processors.values()} == {"AttnProcessor2_0"}
    for a, b in zip(ref, outputs(model, *data)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="plain"):
        set_attention(model, "flash3")


def test_low_precision_norms_identical_in_fp32_and_close_under_bf16_autocast():
    torch.manual_seed(0)
    gn, ln = nn.GroupNorm(4, 16), nn.LayerNorm(16)
    with torch.no_grad():
        for m in (gn, ln):
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.5, 0.5)
    x4, x3 = torch.randn(2, 16, 5, 5) * 3 + 1, torch.randn(2, 7, 16) * 3 + 1
    ref_g, ref_l = gn(x4), ln(x3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        auto_g = gn(x4)
    assert auto_g.dtype == torch.float32          # autocast keeps the plain GroupNorm in fp32
    holder = nn.Sequential(gn, ln)
    assert use_low_precision_norms(holder) == 2
    assert isinstance(gn, LowPrecisionGroupNorm) and isinstance(ln, LowPrecisionLayerNorm)
    assert torch.equal(gn(x4), ref_g) and torch.equal(ln(x3), ref_l)   # no autocast: the same kernel
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low_g, low_l = gn(x4), ln(x3)
    assert low_g.dtype == torch.bfloat16 and low_l.dtype == torch.bfloat16
    torch.testing.assert_close(low_g.float(), ref_g, atol=0.05, rtol=0.02)
    torch.testing.assert_close(low_l.float(), ref_l, atol=0.05, rtol=0.02)
    assert use_low_precision_norms(holder, enabled=False) == 2 and type(gn) is nn.GroupNorm


def test_all_model_side_speedups_keep_the_function(data):
    ref = outputs(make(), *data)
    model = apply_speedups(make(), SpeedupConfig(attention="sdpa", low_precision_norms=True, channels_last=True))
    assert model.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    n_low = sum(isinstance(m, (LowPrecisionGroupNorm, LowPrecisionLayerNorm)) for m in model.modules())
    assert n_low > 5
    for a, b in zip(ref, outputs(model, *data)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError):
        SpeedupConfig(attention="xformers")


def test_precomputed_latents_and_text_give_the_same_loss(data):
    model = make()
    x, ids = data
    pre = precompute_latents_and_text(model, x, ids, batch_size=4)
    assert pre["latents"].shape == (6, 4, 8, 8) and pre["text_embeds"].shape == (6, 10, 16)
    torch.manual_seed(5)
    online = model(images=x, input_ids=ids).loss
    torch.manual_seed(5)
    offline = model(latents=pre["latents"], text_embeds=pre["text_embeds"]).loss
    torch.testing.assert_close(online, offline)
    model.train()   # caption dropout draws the same way for ids and for precomputed embeddings
    torch.manual_seed(6)
    online = model(images=x, input_ids=ids).loss
    torch.manual_seed(6)
    offline = model(latents=pre["latents"], text_embeds=pre["text_embeds"]).loss
    torch.testing.assert_close(online, offline)
    with pytest.raises(ValueError, match="frozen"):
        precompute_latents_and_text(make(train_text_encoder=True), x, ids)


def _forward_flops(cfg, device):
    """GFLOPs of one image through the autoencoder's encoder, the UNet and the text encoder."""
    def count(fn):
        with FlopCounterMode(display=False) as fc:
            fn()
        return fc.get_total_flops() / 1e9

    with torch.device(device), torch.no_grad():
        m = TextToImageDiffusion(cfg)
        x, z = torch.randn(1, 3, cfg.image_size, cfg.image_size), torch.randn(1, 4, cfg.latent_size, cfg.latent_size)
        e = torch.randn(1, cfg.text.max_length, cfg.text.hidden_size)
        ids = torch.ones(1, cfg.text.max_length, dtype=torch.long)
        return (count(lambda: m.autoencoder.encode(x)),
                count(lambda: m.unet(z, torch.tensor([5]), encoder_hidden_states=e)),
                count(lambda: m.text_encoder(ids)))


def test_benchmark_keeps_sd2_flop_proportions():
    """The tiny benchmark model spends its FLOPs like SD2 at 512 px: encoder ~1.39x, text ~0.05x the UNet."""
    sd2 = sd2_config(vocab_size=1000)
    ae, unet, text = _forward_flops(sd2, "meta")
    assert 780 < unet < 830 and 1080 < ae < 1150, (ae, unet)     # SD2-base: ~0.8 TFLOPs per UNet forward
    t_ae, t_unet, t_text = _forward_flops(bench.model_config(bench.BenchConfig(), 30), "cpu")
    assert t_ae / t_unet == pytest.approx(ae / unet, rel=0.1)
    assert t_text / t_unet == pytest.approx(text / unet, rel=0.3)
    named = bench.model_config(bench.BenchConfig(model="sd2-unet", image_size=64), 30)
    assert named.block_out_channels == sd2.block_out_channels and named.image_size == 64
    assert named.text.vocab_size == 30


def test_benchmark_runs_every_variant(tmp_path):
    cfg = bench.BenchConfig(image_size=16, global_batch_size=4, warmup_steps=1, steps_per_round=1, rounds=1,
                            unet_channels=(8, 16), autoencoder_channels=(8, 16), text_hidden=16, text_layers=1,
                            norm_groups=4, include_compile=False, clock="wall")
    rows = bench.run_benchmark(cfg)
    names = [r["variant"] for r in rows]
    assert names[0] == "baseline" and names[-1] == "all together" and len(names) == len(set(names)) >= 6
    for r in rows:
        assert r["samples_per_s"] > 0 and r["speedup"] > 0
    assert rows[0]["speedup"] == 1.0 and names[1] == bench.CONTROL
    assert bench.timing_noise(rows) == pytest.approx(abs(rows[1]["speedup"] - 1.0))
    one_by_one = bench.run_benchmark(dataclasses.replace(cfg, round_robin=False, variants=["all together"]))
    assert [r["variant"] for r in one_by_one] == ["baseline", bench.CONTROL, "all together"]
    no_control = dataclasses.replace(cfg, variants=["all together"], same_compute_control=False)
    assert bench.timing_noise(bench.run_benchmark(no_control)) is None


def test_benchmark_command_line_entry_point():
    """benchmarks/diffusion_speedups.py is a thin entry point of the paper module."""
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "diffusion_speedups.py"), "--help"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "--preset" in out.stdout
