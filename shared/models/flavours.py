"""Named model sizes: presets name a flavour instead of repeating its dimensions.

    model_config("mpt-7b")                       # -> GPTConfig
    model_config("mosaicbert-base", vocab_size=30528)
    flavour("cifar-resnet-20").family            # -> "vision"

Every entry gives its source. Overrides replace fields of the flavour's config (a size shrunk for a
rehearsal, a vocabulary trained locally). Add a flavour here, once, when a second preset needs it
or when it names a published model.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from collections.abc import Callable, Mapping
from typing import Any

from shared.models.bert import BertConfig
from shared.models.diffusion import DiffusionConfig, sd2_config
from shared.models.gpt import GPTConfig
from shared.models.vision import VisionConfig, paper_config
from shared.utils.config import from_dict


@dataclass(frozen=True)
class Flavour:
    """A named configuration: ``family`` in FAMILIES, ``make`` builds its config, ``source`` cites it."""
    family: str
    make: Callable[..., Any]
    source: str
    fields: dict[str, Any] = field(default_factory=dict)


def _gpt(**kw) -> Callable[..., GPTConfig]:
    return lambda **o: GPTConfig(**{**kw, **o})


def _bert(**kw) -> Callable[..., BertConfig]:
    return lambda **o: BertConfig(**{**kw, **o})


def _vision(name: str) -> Callable[..., VisionConfig]:
    return lambda **o: paper_config(name, **o)


def _sd2(**o) -> DiffusionConfig:
    cfg = sd2_config()
    return dataclasses.replace(cfg, **o) if o else cfg


_MOSAIC = dict(alibi=True, glu=True, unpad=True, low_precision_norm=True, attn_dropout=0.0, vocab_size=30528,
               max_seq_len=128)

FLAVOURS: dict[str, Flavour] = {
    # decoders
    "llama2-7b": Flavour("gpt", _gpt(vocab_size=32000, n_layer=32, n_head=32, d_model=4096, d_ff=11008,
                                     max_seq_len=4096, position="rope", norm="rmsnorm", mlp="swiglu",
                                     norm_eps=1e-5, rope_theta=10000.0),
                         "Touvron et al. 2023, Table 2; meta-llama/Llama-2-7b-hf config.json"),
    "mpt-7b": Flavour("gpt", _gpt(vocab_size=50432, n_layer=32, n_head=32, d_model=4096, d_ff=16384,
                                  max_seq_len=2048, position="alibi", norm="layernorm", mlp="gelu", bias=False,
                                  tie_embeddings=True),
                      "MosaicML 2023, MPT-7B model card; mosaicml/mpt-7b config.json (d_model 4096, 32 layers, "
                      "32 heads, expansion 4, ALiBi, no bias, vocab 50432, max_seq_len 2048, tied)"),
    "biomedlm-2.7b": Flavour("gpt", _gpt(vocab_size=28896, n_layer=32, n_head=20, d_model=2560, d_ff=10240,
                                         max_seq_len=1024, position="learned", norm="layernorm", mlp="gelu",
                                         bias=True, tie_embeddings=True),
                             "Bolton et al. 2024 (arXiv 2403.18421v1) Sec. 3.1, Table 1 (hidden 2560, 20 heads, "
                             "32 layers, vocab 28896, sequence 1024, learned absolute positions; GPT-2-like, so "
                             "d_ff 4 x 2560)"),
    # encoders
    "bert-base": Flavour("bert", _bert(), "Devlin et al. 2019; bert-base-uncased config.json"),
    "bert-large": Flavour("bert", _bert(n_layer=24, n_head=16, d_model=1024, d_ff=4096),
                          "Devlin et al. 2019; bert-large-uncased config.json"),
    "mosaicbert-base": Flavour("bert", _bert(**_MOSAIC),
                               "Portes et al. 2023, Sec. 2-3; mosaicml/examples v0.0.4 "
                               "yamls/main/mosaic-bert-base-uncased.yaml (vocab 30528, seq 128)"),
    "mosaicbert-large": Flavour("bert", _bert(**_MOSAIC, n_layer=24, n_head=16, d_model=1024, d_ff=4096),
                                "Portes et al. 2023, Sec. 3.3 (BERT-large shape with the MosaicBERT switches)"),
    # diffusion
    "sd2-unet": Flavour("diffusion", _sd2, "Rombach et al., stabilityai/stable-diffusion-2-base unet/config.json"),
    # vision (CIFAR-10 shapes)
    "cifar-mlp-1024-512-128": Flavour("vision", _vision("cifar_lenet_1024_512_128"),
                                      "Ankner et al. 2022 (LeNet-300-100-style MLP on CIFAR-10)"),
    "cifar-lenet-conv": Flavour("vision", _vision("cifar_lenet_conv"), "LeCun et al. 1998 shape on CIFAR-10"),
    "cifar-resnet-20": Flavour("vision", _vision("cifar_resnet_20"), "He et al. 2016, Sec. 4.2 (CIFAR ResNet-20)"),
    "cifar-vgg-16": Flavour("vision", _vision("cifar_vgg_16"), "Simonyan & Zisserman 2015 (VGG-16, CIFAR head)"),
}

FAMILIES = ("gpt", "bert", "diffusion", "vision")
CONFIG_CLASSES: dict[str, type] = {"gpt": GPTConfig, "bert": BertConfig, "diffusion": DiffusionConfig,
                                   "vision": VisionConfig}


def flavour(name: str) -> Flavour:
    if name not in FLAVOURS:
        raise ValueError(f"unknown model flavour {name!r}; known flavours: {', '.join(sorted(FLAVOURS))}")
    return FLAVOURS[name]


def model_config(name: str, **overrides: Any) -> Any:
    """The config of flavour ``name`` (GPTConfig, BertConfig, DiffusionConfig or VisionConfig)."""
    return flavour(name).make(**overrides)


def resolve_model_config(model: str | Mapping[str, Any], family: str, **fields: Any) -> Any:
    """The config of a preset's ``model`` entry, for a model of ``family``.

    ``model``: a flavour name, ``{"flavour": name, **overrides}``, or plain fields of the family's
    config class. ``fields`` are applied last (e.g. the tokenizer's vocab_size, the data's image
    shape). A flavour of another family, or an unknown field, raises ValueError naming the valid ones.
    """
    if family not in CONFIG_CLASSES:
        raise ValueError(f"unknown model family {family!r}; valid families: {', '.join(FAMILIES)}")
    if not isinstance(model, (str, Mapping)):
        raise ValueError(f"model must be a flavour name or a dict of {CONFIG_CLASSES[family].__name__} fields, "
                         f"got {type(model).__name__}")
    merged = {**({"flavour": model} if isinstance(model, str) else dict(model)), **fields}
    name = merged.pop("flavour", None)
    cls = CONFIG_CLASSES[family]
    if name is None:
        return from_dict(cls, merged)
    if flavour(name).family != family:
        raise ValueError(f"model flavour {name!r} is a {flavour(name).family} model; this needs a {family} flavour")
    unknown = sorted(set(merged) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise ValueError(f"unknown {cls.__name__} key(s) {unknown} over flavour {name!r}; "
                         f"valid keys: {sorted(f.name for f in dataclasses.fields(cls))}")
    return model_config(name, **merged)


__all__ = ["CONFIG_CLASSES", "FLAVOURS", "FAMILIES", "Flavour", "flavour", "model_config", "resolve_model_config"]
