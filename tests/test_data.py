import io
import shutil
import urllib.error

import pytest

from suite.errors import DataError
from tasks import data

REL = "madewithml/holdout.csv"


def test_fetch_prefers_suite_data_dir():
    path = data.fetch(REL)
    assert data.sha256_of(path) == data.FILES[REL].sha256


def test_checksum_mismatch_is_one_clear_error(tmp_path, monkeypatch):
    (tmp_path / "madewithml").mkdir()
    (tmp_path / REL).write_text("id,title\n1,edited\n")
    monkeypatch.setenv("SUITE_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match="SHA-256.*does not match") as info:
        data.fetch(REL)
    assert str(tmp_path / REL) in str(info.value) and "\n" not in str(info.value)


def test_offline_without_copy_names_the_file_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("SUITE_DATA_DIR", str(tmp_path))
    def offline(*args, **kwargs):
        raise urllib.error.URLError("Temporary failure in name resolution")
    monkeypatch.setattr(data.urllib.request, "urlopen", offline)
    with pytest.raises(DataError, match="cannot download madewithml/holdout.csv") as info:
        data.fetch(REL)
    assert "SUITE_DATA_DIR" in str(info.value)
    assert not list(data.cache_dir().rglob("*.part")), "no partial download left behind"


def test_download_goes_to_cache_and_is_verified(tmp_path, monkeypatch):
    source = data.fetch(REL).read_bytes()
    monkeypatch.setenv("SUITE_DATA_DIR", str(tmp_path / "empty"))
    calls = []
    def fake_urlopen(url, timeout):
        calls.append(url)
        return io.BytesIO(source)
    monkeypatch.setattr(data.urllib.request, "urlopen", fake_urlopen)
    path = data.fetch(REL)
    assert path == data.cache_dir() / REL and calls == [data.FILES[REL].url]
    assert data.fetch(REL) == path and len(calls) == 1, "second fetch hits the cache"


def test_corrupt_download_is_rejected(tmp_path, monkeypatch):
    monkeypatch.setenv("SUITE_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.setattr(data.urllib.request, "urlopen", lambda url, timeout: io.BytesIO(b"<html>"))
    with pytest.raises(DataError, match="does not match"):
        data.fetch(REL)


def test_cached_copy_is_used_when_data_dir_lacks_the_file(tmp_path, monkeypatch):
    cached = data.cache_dir() / REL
    cached.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(data.fetch(REL), cached)
    monkeypatch.setenv("SUITE_DATA_DIR", str(tmp_path / "empty"))
    assert data.fetch(REL) == cached
