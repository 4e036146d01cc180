"""Typed scale presets: what every ``papers/<name>/scales.py`` declares, one entry per notebook.

    # papers/<name>/scales.py
    @dataclass
    class SweepSpec(StrictConfig):        # the notebook's typed config
        model: str                        # a flavour name (shared.models.flavours) or a dims dict
        train: TrainConfig
        seeds: tuple[int, ...] = (0,)

    NOTEBOOKS = {"02_sweep": NotebookPresets(SweepSpec, {"smoke": {...}, "small": {...}, "full": {...}})}

    # the notebook
    run = start_run(PAPER, "02_sweep", params, presets=scales.NOTEBOOKS["02_sweep"])
    spec = run.spec                      # a SweepSpec; run.config is the same preset as a plain dict

The presets stay plain literals (papermill overrides, provenance and the gallery read them as
JSON); ``build`` turns one into the typed spec, so a wrong key or type fails at the first cell, and
``tests/test_scales.py`` builds every scale of every notebook, ``full`` included.

One vocabulary of keys across papers (``PRESET_KEY_SYNONYMS`` lists the names that are refused):
``max_steps`` (never ``steps``), ``global_batch_size`` / ``micro_batch_size`` (never ``batch_size``),
``lr``, ``weight_decay``, ``warmup_fraction`` or ``warmup_steps``, ``seeds``, ``model``, ``train``,
``data``, ``eval``.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from shared.utils.config import from_dict

from .params import SCALES, ParameterError, resolve_config

S = TypeVar("S")

# a key on the left is refused anywhere in a preset: the right says what to call it
PRESET_KEY_SYNONYMS: dict[str, str] = {
    "steps": "max_steps",
    "num_steps": "max_steps",
    "n_steps": "max_steps",
    "train_steps": "max_steps",
    "batch_size": "global_batch_size or micro_batch_size",
    "learning_rate": "lr",
    "wd": "weight_decay",
    "warmup": "warmup_fraction or warmup_steps",
    "seed_list": "seeds",
}


def synonym_keys(preset: Any, path: str = "") -> list[str]:
    """Every key (dotted path) in a nested preset that uses a refused synonym."""
    found = []
    if isinstance(preset, Mapping):
        for k, v in preset.items():
            where = f"{path}.{k}" if path else str(k)
            if k in PRESET_KEY_SYNONYMS:
                found.append(f"{where} (call it {PRESET_KEY_SYNONYMS[k]})")
            found += synonym_keys(v, where)
    elif isinstance(preset, (list, tuple)):
        for i, v in enumerate(preset):
            found += synonym_keys(v, f"{path}[{i}]")
    return found


@dataclass(frozen=True)
class NotebookPresets(Generic[S]):
    """A notebook's presets: scale -> plain dict, and the typed spec each one builds into."""
    spec: type[S]
    scales: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.scales) - set(SCALES))
        if unknown:
            raise ValueError(f"unknown scale(s) {unknown}; valid scales: {', '.join(SCALES)}")

    def resolve(self, scale: str, overrides: Mapping[str, Any] | None = None) -> dict:
        """The plain preset for ``scale`` with ``overrides`` applied (see resolve_config)."""
        return resolve_config(self.scales, scale, overrides)

    def build(self, scale: str, overrides: Mapping[str, Any] | None = None) -> S:
        """The typed spec for ``scale``; raises ParameterError naming the bad key or value."""
        return self.build_config(self.resolve(scale, overrides), where=scale)

    def build_config(self, config: Mapping[str, Any], where: str = "") -> S:
        try:
            return from_dict(self.spec, config)
        except (TypeError, ValueError) as e:
            raise ParameterError(f"preset{' ' + repr(where) if where else ''} does not build into "
                                 f"{self.spec.__name__}: {e}") from e


__all__ = ["NotebookPresets", "PRESET_KEY_SYNONYMS", "synonym_keys"]
