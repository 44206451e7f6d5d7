"""Regression benchmarks for replay (pytest-benchmark; not part of the default `pytest` run):

    pytest benchmarks/test_replay_overhead.py --benchmark-only

The README's numbers come from `python benchmarks/replay_overhead.py`; these track the same
paths over time: a whole `random` replay, and one table lookup.
"""

import itertools

import pytest
from replay_overhead import replay  # benchmarks/ is on sys.path under pytest's rootdir

from suite.tables import read_table
from suite.testing import toy_table


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return read_table(toy_table(tmp_path_factory.mktemp("tables") / "toy.parquet", seeds=2))


def test_random_replay_of_200_full_trials(benchmark, table, tmp_path):
    runs = itertools.count()
    measured = benchmark.pedantic(
        lambda: replay(table, "random", "200x", 4, tmp_path / f"run-{next(runs)}"),
        rounds=5, iterations=1)
    assert measured.epochs == 200 * 27
    benchmark.extra_info["overhead_ms_per_evaluation"] = measured.overhead_ms


def test_table_epoch_lookup(benchmark, table):
    metrics, seconds = benchmark(table.epoch, 17, 1, 9)
    assert set(metrics) == {"val_accuracy", "val_loss"} and seconds > 0
