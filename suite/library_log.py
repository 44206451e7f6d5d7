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

Only the thread that runs the study is redirected: `sys.stderr` becomes a router that
sends each write to the library log of the thread writing it, where that thread is in a
study, and to the stream it replaced otherwise. A study run from a thread of a larger
program (a notebook, a service) leaves the other threads' stderr where it was; the router
is removed when the last study ends, unless something else replaced `sys.stderr` since.
"""

from __future__ import annotations

import contextlib
import io
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

__all__ = ["LIBRARY_LOG", "to_library_log", "as_thread"]

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


class _Router:
    """`sys.stderr` while studies run: each write goes to its thread's sink, if any, else
    to the stream it replaced; other attributes (encoding, fileno, ...) are that stream's
    or that sink's, as the writing thread would see them."""

    def __init__(self, default) -> None:
        self.default = default
        self.sinks: dict[int, _Sink] = {}

    def _target(self):
        me = threading.get_ident()
        sink = self.sinks.get(me) or self.sinks.get(_HELPERS.get(me))
        return sink or self.default

    def write(self, text: str) -> int:
        return self._target().write(text)

    def flush(self) -> None:
        self._target().flush()

    def __getattr__(self, name: str):
        return getattr(self._target(), name)


_ROUTING = threading.Lock()
_HELPERS: dict[int, int] = {}  # a study's helper thread -> the thread that runs the study


@contextlib.contextmanager
def to_library_log(path: Path) -> Iterator[None]:
    """Within the block, what this thread writes to `sys.stderr` is appended to `path`
    instead; other threads' writes are left alone."""
    sink, me = _Sink(path), threading.get_ident()
    with _ROUTING:
        router = sys.stderr if isinstance(sys.stderr, _Router) else _Router(sys.stderr)
        sys.stderr = router
        outer = router.sinks.get(me)  # a study within a study (the API, nested)
        router.sinks[me] = sink
    try:
        yield
    finally:
        with _ROUTING:
            if outer is None:
                router.sinks.pop(me, None)
            else:
                router.sinks[me] = outer
            if not router.sinks and sys.stderr is router:
                sys.stderr = router.default
        sink.close()


@contextlib.contextmanager
def as_thread(parent: int) -> Iterator[None]:
    """Within the block, this thread's stderr goes where thread `parent`'s goes: a study's
    helper thread (the MLflow follower) writes to the study's library log while it has
    one."""
    me = threading.get_ident()
    with _ROUTING:
        _HELPERS[me] = parent
    try:
        yield
    finally:
        with _ROUTING:
            _HELPERS.pop(me, None)
