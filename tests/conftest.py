import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True)
def _data_env(monkeypatch, tmp_path_factory):
    """Read data from $SUITE_DATA_DIR (CI sets it) or ../shared/data; never write to ~/.cache."""
    if not os.environ.get("SUITE_DATA_DIR"):
        monkeypatch.setenv("SUITE_DATA_DIR", str(SHARED_DATA))
    monkeypatch.setenv("SUITE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
