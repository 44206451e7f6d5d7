"""The `speed` fixture: pytest-benchmark plus a same-run reference, judged against the
committed ratios (see speed.py); a table of every ratio at the end of the session."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import speed as S  # benchmarks/ is on sys.path under pytest's rootdir insertion

from suite.env import machine_line

_KEY = pytest.StashKey[list]()


def pytest_addoption(parser):
    parser.addoption("--update-speed-baseline", action="store_true",
                     help=f"write every measured ratio to {S.BASELINE.name} instead of "
                          "checking against it")
    parser.addoption("--speed-summary", metavar="FILE",
                     help="also write the table of ratios to FILE (Markdown)")


def pytest_configure(config):
    config.stash[_KEY] = []


@pytest.fixture
def speed(benchmark, request):
    """`speed(name, unit, target, rounds=, per=, warmup=, setup=)`: benchmark `target`,
    time the reference right after, and fail if the ratio exceeds the baseline's by more
    than the tolerance."""
    config = request.config
    updating = config.getoption("--update-speed-baseline")

    def measure(name: str, unit: str, target, *, rounds: int, per: int = 1, warmup: int = 1,
                setup=None):
        """`per`: how many `unit`s one call of `target` does (seconds are per unit);
        `setup`: pytest-benchmark's, run untimed before each round."""
        value = benchmark.pedantic(target, rounds=rounds, iterations=1, warmup_rounds=warmup,
                                   setup=setup)
        m = S.Measurement(name, benchmark.stats.stats.min / per, S.reference_seconds(), unit)
        if not updating:
            m, ok, line = S.judge(m, lambda: _fastest(target, rounds=rounds, setup=setup) / per,
                                  S.read_baseline())
        benchmark.extra_info.update(ratio=m.ratio, reference_s=m.reference)
        config.stash[_KEY].append(m)
        assert updating or ok, line
        return value
    return measure


def _fastest(target, *, rounds: int, setup=None) -> float:
    """Seconds of `target`'s fastest of `rounds` calls, `setup` untimed before each
    (pytest-benchmark's `pedantic` runs only once per test)."""
    best = float("inf")
    for _ in range(rounds):
        args, kwargs = setup() if setup else ((), {})
        start = time.perf_counter()
        target(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    return best


def pytest_terminal_summary(terminalreporter, config):
    measured = config.stash[_KEY]
    if not measured:
        return
    if config.getoption("--update-speed-baseline"):
        S.write_baseline(measured)
        terminalreporter.write_line(f"wrote {len(measured)} ratios to {S.BASELINE}")
    lines = [f"machine: {machine_line()}", "", *S.speed_table(measured, S.read_baseline())]
    terminalreporter.section("speed: ratio to the same-run reference workload")
    for line in lines:
        terminalreporter.write_line(line)
    summary = config.getoption("--speed-summary")
    if summary:
        Path(summary).write_text("\n".join(lines) + "\n")
