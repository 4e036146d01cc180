"""The commoncanvas rehearsal's overrides: they resolve against the full preset, and a flavour dict with
size fields keeps every other value of the flavour (sd2_full_scale's model entry)."""
from __future__ import annotations

from papers.commoncanvas import rehearsal, scales
from papers.commoncanvas.text_to_image import diffusion_model_config


def test_overrides_resolve_against_the_full_presets():
    for notebook, overrides in rehearsal.NOTEBOOKS.items():
        scales.NOTEBOOKS[notebook].build("full", overrides)


def test_flavour_dict_overrides_only_the_fields_it_names():
    plain = diffusion_model_config("sd2-unet", 100, 256, 77, "text_encoder", "vae")
    assert diffusion_model_config({"flavour": "sd2-unet"}, 100, 256, 77, "text_encoder", "vae") == plain
    small = diffusion_model_config({"flavour": "sd2-unet", "block_out_channels": [32, 32, 64, 64],
                                    "text": {"hidden_size": 32}, "autoencoder": {"block_out_channels": [8] * 4}},
                                   100, 64, 77, "text_encoder", "vae")
    assert small.block_out_channels == (32, 32, 64, 64) and small.image_size == 64
    assert small.text.hidden_size == 32 and small.text.num_layers == plain.text.num_layers
    assert small.text.vocab_size == 100 and small.text.pretrained_path == "text_encoder"
    assert small.autoencoder.block_out_channels == (8, 8, 8, 8)
    assert small.autoencoder.scaling_factor == plain.autoencoder.scaling_factor == 0.18215
    assert small.autoencoder.pretrained_path == "vae" and not small.train_text_encoder
    assert (small.down_block_types, small.use_linear_projection) == (plain.down_block_types, True)
