"""Search-space helpers the adapters share: seeded copies, activity, plain values, encodings."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ConfigSpace import Configuration, ConfigurationSpace

from suite.config import to_plain, validate_config
from suite.errors import SuiteError

__all__ = ["DefaultFirstSampler", "OrdinalCodec", "checked_default", "first_allowed", "is_active",
           "is_allowed", "plain_config",
           "seeded_copy"]


def seeded_copy(space: ConfigurationSpace, seed: int) -> ConfigurationSpace:
    """A copy of `space` with its own sampler seeded by `seed` (the task's space is untouched)."""
    clone = copy.deepcopy(space)
    clone.seed(seed)
    return clone


def plain_config(config: Configuration | Mapping[str, Any]) -> dict[str, Any]:
    """Active values as plain Python (ConfigSpace 1.2 hands out np.str_ / np.int64)."""
    return to_plain(dict(config))


def checked_default(space: ConfigurationSpace,
                    default_config: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The task default validated against `space` (plain, active keys only), or None."""
    return None if default_config is None else validate_config(space, default_config)


class DefaultFirstSampler:
    """Seeded ConfigSpace samples from a copy of the space, the task default (if any) first."""

    def __init__(self, space: ConfigurationSpace, seed: int,
                 default_config: Mapping[str, Any] | None) -> None:
        self._space = seeded_copy(space, seed)
        self._default = checked_default(space, default_config)

    def sample(self) -> dict[str, Any]:
        """The next configuration, plain."""
        if self._default is not None:
            config, self._default = self._default, None
            return config
        return plain_config(self._space.sample_configuration())


def is_active(space: ConfigurationSpace, name: str, values: Mapping[str, Any]) -> bool:
    """Whether `name`'s conditions hold under `values` (an absent parent is inactive).

    Callers walk `space.keys()` in order, which ConfigSpace keeps parents-before-children.
    """
    for condition in space.parent_conditions_of[name]:
        parents = getattr(condition, "parents", None) or [condition.parent]
        if any(p.name not in values for p in parents):
            return False
        if not condition.satisfied_by_value(values):
            return False
    return True


@dataclass(frozen=True)
class OrdinalCodec:
    """A space whose ordinals are integer indices (0..n-1), and the maps both ways.

    BOHB's KDE rejects ordinal hyperparameters; an integer index keeps their order, which a
    categorical would lose. Conditions and forbidden clauses on ordinals are re-expressed on
    the indices (order-preserving, so `<`/`>` conditions keep their meaning).

    Attributes:
        space: the encoded space (seeded; identical to the original when it has no ordinals).
        sequences: ordinal name -> its plain values, in order.
    """

    space: ConfigurationSpace
    sequences: Mapping[str, tuple] = field(default_factory=dict)

    @classmethod
    def build(cls, space: ConfigurationSpace, seed: int) -> OrdinalCodec:
        """Encode every ordinal hyperparameter of `space` as an integer index."""
        data = space.to_serialized_dict()
        sequences = {h["name"]: tuple(to_plain(v) for v in h["sequence"])
                     for h in data["hyperparameters"] if h["type"] == "ordinal"}
        if not sequences:
            return cls(seeded_copy(space, seed))
        data["hyperparameters"] = [_as_index(h, sequences) for h in data["hyperparameters"]]
        data["conditions"] = [_reindex(c, sequences) for c in data["conditions"]]
        data["forbiddens"] = [_reindex(f, sequences) for f in data["forbiddens"]]
        encoded = ConfigurationSpace.from_serialized_dict(data)
        encoded.seed(seed)
        return cls(encoded, sequences)

    def encode(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Plain values -> the encoded space's values."""
        return {k: self.sequences[k].index(v) if k in self.sequences else v
                for k, v in config.items()}

    def decode(self, config: Configuration | Mapping[str, Any]) -> dict[str, Any]:
        """The encoded space's values -> plain values of the original space."""
        return {k: self.sequences[k][v] if k in self.sequences else v
                for k, v in plain_config(config).items()}


def _as_index(hp: dict, sequences: Mapping[str, tuple]) -> dict:
    if hp["name"] not in sequences:
        return hp
    seq = sequences[hp["name"]]
    return {"type": "uniform_int", "name": hp["name"], "lower": 0, "upper": len(seq) - 1,
            "default_value": seq.index(to_plain(hp["default_value"])), "log": False,
            "meta": hp.get("meta")}


def _reindex(node: Any, sequences: Mapping[str, tuple]) -> Any:
    """Rewrite a serialized condition/forbidden tree's values on ordinals as indices."""
    if isinstance(node, list):
        return [_reindex(n, sequences) for n in node]
    if not isinstance(node, dict):
        return node
    if node.get("left") in sequences or node.get("right") in sequences:
        raise SuiteError(f"forbidden relation on ordinal {node.get('left')}/{node.get('right')} "
                         "cannot be encoded for BOHB")
    target = node.get("parent", node.get("name"))
    out = {k: _reindex(v, sequences) for k, v in node.items()}
    if target in sequences:
        seq = sequences[target]
        if "value" in out:
            out["value"] = seq.index(to_plain(out["value"]))
        if "values" in out:
            out["values"] = [seq.index(to_plain(v)) for v in out["values"]]
    return out


def is_allowed(space: ConfigurationSpace, config: Mapping[str, Any]) -> bool:
    """Whether `config` violates none of `space`'s forbidden clauses (samplers that cannot
    see them, Optuna's define-by-run and hyperopt's expressions, resample instead)."""
    if not space.forbidden_clauses:
        return True
    try:
        Configuration(space, values=config)
    except ValueError:  # ForbiddenValueError subclasses ValueError
        return False
    return True


MAX_FORBIDDEN_RETRIES = 100


def first_allowed(space: ConfigurationSpace, draw: Callable[[], tuple[Any, dict[str, Any]]],
                  reject: Callable[[Any], None], name: str) -> tuple[Any, dict[str, Any]]:
    """The first draw whose configuration `is_allowed`, for samplers that cannot see
    forbidden clauses: `draw()` gives (the library's handle, the configuration), `reject`
    tells the library a forbidden one failed. A one-line error after
    `MAX_FORBIDDEN_RETRIES` forbidden draws in a row."""
    for _ in range(MAX_FORBIDDEN_RETRIES):
        handle, config = draw()
        if is_allowed(space, config):
            return handle, config
        reject(handle)
    raise SuiteError(f"{name}: no allowed configuration in {MAX_FORBIDDEN_RETRIES} tries")
