"""The commoncanvas rehearsal's overrides: they resolve against the full preset, the scene studies' only
shrink sizes, and a flavour dict with size fields keeps every other value of the flavour (sd2_full_scale's
model entry)."""
from __future__ import annotations

from papers.commoncanvas import rehearsal, scales
from papers.commoncanvas.text_to_image import diffusion_model_config


SCENE_STUDIES = ("01_components", "02_telephoning", "03_data_scarcity")


def test_overrides_resolve_against_the_full_presets():
    assert not set(rehearsal.NOTEBOOKS) & set(rehearsal.UNLAUNCHED)
    assert set(SCENE_STUDIES) <= {*rehearsal.NOTEBOOKS, *rehearsal.UNLAUNCHED}
    assert "03_data_scarcity" in rehearsal.NOTEBOOKS            # it launches its sizes as jobs
    for notebook, overrides in {**rehearsal.UNLAUNCHED, **rehearsal.NOTEBOOKS}.items():
        scales.NOTEBOOKS[notebook].build("full", overrides)


def _shrunk_leaves(full, override, path=""):
    """The override's leaves that are not a size at most the full preset's (numbers; lists of numbers no
    longer and elementwise no larger, sizes lists: no larger than the largest)."""
    if isinstance(override, dict):
        return [bad for key, value in override.items() for bad in _shrunk_leaves(full[key], value, f"{path}{key}.")]
    if isinstance(override, list):
        if path.rstrip(".") == "sizes":
            return [] if max(override) <= max(full) else [path]
        return [] if len(override) <= len(full) and all(o <= f for o, f in zip(override, full)) else [path]
    if isinstance(override, bool) or not isinstance(override, (int, float)):
        return [path]                                            # not a size: must not be overridden
    return [] if override <= full else [path]


def test_the_scene_studies_only_shrink_sizes():
    overrides = {**rehearsal.UNLAUNCHED, **rehearsal.NOTEBOOKS}
    for notebook in SCENE_STUDIES:
        full = scales.NOTEBOOKS[notebook].resolve("full")
        assert not _shrunk_leaves(full, overrides[notebook]), notebook
        built = scales.NOTEBOOKS[notebook].build("full", overrides[notebook])
        assert built.to_dict().keys() == scales.NOTEBOOKS[notebook].build("full").to_dict().keys()
    tel = scales.NOTEBOOKS["02_telephoning"].build("full", overrides["02_telephoning"])
    scarcity = scales.NOTEBOOKS["03_data_scarcity"].build("full", overrides["03_data_scarcity"])
    # 03's largest size reuses 02's model, as at full; its jobs are preempted once at a checkpoint mid-run
    assert max(scarcity.sizes) == tel.unlabelled_images
    assert max(scales.SCARCITY_FULL["sizes"]) == scales.TELEPHONING_FULL["unlabelled_images"]
    assert 0 < tel.train.checkpoint_every < tel.train.max_steps
    assert scales.TELEPHONING_FULL["train"]["checkpoint_every"] > 0


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
