"""Random search: ConfigSpace sampling from a seeded copy of the space, at full fidelity."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ConfigSpace import ConfigurationSpace

from suite.optimizers._spaces import DefaultFirstSampler
from suite.optimizers.base import FullFidelitySearch, config_key
from suite.types import Fidelity, Trial

__all__ = ["RandomSearch"]


class RandomSearch(FullFidelitySearch):
    """Independent samples from the space's own prior (uniform unless the task says otherwise).

    `max_full_trials` is unused: random search needs no resolution. Recommendation (no
    rule of its own): the lowest loss told so far (every trial is at full fidelity), the
    earlier of equals.
    """

    name = "random"

    def __init__(self, *, space: ConfigurationSpace, fidelity: Fidelity, seed: int,
                 default_config: Mapping[str, Any] | None = None,
                 max_full_trials: int | None = None) -> None:
        super().__init__()
        self._sampler = DefaultFirstSampler(space, seed, default_config)
        self._epochs = fidelity.max_epochs

    def ask(self) -> Trial | None:
        config = self._sampler.sample()
        return self._book.new_trial(config, self._epochs, config_key(config))
