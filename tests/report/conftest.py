"""Synthetic run logs and tables for the report tests: small, deterministic, no torch."""

from pathlib import Path

import pytest
from synthetic import write_synthetic_study, write_synthetic_table


@pytest.fixture
def study(tmp_path) -> Path:
    return write_synthetic_study(tmp_path / "study")


@pytest.fixture
def table_path(tmp_path) -> Path:
    return write_synthetic_table(tmp_path / "toy.parquet")
