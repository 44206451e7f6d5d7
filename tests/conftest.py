import os
from pathlib import Path

import pytest

# `pytest -n auto` (the README's command): one torch thread per test process, so the
# processes share the cores instead of oversubscribing them; set before torch is imported,
# and inherited by the processes the tests start. Tests whose promise depends on the thread
# count set it themselves (`two_threads`), and OpenMP's threads then sleep instead of
# spinning while they wait, or two such processes on two cores run 3-4x slower (measured).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True)
def _data_env(monkeypatch, tmp_path_factory):
    """Read data from $SUITE_DATA_DIR (CI sets it) or ../shared/data; never write to ~/.cache."""
    if not os.environ.get("SUITE_DATA_DIR"):
        monkeypatch.setenv("SUITE_DATA_DIR", str(SHARED_DATA))
    monkeypatch.setenv("SUITE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def torch_threads():
    """`torch.set_num_threads` for one test; the process's own count comes back after it."""
    import torch

    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


@pytest.fixture
def two_threads(torch_threads):
    """torch at 2 threads for one test: where a CPU's GEMM may split a long sum over
    threads, as at torch's default on our 2-core machines, whatever the test process's
    own default."""
    torch_threads(2)
