"""The optimizer libraries' chatter goes to the study's `library.log`, not the terminal.

SMAC logs a warning whenever its acquisition falls back to random configurations (once
per such ask, many in a long run), and other libraries warn, log or print to stderr while
they work. While a study runs (`suite.study.run_study`), `to_library_log(path)` sends all
of it to `OUT/library.log`: whatever is written to `sys.stderr`, which is where Python's
`warnings` and the log records that reach no handler (logging's last resort) go. Optuna's
own handler is switched off by its adapter, so its records take the same way. An
application that configured logging keeps its handlers. The terminal keeps the progress
bar (stdout) and the suite's own one-line messages, printed after the study ends.

The file is opened on the first write, so a quiet study has none, and appended to; a
write that fails (a full disk) is dropped: chatter is never worth a failed study.
Worker processes (the local executor) keep their own stderr.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path

__all__ = ["LIBRARY_LOG", "to_library_log"]

LIBRARY_LOG = "library.log"


class _Sink(io.TextIOBase):
    """A text stream appending to `path`, opened on the first write, never raising."""

    def __init__(self, path: Path) -> None:
        self.path, self._handle = Path(path), None

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        try:
            if self._handle is None:
                self._handle = open(self.path, "a", encoding="utf-8")
            self._handle.write(text)
            self._handle.flush()
        except OSError:  # a full disk: drop the chatter, not the study
            pass
        return len(text)

    def close(self) -> None:
        if self._handle is not None:
            with contextlib.suppress(OSError):
                self._handle.close()
        super().close()


@contextlib.contextmanager
def to_library_log(path: Path) -> Iterator[None]:
    """Within the block, what is written to `sys.stderr` is appended to `path` instead."""
    sink = _Sink(path)
    try:
        with contextlib.redirect_stderr(sink):
            yield
    finally:
        sink.close()
