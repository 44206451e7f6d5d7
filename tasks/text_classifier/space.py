"""The text classifier's name, scales and search spaces: what a replay, a plan or the CLI
reads, without torch or scikit-learn (the package's docstring describes each knob)."""

from __future__ import annotations

from typing import Any

from ConfigSpace import ConfigurationSpace, Float, Integer, OrdinalHyperparameter

from suite.config import validate_config

__all__ = ["NAME", "SCALES", "SHAPE_KEYS", "config_space", "table_grid", "default_config"]

NAME = "text_classifier"
SCALES = ("tiny", "full")
# What members of one fused array share.
SHAPE_KEYS = ("batch_size", "width")


def config_space(seed: int | None = None) -> ConfigurationSpace:
    """A fresh search space (see the module docstring), seeded for sampling."""
    space = ConfigurationSpace(seed=seed)
    space.add([
        Float("lr", (1e-4, 1e-1), log=True, default=5e-3),
        Float("weight_decay", (1e-5, 1.0), log=True, default=0.1),
        Float("dropout_p", (0.3, 0.9), default=0.5),
        Float("lr_factor", (0.1, 0.9), default=0.5),
        Integer("lr_patience", (1, 10), default=2),
        OrdinalHyperparameter("batch_size", [8, 16, 32, 64, 128], default_value=32),
        OrdinalHyperparameter("width", [32, 64, 128, 256], default_value=64),
    ])
    return space


def table_grid() -> tuple[ConfigurationSpace, dict[str, Any]]:
    """The table grid (720 configurations) and the values it holds fixed (none).

    A discretized space with the task's own names: learning rate across its useful range,
    then the regularization and schedule knobs at two or three levels each.
    """
    space = ConfigurationSpace()
    space.add([
        OrdinalHyperparameter("lr", [3e-4, 1e-3, 3e-3, 1e-2, 3e-2]),
        OrdinalHyperparameter("weight_decay", [1e-3, 3e-2, 0.5]),
        OrdinalHyperparameter("dropout_p", [0.4, 0.8]),
        OrdinalHyperparameter("lr_factor", [0.2, 0.6]),
        OrdinalHyperparameter("lr_patience", [2, 6]),
        OrdinalHyperparameter("batch_size", [32, 64, 128]),
        OrdinalHyperparameter("width", [32, 128]),
    ])
    return space, {}


def default_config() -> dict[str, Any]:
    """The baseline configuration, as plain Python values."""
    return validate_config(config_space(), {})
