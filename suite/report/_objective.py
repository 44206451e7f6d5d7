"""The task's objective in its own words: a report computes on the loss (lower is better,
`suite.types.Metric.loss`) and shows what the task reported (`val_acc`, maximized)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

__all__ = ["Objective"]


@dataclass(frozen=True)
class Objective:
    name: str = "val_loss"
    minimize: bool = True

    @classmethod
    def of(cls, runs) -> Objective:
        """The objective of one task's runs (`RunSet`), as their meta.json records it."""
        meta = runs.runs
        return cls(str(meta["metric"].iloc[0]), bool(meta["minimize"].iloc[0]))

    @property
    def words(self) -> str:
        """`val_loss`, or `val_acc (maximized)`."""
        return self.name if self.minimize else f"{self.name} (maximized)"

    @property
    def better(self) -> str:
        return "lower" if self.minimize else "higher"

    @property
    def best(self) -> str:
        return "lowest" if self.minimize else "highest"

    def shown(self, loss):
        """A loss (a number, array or Series) as the value the task reported."""
        return loss if self.minimize else -loss

    def shown_band(self, frame: pd.DataFrame, center: str = "center", low: str = "low",
                   high: str = "high") -> pd.DataFrame:
        """A summary's center and band in the task's values (a band's ends swap sides)."""
        if self.minimize:
            return frame
        return frame.assign(**{center: -frame[center], low: -frame[high],
                               high: -frame[low]})
