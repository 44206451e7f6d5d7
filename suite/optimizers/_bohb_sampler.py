"""hpbandster's BOHB config generator, with its truncated-normal draws batched.

`BOHB.get_config` proposes `num_samples` (64) candidates from the "good" KDE and keeps the
one with the best EI. Each continuous coordinate of each candidate is one
`scipy.stats.truncnorm.rvs` call, whose argument handling and size-1 `logsumexp`s cost about
0.5 ms: 64,512 calls, 34 of the 37 s of one 60x BOHB replay on the text classifier's table
(cProfile, AMD EPYC 2-core machine), most of CI's quality step.

`BatchedBOHB.get_config` is the library's method with that loop split in two: first every
draw from numpy's global RNG in exactly the library's order (the one uniform each `rvs` call
draws through `rv_continuous._rvs` included, and nothing for a coordinate whose `rvs` would
raise), then every quantile in one `truncnorm._ppf` call. `_ppf` works elementwise: in the
scalar calls it already runs its numpy ufuncs on 1-element arrays (its boolean case masks turn
0-d inputs into 1-d ones), so the batch uses the same kernels on the same inputs and gives the
same values. Candidates are then scored in the library's order, with its early exit (a
non-finite EI with a finite good-KDE density), whose RNG state is the one after that
candidate's draws. Everything else (the random fraction, the fallbacks, the conversion to a
configuration) is the library's own code path, in its order.
tests/optimizers/test_optimizers_hpbandster.py checks the result against hpbandster's own
Master and generator; tests/optimizers/test_bohb_sampler.py against the library's
`get_config`, call by call, RNG state included.
"""

from __future__ import annotations

import traceback
from typing import Any

import ConfigSpace
import ConfigSpace.util
import numpy as np
import scipy.stats as sps
from hpbandster.optimizers.config_generators.bohb import BOHB

__all__ = ["BatchedBOHB"]


class BatchedBOHB(BOHB):
    """`hpbandster.optimizers.config_generators.bohb.BOHB`, 10x cheaper per model-based pick."""

    def get_config(self, budget: float) -> tuple[dict[str, Any], dict]:
        if len(self.kde_models) == 0 or np.random.rand() < self.random_fraction:
            return self._finish(self.configspace.sample_configuration(),
                                {"model_based_pick": False})
        try:
            sample = self._model_pick()
        except Exception:  # the library's fallback: any failure means a random configuration
            self.logger.warning("Sampling based optimization with %i samples failed\n %s \n"
                                "Using random configuration", self.num_samples,
                                traceback.format_exc())
            return self._finish(self.configspace.sample_configuration(),
                                {"model_based_pick": False})
        if sample is None:
            return self._finish(self.configspace.sample_configuration().get_dictionary(),
                                {"model_based_pick": False})
        return self._finish(sample, {"model_based_pick": True})

    def _model_pick(self) -> Any:
        """The best-EI candidate as a deactivated Configuration, or None (no finite EI)."""
        models = self.kde_models[max(self.kde_models.keys())]
        kde_good, kde_bad = models["good"], models["bad"]
        vectors, states = self._draw_candidates(kde_good)
        best, best_vector = np.inf, None
        for vector, state in zip(vectors, states, strict=True):
            try:
                val = max(1e-32, kde_bad.pdf(vector)) / max(kde_good.pdf(vector), 1e-32)
            except Exception:
                np.random.set_state(state)  # the library had drawn up to this candidate
                raise
            if not np.isfinite(val) and np.isfinite(kde_good.pdf(vector)):
                best_vector = vector
                np.random.set_state(state)  # the library stops drawing after this one
                break
            if val < best:
                best, best_vector = val, vector
        if best_vector is None:
            return None
        for i, value in enumerate(best_vector):
            name = self.configspace.get_hyperparameter_by_idx(i)
            if isinstance(self.configspace.get_hyperparameter(name),
                          ConfigSpace.hyperparameters.CategoricalHyperparameter):
                best_vector[i] = int(np.rint(value))
        sample = ConfigSpace.Configuration(self.configspace, vector=best_vector).get_dictionary()
        return ConfigSpace.util.deactivate_inactive_hyperparameters(
            configuration_space=self.configspace, configuration=sample)

    def _draw_candidates(self, kde_good: Any) -> tuple[list[list], list]:
        """`num_samples` candidates, drawn as the library draws them: (vectors, the global RNG
        state after each candidate's draws)."""
        slots: list[tuple[list, int]] = []  # (vector, index) awaiting a truncnorm value
        u, a, b, loc, scale = [], [], [], [], []
        vectors, states = [], []
        for _ in range(self.num_samples):
            datum = kde_good.data[np.random.randint(0, len(kde_good.data))]
            vector: list = []
            for m, bw, t in zip(datum, kde_good.bw, self.vartypes, strict=False):
                bw = max(bw, self.min_bandwidth)
                if t == 0:
                    bw = self.bw_factor * bw
                    lo, hi = -m / bw, (1 - m) / bw
                    if not (lo < hi and bw >= 0):  # rvs raises before drawing
                        continue
                    if bw == 0:  # rvs returns loc without drawing
                        vector.append(m * np.ones((), "d"))
                        continue
                    slots.append((vector, len(vector)))
                    vector.append(None)
                    u.append(np.random.uniform(size=()))  # rv_continuous._rvs's one draw
                    a.append(lo), b.append(hi), loc.append(m), scale.append(bw)
                elif np.random.rand() < (1 - bw):
                    vector.append(int(m))
                else:
                    vector.append(np.random.randint(t))
            vectors.append(vector)
            states.append(np.random.get_state())
        if u:
            values = sps.truncnorm._ppf(np.array(u), np.array(a), np.array(b)) \
                * np.array(scale) + np.array(loc)
            for (vector, index), value in zip(slots, values, strict=True):
                vector[index] = value
        return vectors, states

    def _finish(self, sample: Any, info: dict) -> tuple[dict[str, Any], dict]:
        """The library's closing step: deactivate inactive hyperparameters, or fall back."""
        try:
            sample = ConfigSpace.util.deactivate_inactive_hyperparameters(
                configuration_space=self.configspace,
                configuration=sample.get_dictionary()).get_dictionary()
        except Exception as e:
            self.logger.warning("Error (%s) converting configuration: %s -> "
                                "using random configuration!", e, sample)
            sample = self.configspace.sample_configuration().get_dictionary()
        return sample, info
