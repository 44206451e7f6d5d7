"""Our Hyperband/BOHB adapters against hpbandster itself, and the bracket math.

Equivalence: hpbandster's real `HyperBand` / `BOHB` Master runs with its Pyro4 nameserver,
dispatcher and one background worker, all in this process on 127.0.0.1 (loopback only), with
`Pyro4.config.SERIALIZER = "pickle"` (serpent cannot serialize the numpy scalars ConfigSpace
1.2 returns). With one worker, Master submits a job, waits for its result, then asks again,
so its (configuration, budget) sequence is deterministic given the space's seed and numpy's
global seed, and must equal our adapter's sequence driven by one simulated worker with the
same seed; also when every 5th job fails (the worker raises, as a crashed training would:
hpbandster records `result=None`, we tell Status.FAILED). A full Hyperband round (4 brackets,
65 jobs) takes about 2-3 s per Master.

Bracket math: Li et al. (JMLR 2018) Table 1 (R=81, eta=3) defines
n = ceil((s_max + 1) / (s + 1) * eta**s); hpbandster instead uses
n = floor((s_max + 1) / (s + 1)) * eta**s. The two agree on the outermost brackets (s=4, s=0)
but not in between (paper: 34/11/3/1, 15/5/1, 8/2; hpbandster: 27/9/3/1, 9/3/1, 6/2). We
reproduce hpbandster (the reference implementation of BOHB), and test both facts.
"""

from __future__ import annotations

import logging
import math
import socket
import uuid
from types import SimpleNamespace

import numpy as np
import pytest
from optdriver import TASK, drive

from suite.config import to_plain
from suite.optimizers import (
    BOHBOptimizer,
    HyperbandOptimizer,
    OrdinalCodec,
    hpbandster_budgets,
    hpbandster_iteration,
)

Pyro4 = pytest.importorskip("Pyro4")

SEED = 3
N_ITERATIONS = 4  # one full Hyperband round at budgets 1, 3, 9, 27: 40 + 13 + 8 + 4 runs


@pytest.fixture
def pickle_pyro():
    """Pyro with the pickle serializer for this test only (and loopback sockets)."""
    try:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
    except OSError:
        pytest.skip("no loopback networking for Pyro here")
    saved = Pyro4.config.SERIALIZER, set(Pyro4.config.SERIALIZERS_ACCEPTED)
    Pyro4.config.SERIALIZER = "pickle"
    Pyro4.config.SERIALIZERS_ACCEPTED.add("pickle")
    yield
    Pyro4.config.SERIALIZER, Pyro4.config.SERIALIZERS_ACCEPTED = saved


def _quiet_logger() -> logging.Logger:
    # hpbandster's Worker calls logging.basicConfig(DEBUG) unless it is given a logger.
    logger = logging.getLogger("tests.hpbandster_master")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    return logger


def toy_worker_class(codec: OrdinalCodec, fail_every: int) -> type:
    """An hpbandster Worker on the toy curve; every `fail_every`-th job raises (a crash)."""
    from hpbandster.core.worker import Worker

    calls = []

    class ToyWorker(Worker):
        def compute(self, config_id, config, budget, working_directory):
            calls.append(config_id)
            if fail_every and len(calls) % fail_every == 0:  # as optdriver.drive fails them
                raise RuntimeError("injected failure")
            loss = TASK.curve(codec.decode(config), int(round(budget)), 0)
            return {"loss": loss, "info": {}}

    return ToyWorker


def run_master(master_cls, codec: OrdinalCodec, workdir,
               fail_every: int) -> tuple[list[tuple[dict, int]], int]:
    """hpbandster's own Master with Pyro and one in-process worker.

    Returns:
        (config, epochs) in submission order, and how many configurations the model picked.
    """
    from hpbandster.core.nameserver import NameServer

    run_id, logger = uuid.uuid4().hex, _quiet_logger()
    nameserver = NameServer(run_id=run_id, host="127.0.0.1", port=0)
    host, port = nameserver.start()
    saved = np.random.get_state()
    try:
        worker = toy_worker_class(codec, fail_every)
        worker(run_id=run_id, nameserver=host, nameserver_port=port, host=host,
               logger=logger).run(background=True)
        np.random.seed(SEED)  # what our adapter's private RandomState(seed) stands in for
        master = master_cls(configspace=codec.space, run_id=run_id, nameserver=host,
                            nameserver_port=port, host=host, min_budget=1, max_budget=27,
                            eta=3, logger=logger, working_directory=str(workdir),
                            ping_interval=1)
        result = master.run(n_iterations=N_ITERATIONS)
        master.shutdown(shutdown_workers=True)
    finally:
        nameserver.shutdown()
        np.random.set_state(saved)
    runs = sorted(result.get_all_runs(), key=lambda r: r.time_stamps["submitted"])
    configs = result.get_id2config_mapping()
    picked = sum(bool(c["config_info"].get("model_based_pick")) for c in configs.values())
    runs = [(codec.decode(configs[r.config_id]["config"]), int(round(r.budget))) for r in runs]
    return runs, picked


def ours(optimizer_cls, n_trials: int, fail_every: int) -> list[tuple[dict, int]]:
    opt = optimizer_cls(space=TASK.config_space(), fidelity=TASK.info.fidelity, seed=SEED)
    run = drive(opt, workers=1, n_trials=n_trials, fail_every=fail_every)
    return [(t.config, t.epochs) for t in run.trials]


# hpbandster itself calls ConfigSpace 0.x names and scipy's global-RNG sampling.
@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning",
                            "ignore::RuntimeWarning")
@pytest.mark.parametrize("fail_every", [0, 5])
@pytest.mark.parametrize("master_name, adapter, encode", [
    ("HyperBand", HyperbandOptimizer, False),
    ("BOHB", BOHBOptimizer, True),
])
def test_same_sequence_as_hpbandster_master_with_pyro(master_name, adapter, encode, fail_every,
                                                      pickle_pyro, tmp_path):
    import hpbandster.optimizers as hpo

    space = TASK.config_space()
    codec = OrdinalCodec.build(space, SEED) if encode else OrdinalCodec(
        TASK.config_space(seed=SEED))
    expected, model_picks = run_master(getattr(hpo, master_name), codec, tmp_path,
                                       fail_every)
    assert len(expected) == 65
    assert (model_picks > 10) == (master_name == "BOHB")  # BOHB's KDE was exercised
    got = ours(adapter, len(expected), fail_every)
    assert [to_plain(c) for c, _ in expected] == [c for c, _ in got]
    assert [e for _, e in expected] == [e for _, e in got]


def _brackets(min_budget: int, max_budget: int) -> list[tuple[list[int], list[int]]]:
    max_sh_iter, _ = hpbandster_budgets(min_budget, max_budget, 3)
    from hpbandster.optimizers.hyperband import HyperBand

    out = []
    for index in range(max_sh_iter):
        it = hpbandster_iteration(HyperBand, index, min_budget=min_budget,
                                  max_budget=max_budget, eta=3,
                                  config_generator=SimpleNamespace(get_config=None))
        out.append((list(it.num_configs), [int(round(b)) for b in it.budgets]))
    return out


def test_hpbandster_brackets_for_r81_eta3():
    assert _brackets(1, 81) == [
        ([81, 27, 9, 3, 1], [1, 3, 9, 27, 81]),
        ([27, 9, 3, 1], [3, 9, 27, 81]),
        ([9, 3, 1], [9, 27, 81]),
        ([6, 2], [27, 81]),
        ([5], [81]),
    ]


def test_hpbandster_brackets_for_our_toy_fidelity():
    assert hpbandster_budgets(1, 27, 3)[1].round(9).tolist() == [1, 3, 9, 27]
    assert _brackets(1, 27) == [
        ([27, 9, 3, 1], [1, 3, 9, 27]),
        ([9, 3, 1], [3, 9, 27]),
        ([6, 2], [9, 27]),
        ([4], [27]),
    ]


def test_paper_table1_differs_from_hpbandster_only_inside():
    s_max, eta, big_r = 4, 3, 81
    paper = []
    for s in range(s_max, -1, -1):  # Li et al. 2018, Algorithm 1 / Table 1
        n = math.ceil((s_max + 1) / (s + 1) * eta**s)
        r = big_r * eta ** (-s)
        paper.append(([math.floor(n * eta ** (-i)) for i in range(s + 1)],
                      [int(r * eta**i) for i in range(s + 1)]))
    assert paper == [
        ([81, 27, 9, 3, 1], [1, 3, 9, 27, 81]),
        ([34, 11, 3, 1], [3, 9, 27, 81]),
        ([15, 5, 1], [9, 27, 81]),
        ([8, 2], [27, 81]),
        ([5], [81]),
    ]
    ref = _brackets(1, 81)
    assert [p == h for p, h in zip(paper, ref, strict=True)] == [True, False, False, False, True]
    assert [p[1] for p in paper] == [h[1] for h in ref]  # same budgets per bracket
