"""One strict-config helper: dataclasses that build from plain dicts and refuse unknown keys.

    @dataclass
    class RunSpec(StrictConfig):
        train: TrainConfig
        lr_grid: tuple[float, ...] = (1e-3,)

    RunSpec.from_dict({"train": {"max_steps": 10}, "lr_grid": [1e-3, 3e-3]})

Nested dataclass fields (also ``X | None``, ``list[X]``, ``tuple[X, ...]`` and ``dict[str, X]``
of dataclasses) are built from nested dicts; lists become tuples where the field is a tuple. An
unknown key raises ``ValueError`` naming the valid keys and where in the tree it was found.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _build(tp: Any, value: Any, where: str) -> Any:
    """Convert the plain ``value`` to the annotated type ``tp`` (dataclasses and tuples only)."""
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        # X | None (or a union of plain types): build into the first dataclass member a dict fits.
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        if isinstance(value, Mapping):
            for a in members:
                if dataclasses.is_dataclass(a) or typing.get_origin(a) in (dict,):
                    return _build(a, value, where)
        if isinstance(value, (list, tuple)):
            for a in members:
                if typing.get_origin(a) in (list, tuple):
                    return _build(a, value, where)
        return value
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ValueError(f"{where or tp.__name__}: expected a dict of {tp.__name__} keys, got {type(value).__name__}")
        return from_dict(tp, value, where=where)
    if origin is tuple and isinstance(value, (list, tuple)):
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_build(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        return tuple(_build(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value))) \
            if args and len(args) == len(value) else tuple(value)
    if origin is list and isinstance(value, (list, tuple)):
        (arg,) = typing.get_args(tp) or (Any,)
        return [_build(arg, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict and isinstance(value, Mapping):
        args = typing.get_args(tp)
        arg = args[1] if len(args) == 2 else Any
        return {k: _build(arg, v, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    return value


def from_dict(cls: type[T], d: Mapping[str, Any], where: str = "") -> T:
    """Build dataclass ``cls`` from the plain mapping ``d``, strictly (see the module docstring)."""
    if not isinstance(d, Mapping):
        raise ValueError(f"{where or cls.__name__}: expected a dict, got {type(d).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(d) - set(fields))
    if unknown:
        at = f" under {where!r}" if where else ""
        raise ValueError(f"unknown {cls.__name__} key(s) {unknown}{at}; valid keys: {sorted(fields)}")
    hints = _hints(cls)
    kwargs = {k: _build(hints.get(k, Any), v, f"{where}.{k}" if where else k) for k, v in d.items()}
    return cls(**kwargs)


def to_dict(obj: Any) -> Any:
    """A dataclass tree back to plain dicts, lists and scalars (tuples become lists)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


class StrictConfig:
    """Mixin for dataclasses: ``Cls.from_dict(d)`` (strict, nested) and ``obj.to_dict()``."""

    @classmethod
    def from_dict(cls: type[T], d: Mapping[str, Any]) -> T:
        return from_dict(cls, d)

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


__all__ = ["StrictConfig", "from_dict", "to_dict"]
