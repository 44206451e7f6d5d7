"""The `speed` fixture: pytest-benchmark plus a same-run reference, judged against the
committed ratios (see speed.py); a table of every ratio at the end of the session."""

from __future__ import annotations

import pytest
import speed as S  # benchmarks/ is on sys.path under pytest's rootdir insertion

_KEY = pytest.StashKey[list]()


def pytest_addoption(parser):
    parser.addoption("--update-speed-baseline", action="store_true",
                     help=f"write every measured ratio to {S.BASELINE.name} instead of "
                          "checking against it")


def pytest_configure(config):
    config.stash[_KEY] = []


@pytest.fixture
def speed(benchmark, request):
    """`speed(name, unit, target, rounds=, per=)`: benchmark `target`, time the reference
    right after, and fail if the ratio exceeds the baseline's by more than the tolerance."""
    config = request.config
    updating = config.getoption("--update-speed-baseline")

    def measure(name: str, unit: str, target, *, rounds: int, per: int = 1):
        """`per`: how many `unit`s one call of `target` does (seconds are per unit)."""
        value = benchmark.pedantic(target, rounds=rounds, iterations=1, warmup_rounds=1)
        m = S.Measurement(name, benchmark.stats.stats.min / per, S.reference_seconds(), unit)
        benchmark.extra_info.update(ratio=m.ratio, reference_s=m.reference)
        config.stash[_KEY].append(m)
        if not updating:
            ok, line = S.verdict(m, S.read_baseline())
            assert ok, line
        return value
    return measure


def pytest_terminal_summary(terminalreporter, config):
    measured = config.stash[_KEY]
    if not measured:
        return
    if config.getoption("--update-speed-baseline"):
        S.write_baseline(measured)
        terminalreporter.write_line(f"wrote {len(measured)} ratios to {S.BASELINE}")
    terminalreporter.section("speed: ratio to the same-run reference workload")
    for line in S.speed_table(measured, S.read_baseline()):
        terminalreporter.write_line(line)
