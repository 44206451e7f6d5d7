"""The batched BOHB generator against hpbandster's own `BOHB.get_config`, call by call.

Both generators get the same results (the toy curve of each proposal at a Hyperband-like mix
of budgets, some of them failed) and each call runs from the same numpy global RNG state:
every proposal, its info and the RNG state after it must be equal, over enough calls for the
KDE to drive most of them (floats, integers, a categorical and a conditional child).
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
from hpbandster.core.dispatcher import Job
from hpbandster.optimizers.config_generators.bohb import BOHB
from optdriver import TASK

from suite.optimizers import OrdinalCodec
from suite.optimizers._bohb_sampler import BatchedBOHB

_LOG = logging.getLogger("tests.bohb_sampler")
_LOG.addHandler(logging.NullHandler())
_LOG.propagate = False


def _calls(cls: type, seed: int, n: int, num_samples: int) -> list[tuple]:
    codec = OrdinalCodec.build(TASK.config_space(), seed)
    gen = cls(configspace=codec.space, logger=_LOG, num_samples=num_samples)
    saved = np.random.get_state()
    np.random.seed(seed)
    out = []
    try:
        for i in range(n):
            budget = (1.0, 3.0, 9.0)[i % 3]
            config, info = gen.get_config(budget)
            out.append((config, info, np.random.get_state()[1].tobytes()))
            job = Job((i, 0, 0), config=config, budget=budget)
            job.timestamps = {"submitted": i, "started": i, "finished": i}
            if i % 7 == 6:
                job.result, job.exception = None, "failed"
            else:
                job.result = {"loss": TASK.curve(codec.decode(config), int(budget), seed),
                              "info": {}}
            gen.new_result(job)
    finally:
        np.random.set_state(saved)
    return out


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning",
                            "ignore::RuntimeWarning")
@pytest.mark.parametrize("seed, num_samples", [(0, 64), (1, 16), (2, 7)])
def test_batched_bohb_proposes_what_the_library_proposes(seed, num_samples):
    library = _calls(BOHB, seed, 80, num_samples)
    batched = _calls(BatchedBOHB, seed, 80, num_samples)
    picks = sum(info.get("model_based_pick", False) for _, info, _ in library)
    assert picks > 20  # the KDE path, the one batched, was exercised
    assert any(isinstance(v, float) and not math.isclose(v, round(v))
               for c, _, _ in library for v in c.values())  # truncnorm drew real floats
    for i, (want, got) in enumerate(zip(library, batched, strict=True)):
        assert got[0] == want[0], f"call {i}: configuration"
        assert got[1] == want[1], f"call {i}: info"
        assert got[2] == want[2], f"call {i}: numpy's global RNG state after the call"
