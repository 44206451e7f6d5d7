"""Data sets: canonical download, SHA-256 verification, a per-user cache, SUITE_DATA_DIR.

Lookup order for each file: `$SUITE_DATA_DIR/<relpath>`, then the cache
(`$SUITE_CACHE_DIR`, else `$XDG_CACHE_HOME/suite`, else `~/.cache/suite`), then a
download from the canonical address into the cache. Every file is checked against its
SHA-256 wherever it was found, so a stale or edited copy is never trained on silently.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from suite.errors import DataError

__all__ = ["DataFile", "FILES", "fetch", "cache_dir"]


@dataclass(frozen=True)
class DataFile:
    relpath: str
    url: str
    sha256: str


FILES = {
    "madewithml/dataset.csv": DataFile(
        "madewithml/dataset.csv",
        "https://raw.githubusercontent.com/GokuMohandas/Made-With-ML/main/datasets/dataset.csv",
        "479e0f3813cc0583717b86512d112b0a397f717ac33652504afdf763c1f3aff1",
    ),
    "madewithml/holdout.csv": DataFile(
        "madewithml/holdout.csv",
        "https://raw.githubusercontent.com/GokuMohandas/Made-With-ML/main/datasets/holdout.csv",
        "05dd130ff16cbf0cdb05871547f869be096b757052cbc46f8c1e981089a6a474",
    ),
    "tinyshakespeare/input.txt": DataFile(
        "tinyshakespeare/input.txt",
        "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
        "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
    ),
}


def cache_dir() -> Path:
    if os.environ.get("SUITE_CACHE_DIR"):
        return Path(os.environ["SUITE_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "suite"


def fetch(relpath: str, *, timeout: float = 30.0) -> Path:
    """Return a verified local path for one of `FILES`, downloading it if needed.

    Raises:
        DataError: offline without a copy, or a copy whose checksum does not match.
    """
    spec = FILES[relpath]
    data_dir = os.environ.get("SUITE_DATA_DIR")
    if data_dir:
        local = Path(data_dir) / relpath
        if local.is_file():
            return _verified(local, spec)
    cached = cache_dir() / relpath
    if cached.is_file():
        return _verified(cached, spec)
    _download(spec, cached, timeout=timeout, data_dir=data_dir)
    return _verified(cached, spec)


def _verified(path: Path, spec: DataFile) -> Path:
    digest = sha256_of(path)
    if digest != spec.sha256:
        raise DataError(f"{path}: SHA-256 {digest[:12]}… does not match the expected "
                        f"{spec.sha256[:12]}…; delete it or replace it with {spec.url}")
    return path


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _download(spec: DataFile, dest: Path, *, timeout: float, data_dir: str | None) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Download to a temporary file first: an interrupted download never leaves a
    # truncated file where a later run would find it.
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(spec.url, timeout=timeout) as r:
            while block := r.read(1 << 20):
                out.write(block)
        os.replace(tmp, dest)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        Path(tmp).unlink(missing_ok=True)
        where = f"$SUITE_DATA_DIR/{spec.relpath}" if data_dir else "SUITE_DATA_DIR"
        raise DataError(f"cannot download {spec.relpath} from {spec.url} ({_reason(exc)}); "
                        f"offline? put a copy at {where} or {dest}") from None


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or exc).splitlines()[0] if str(reason or exc) else type(exc).__name__
