"""One writer per folder: an exclusive OS file lock that dies with its process.

`hold_lock(DIR, what)` takes `flock(LOCK_EX | LOCK_NB)` on `DIR/.lock` (a table file's
lock is `.NAME.lock` beside it) and holds it until the block ends. The kernel drops the
lock when its process ends, however it ends (SIGKILL, a crash, a lost SSH session), so a
lock is never stale and the file is never deleted: deleting it while another process
waits to open it would let two writers in. After
taking the lock the holder writes its pid, host and start time into the file; a second
writer reads them back and is refused with one line naming them, having written nothing.

A study folder's lock is held by the one process that writes its logs (`suite run`'s
driver, with every executor: workers and Ray actors train but never write a log); a
table's by the one `suite tabulate` recording it.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from suite.errors import SuiteError

__all__ = ["LockedError", "hold_lock", "LOCK_NAME"]

LOCK_NAME = ".lock"
HOLDER_WAIT = 2.0  # seconds a refused writer waits for the holder to name itself


class LockedError(SuiteError):
    """Another live process is writing the folder."""


@contextmanager
def hold_lock(target: Path, what: str = "folder", *, lock_file: Path | None = None
              ) -> Iterator[None]:
    """Hold the writer lock of `target` for the `with` block: `target/.lock` for a folder
    (created if missing), or `lock_file` (beside a file that is being written).

    Raises:
        LockedError: another live process holds it (the message names pid and host).
        SuiteError: the folder or its lock file cannot be created.
    """
    target = Path(target)
    path = Path(lock_file) if lock_file is not None else target / LOCK_NAME
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # no O_TRUNC: the file names the holder until we hold the lock ourselves
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise SuiteError(f"cannot write the {what} folder {path.parent}: {exc.strerror}"
                         ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockedError(f"{target} is being written by {_holder(fd)}; wait for it "
                              "to end or stop it") from None
        except OSError as exc:  # e.g. a file system without locks
            raise SuiteError(f"cannot lock {path}: {exc.strerror}") from None
        _write_holder(fd)
        yield
    finally:
        os.close(fd)  # releases the lock


def _write_holder(fd: int) -> None:
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    text = f"{os.getpid()} {socket.gethostname()} {started}\n".encode()
    # written over the old line, then cut to length: the file never reads back empty
    os.pwrite(fd, text, 0)
    os.ftruncate(fd, len(text))


def _holder(fd: int) -> str:
    """'process PID on HOST (since …)', read from the lock file the holder wrote.

    The holder writes its line just after taking the lock, so a rival may read first
    the previous holder's line (a dead process on this host) or a line being cut to
    length: it reads again for up to HOLDER_WAIT seconds until the line names a live
    process (or one on another host, which it cannot check)."""
    deadline = time.monotonic() + HOLDER_WAIT
    while True:
        found = _read_holder(fd)
        if found is not None or time.monotonic() > deadline:
            return found or "another process"
        time.sleep(0.01)


def _read_holder(fd: int) -> str | None:
    try:
        line = os.pread(fd, 256, 0).decode().split("\n", 1)[0]
        pid, host, started = line.split(" ", 2)
        if host == socket.gethostname() and not _alive(int(pid)):
            return None
    except (OSError, UnicodeDecodeError, ValueError):  # not written yet, or being written
        return None
    return f"process {pid} on {host} (since {started})"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True
