"""Configurations: parse user input, complete it from defaults, validate against a space."""

from __future__ import annotations

import json
import reprlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from ConfigSpace import Configuration, ConfigurationSpace
from ConfigSpace.hyperparameters import (
    CategoricalHyperparameter,
    IntegerHyperparameter,
    NumericalHyperparameter,
    OrdinalHyperparameter,
)

from suite import _json
from suite.errors import ConfigError

__all__ = ["load_config_arg", "to_plain", "validate_config", "describe_space"]


def to_plain(value: Any) -> Any:
    """ConfigSpace returns numpy scalars; JSON and equality checks want plain Python."""
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def load_config_arg(text: str, default: Mapping[str, Any]) -> dict[str, Any]:
    """Parse `--config`: `default`, a path to a JSON file, or an inline JSON object."""
    if text == "default":
        return dict(default)
    if text.lstrip().startswith("{"):
        source, raw = "--config", text
    else:
        path = Path(text)
        if not path.is_file():
            raise ConfigError(f"--config {text!r}: not 'default', a JSON object, or a file")
        try:
            source, raw = str(path), path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{path}: unreadable ({exc.strerror})") from None
    try:
        parsed = _json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not UTF-8 text (byte {exc.object[exc.start]:#x} at "
                          f"offset {exc.start})") from None
    except ValueError as exc:  # nested too deeply
        raise ConfigError(f"{source}: invalid JSON ({exc})") from None
    if not isinstance(parsed, dict):
        raise ConfigError(f"{source}: expected a JSON object of hyperparameter values")
    return parsed


def validate_config(
    space: ConfigurationSpace, config: Mapping[str, Any], *, fill_from: Mapping[str, Any] = None
) -> dict[str, Any]:
    """Check `config` against `space` and return it as plain Python values.

    Keys missing from `config` are taken from `fill_from` (typically the task default)
    when active, otherwise from the hyperparameter's own default; values of conditional
    hyperparameters that became inactive through the user's choices are dropped only
    if they came from `fill_from`, never silently when the user set them.
    """
    unknown = sorted(set(config) - set(space.keys()))
    if unknown:
        raise ConfigError(f"unknown hyperparameter(s) {', '.join(unknown)}; "
                          f"the space has {', '.join(space.keys())}")
    values = {name: _check_value(space[name], value) for name, value in config.items()}
    values = _complete(space, values, dict(fill_from or {}))
    try:
        return to_plain(dict(Configuration(space, values=values)))
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"invalid configuration: {_first_line(exc)}") from None


def _check_value(hp: Any, value: Any) -> Any:
    if isinstance(hp, NumericalHyperparameter):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{hp.name}={reprlib.repr(value)}: expected a number")
        if not hp.lower <= value <= hp.upper:
            raise ConfigError(f"{hp.name}={value!r} is out of range [{hp.lower}, {hp.upper}]")
        if isinstance(hp, IntegerHyperparameter):
            if float(value) != int(value):
                raise ConfigError(f"{hp.name}={value!r}: expected an integer")
            return int(value)
        return float(value)
    choices = hp.choices if isinstance(hp, CategoricalHyperparameter) else getattr(
        hp, "sequence", ())
    if isinstance(hp, CategoricalHyperparameter | OrdinalHyperparameter):
        plain = [to_plain(c) for c in choices]
        if value not in plain:
            raise ConfigError(f"{hp.name}={reprlib.repr(value)} is not one of {plain}")
        return plain[plain.index(value)]
    return value


def _complete(space: ConfigurationSpace, values: dict, fill: dict) -> dict:
    """Add active hyperparameters the user left out; drop filled-in inactive ones."""
    user_keys = set(values)
    for _ in range(len(space) + 1):
        active = _active_names(space, values)
        inactive_user = sorted(user_keys - active)
        if inactive_user:
            raise ConfigError(f"{', '.join(inactive_user)} inactive under this configuration "
                              f"(check the conditions with `suite tasks`)")
        missing = [n for n in active if n not in values]
        stale = [n for n in values if n not in active]
        if not missing and not stale:
            return values
        for name in stale:
            del values[name]
        for name in missing:
            values[name] = fill[name] if name in fill else to_plain(space[name].default_value)
    return values


def _active_names(space: ConfigurationSpace, values: Mapping[str, Any]) -> set[str]:
    """Names whose conditions hold under `values` (parents must themselves be active)."""
    active: set[str] = set()
    for name in space.keys():  # ConfigSpace keeps parents before children
        conditions = space.parent_conditions_of[name]
        if all(_holds(c, values, active) for c in conditions):
            active.add(name)
    return active


def _holds(condition: Any, values: Mapping[str, Any], active: set[str]) -> bool:
    parents = [p.name for p in condition.parents] if hasattr(condition, "parents") else [
        condition.parent.name]
    if any(p not in active or p not in values for p in parents):
        return False
    return bool(condition.satisfied_by_value({p: values[p] for p in parents}))


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def describe_space(space: ConfigurationSpace) -> list[tuple[str, str, str]]:
    """(name, domain, condition) rows for listing a space to a human."""
    rows = []
    for name in space.keys():
        hp = space[name]
        if isinstance(hp, NumericalHyperparameter):
            scale = " log" if getattr(hp, "log", False) else ""
            domain = f"[{to_plain(hp.lower)}, {to_plain(hp.upper)}]{scale}"
        elif isinstance(hp, CategoricalHyperparameter):
            domain = "{" + ", ".join(str(to_plain(c)) for c in hp.choices) + "}"
        else:
            domain = "(" + ", ".join(str(to_plain(c)) for c in hp.sequence) + ")"
        conds = space.parent_conditions_of[name]
        rows.append((name, domain, " and ".join(str(c) for c in conds)))
    return rows
