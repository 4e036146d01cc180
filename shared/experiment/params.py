"""Validation of a notebook's papermill parameters and selection of its scale preset.

Every notebook's first code cell (tagged ``parameters``) holds plain literals::

    scale = "smoke"; seed = 0; out_dir = None; nproc_per_node = 1; nnodes = 1
    rdzv_endpoint = None; launcher = "local"; data_dir = None; overrides = {}

``nnodes > 1`` needs ``rdzv_endpoint`` ("host:port" that every node reaches, every node running
the same notebook), ``launcher = "slurm"`` (one notebook submits the job for all nodes) or
``launcher = "localhost"`` (every node on this machine: the CPU rehearsal, ``ci/run_notebooks.py --rehearse``).

``validate_params`` checks their types and values; ``resolve_config`` picks the preset for the
scale and applies ``overrides``. Every error names what would have been valid.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

SCALES = ("smoke", "small", "full")
LAUNCHERS = ("local", "slurm", "localhost")      # as shared.train.launch.LAUNCHERS

# name -> (accepted types, description); None is accepted where listed.
STANDARD_PARAMS: dict[str, tuple[tuple[type, ...], str]] = {
    "scale": ((str,), f"one of {', '.join(SCALES)}"),
    "seed": ((int,), "an integer"),
    "out_dir": ((str, type(None)), "a path or None"),
    "nproc_per_node": ((int,), "an integer >= 1"),
    "nnodes": ((int,), "an integer >= 1"),
    "rdzv_endpoint": ((str, type(None)), "'host:port' of the rendezvous node (several nodes), or None"),
    "launcher": ((str,), f"one of {', '.join(LAUNCHERS)}"),
    "data_dir": ((str, type(None)), "a path or None"),
    "overrides": ((dict, type(None)), "a dict of preset keys to override, or None"),
}


# may be left out of a params dict (their defaults apply)
OPTIONAL_PARAMS = {"overrides": {}, "data_dir": None, "out_dir": None, "rdzv_endpoint": None, "launcher": "local"}


class ParameterError(ValueError):
    """A notebook parameter or override is invalid; the message names the valid choices."""


def _type_name(value: Any) -> str:
    return type(value).__name__


def validate_params(params: Mapping[str, Any], extra: Mapping[str, tuple[type, ...]] | None = None) -> dict:
    """Check the standard parameters (and a notebook's ``extra`` ones, name -> accepted types).

    Returns a plain dict copy. Raises ParameterError for unknown names, wrong types or values.
    """
    extra = dict(extra or {})
    known = {**{k: v[0] for k, v in STANDARD_PARAMS.items()}, **extra}
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ParameterError(f"unknown parameter(s) {unknown}; valid parameters: {sorted(known)}")
    missing = sorted(set(STANDARD_PARAMS) - set(params) - set(OPTIONAL_PARAMS))
    if missing:
        raise ParameterError(f"missing parameter(s) {missing}; every notebook declares {sorted(STANDARD_PARAMS)}")
    out = {}
    for name, value in params.items():
        types = known[name]
        # bool is an int subclass; a bool where an int is expected is almost always a mistake.
        if isinstance(value, bool) and bool not in types:
            ok = False
        else:
            ok = isinstance(value, types) or (float in types and isinstance(value, int))
        if not ok:
            want = STANDARD_PARAMS[name][1] if name in STANDARD_PARAMS else " or ".join(t.__name__ for t in types)
            raise ParameterError(f"parameter {name}={value!r} has type {_type_name(value)}; expected {want}")
        out[name] = value
    if out["scale"] not in SCALES:
        raise ParameterError(f"unknown scale {out['scale']!r}; valid scales: {', '.join(SCALES)}")
    for name in ("nproc_per_node", "nnodes"):
        if out[name] < 1:
            raise ParameterError(f"parameter {name}={out[name]} must be >= 1")
    for name, default in OPTIONAL_PARAMS.items():
        out.setdefault(name, default)
    out["overrides"] = dict(out["overrides"] or {})
    if out["launcher"] not in LAUNCHERS:
        raise ParameterError(f"unknown launcher {out['launcher']!r}; valid launchers: {', '.join(LAUNCHERS)}")
    endpoint = out["rdzv_endpoint"]
    if endpoint is not None:
        host, _, port = endpoint.rpartition(":")
        if not host or not port.isdigit():
            raise ParameterError(f"rdzv_endpoint={endpoint!r} must be 'host:port' (e.g. 'node0:29500')")
    if out["nnodes"] > 1 and out["launcher"] == "local" and endpoint is None:
        raise ParameterError(f"nnodes={out['nnodes']} needs rdzv_endpoint='host:port' (a host every node reaches; "
                             "run the same notebook on every node) or launcher='slurm' (submits all nodes)")
    return out


def resolve_config(presets: Mapping[str, Mapping[str, Any]], scale: str,
                   overrides: Mapping[str, Any] | None = None) -> dict:
    """The preset for ``scale`` (deep-copied) with ``overrides`` applied.

    An override must name a key of the preset and keep its type (an int may replace a float, and
    None may replace anything or be replaced); nested dicts are overridden key by key. A model entry
    that names a ``flavour`` also takes any other key: a field of the flavour's config (e.g. a rehearsal's
    ``n_layer``), checked when the model is built (``shared.models.flavours.resolve_model_config``).
    """
    if scale not in presets:
        raise ParameterError(f"this notebook has no preset for scale {scale!r}; it has: {', '.join(presets)}")
    config = copy.deepcopy(dict(presets[scale]))
    _apply(config, dict(overrides or {}), path="")
    return config


def _apply(config: dict, overrides: dict, path: str) -> None:
    for key, value in overrides.items():
        where = f"{path}{key}"
        if key not in config and "flavour" in config:         # a flavour's config field, over the flavour
            config[key] = value
            continue
        if key not in config:
            raise ParameterError(f"unknown override {where!r}; valid keys{' under ' + path[:-1] if path else ''}: "
                                 f"{', '.join(sorted(config))}")
        old = config[key]
        if isinstance(old, dict) and isinstance(value, dict):
            _apply(old, value, path=f"{where}.")
            continue
        compatible = (old is None or value is None or type(value) is type(old)
                      or (isinstance(old, float) and isinstance(value, int) and not isinstance(value, bool))
                      or (isinstance(old, (list, tuple)) and isinstance(value, (list, tuple))))
        if not compatible:
            raise ParameterError(f"override {where}={value!r} has type {_type_name(value)}; "
                                 f"the preset's value {old!r} is {_type_name(old)}")
        config[key] = value
