import tempfile

import pytest


@pytest.fixture(autouse=True)
def _temp_files_under_tmp_path(monkeypatch, tmp_path):
    """SMAC writes its scenario into a throwaway temporary directory when it is built; keep
    even that under the test's tmp_path."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
