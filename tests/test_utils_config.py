"""shared.utils.config: strict, nested dataclass building from plain dicts."""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from shared.experiment import NotebookPresets, ParameterError
from shared.train import TrainConfig
from shared.utils.config import StrictConfig, from_dict


@dataclass
class Inner(StrictConfig):
    width: int = 4
    grid: tuple[float, ...] = (1.0,)


@dataclass
class Outer(StrictConfig):
    inner: Inner = field(default_factory=Inner)
    maybe: Inner | None = None
    many: dict[str, Inner] = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)


def test_nested_build_and_round_trip():
    o = Outer.from_dict({"inner": {"width": 8, "grid": [1e-3, 3e-3]}, "maybe": {"width": 2},
                         "many": {"a": {"width": 1}}, "train": {"max_steps": 7, "betas": [0.9, 0.98]}})
    assert o.inner.width == 8 and o.inner.grid == (1e-3, 3e-3)
    assert isinstance(o.maybe, Inner) and o.maybe.width == 2
    assert o.many["a"].width == 1 and o.train.max_steps == 7 and o.train.betas == (0.9, 0.98)
    assert Outer.from_dict(o.to_dict()) == o


def test_unknown_key_names_the_valid_ones_and_where():
    with pytest.raises(ValueError, match=r"unknown Inner key\(s\) \['depth'\] under 'inner'.*valid keys: \['grid', 'width'\]"):
        from_dict(Outer, {"inner": {"depth": 3}})


def test_notebook_presets_raise_parameter_error():
    presets = NotebookPresets(Inner, {"smoke": {"width": 2}})
    assert presets.build("smoke").width == 2
    assert presets.build("smoke", {"width": 5}).width == 5
    with pytest.raises(ParameterError, match="no preset for scale 'full'"):
        presets.build("full")
    bad = NotebookPresets(Inner, {"smoke": {"width": 2, "depth": 1}})
    with pytest.raises(ParameterError, match="does not build into Inner"):
        bad.build("smoke")
    with pytest.raises(ValueError, match="unknown scale"):
        NotebookPresets(Inner, {"tiny": {}})
