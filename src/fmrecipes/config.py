"""Dataclass configs loaded from YAML with dotted ``key=value`` overrides.

Unknown keys and wrongly typed values are errors that name the key and the valid choices.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from .errors import ConfigError

T = TypeVar("T")


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """Turn ``["train.lr=3e-4", "model.n_layer=2"]`` into a nested dict (values parsed as YAML)."""
    nested: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not of the form key=value")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError as exc:
            problem = str(getattr(exc, "problem", None) or exc).splitlines()[0]
            raise ConfigError(f"override '{item}': the value is not valid YAML ({problem}); quote it, or close "
                              "its brackets") from None
        node = nested
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override '{item}' sets a field inside '{part}', which is not a section")
        node[parts[-1]] = value
    return nested


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge ``extra`` into a copy of ``base``."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def read_yaml(path: str | Path, what: str = "config file") -> dict[str, Any]:
    """Read a YAML mapping, with one-line errors (naming ``what`` the file is) for a missing file or bad syntax."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{what} {p} is a directory; expected a YAML file")
    if not p.is_file():
        raise ConfigError(f"{what} {p} does not exist")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what} {p} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {p} must hold a mapping of keys, got {type(data).__name__}")
    return data


def _type_name(tp: Any) -> str:
    if get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; ints are accepted for floats."""
    origin = get_origin(tp)
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(f"{key}={value!r} is not valid; choose one of {', '.join(map(repr, get_args(tp)))}")
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as exc:
                errors.append(str(exc))
        expected = " or ".join(_type_name(a) for a in args if a is not type(None))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{key}={value!r} has the wrong type; expected {expected}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}={value!r} has the wrong type; expected a list")
        (inner, *_) = get_args(tp) or (Any,)
        return [_coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a section (mapping), got {value!r}")
        return build(tp, value, prefix=f"{key}.")
    if tp is Any:
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "3e-4" (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}={value!r} has the wrong type; expected a number")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}={value!r} has the wrong type; expected an integer")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}={value!r} has the wrong type; expected true or false")
        return value
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{key}={value!r} has the wrong type; expected a string")
        return str(value)
    raise ConfigError(f"{key}: unsupported config type {_type_name(tp)}")


def build(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build the dataclass ``cls`` from a nested dict, rejecting unknown keys."""
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            raise ConfigError(f"unknown config key '{prefix}{key}'; valid keys here: {', '.join(sorted(fields))}")
        factory = fields[key].default_factory
        if isinstance(value, dict) and factory is not dataclasses.MISSING:
            default = factory()
            if dataclasses.is_dataclass(default):  # keys not given keep the parent's default, not the class's
                value = merge(to_dict(default), value)
        kwargs[key] = _coerce(value, hints[key], f"{prefix}{key}")
    obj = cls(**kwargs)
    check = getattr(obj, "validate", None)
    if callable(check):
        # a nested section whose validate takes a ``prefix`` names its keys in full (``toy.net.kind``)
        named = prefix and "prefix" in inspect.signature(check).parameters
        check(prefix.rstrip(".")) if named else check()
    return obj


def load(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None) -> T:
    """Load ``cls`` from an optional YAML file plus ``key=value`` overrides."""
    data = read_yaml(path) if path else {}
    data = merge(data, parse_overrides(overrides or []))
    where = f" (in {path})" if path else ""
    try:
        return build(cls, data)
    except ConfigError as exc:
        raise ConfigError(f"{exc}{where}") from None


def to_dict(obj: Any) -> dict[str, Any]:
    """A dataclass as a plain nested dict (for config.yaml / config.json)."""
    return dataclasses.asdict(obj)


def to_yaml(obj: Any) -> str:
    """A dataclass config as the YAML text :func:`dump_yaml` writes."""
    return yaml.safe_dump(to_dict(obj), sort_keys=False)


def dump_yaml(obj: Any, path: str | Path) -> None:
    """Write a dataclass config as YAML (atomically)."""
    from .core.fileio import atomic_write_text

    atomic_write_text(Path(path), to_yaml(obj))


__all__ = ["build", "load", "parse_overrides", "merge", "read_yaml", "to_dict", "to_yaml", "dump_yaml"]
