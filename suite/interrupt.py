"""Signals are the runner's: SIGINT and SIGTERM only set a stop flag that the runner checks.

A library under the runner may catch anything (hpbandster's sampler has a bare `except:`
around its model fit), so a signal must never surface as an exception in library code:
`on_signals` installs handlers that set a `threading.Event`, the runner checks it at the
top of each loop iteration, before and after each ask and after each wait, and stops
without a `finish` row, so the run resumes exactly as after a kill. A second signal stops
at once (KeyboardInterrupt: what is logged stays, the run still resumes exactly). Python
lets only the main thread install signal handlers; elsewhere `on_signals` installs none
and the caller stops a study by setting the event itself.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["Stopped", "SignalCatcher", "on_signals", "SIGNALS", "die_with_parent"]

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(Exception):
    """A study stopped before its end: by a signal (`signum`) or by its caller's `stop`
    event (`signum` None). Its folder `out` resumes exactly where it stopped."""

    def __init__(self, out: Path, signum: int | None = None) -> None:
        self.out, self.signum = Path(out), signum
        what = f"interrupted ({signal.Signals(signum).name})" if signum else "stopped"
        super().__init__(f"{what}; {self.out} resumes where it stopped")

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + the signal (130 SIGINT, 143 SIGTERM)."""
        return 128 + (self.signum or signal.SIGINT)


class SignalCatcher:
    """What `on_signals` yields: `signum`, the first signal caught (None: none yet), and
    `installed`, False where handlers cannot be installed (not the main thread)."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop, self.signum = stop, None
        self.installed = False
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame) -> None:
        if self.signum is None:  # the first: ask the runner to stop; raise nothing
            self.signum = signum
            self.stop.set()
            return
        self._restore()  # a second: stop now (a third gets the previous handlers)
        raise KeyboardInterrupt

    def _install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # Python allows signal handlers only there: the caller stops via `stop`
        for sig in SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        self.installed = True

    def _restore(self) -> None:
        for sig, previous in self._previous.items():
            # None: a handler not installed from Python; the default is the closest
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()


@contextmanager
def on_signals(stop: threading.Event) -> Iterator[SignalCatcher]:
    """SIGINT and SIGTERM set `stop` while in the block (main thread only); the previous
    handlers are restored when it ends."""
    catcher = SignalCatcher(stop)
    catcher._install()
    try:
        yield catcher
    finally:
        catcher._restore()


def die_with_parent() -> None:
    """A worker (a local executor's, spawned; a parallel replay's, forked by a fork server)
    must not outlive its driver: a SIGKILLed driver cannot stop it, and a worker still
    writing (checkpoints, log rows) would do so while a resumed study runs. On Linux the
    kernel sends this process SIGKILL the moment the thread that started it ends
    (`PR_SET_PDEATHSIG`: the driver's, which outlives it, or the fork server's, which ends
    with the driver; a fork server's worker also watches the driver itself);
    elsewhere the worker notices on its own (its next message to the driver, its watcher
    thread). A no-op in a process that was not started by multiprocessing."""
    parent = multiprocessing.parent_process()
    if parent is None or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if multiprocessing.get_start_method(allow_none=True) == "forkserver":
        # the kernel watches the fork server, which exits with the driver only once it has
        # gone through Python's exit (0.66 s measured): too late for "nothing of a killed
        # study writes once its resume starts". The driver's pipe to this process ends the
        # moment it dies (or has died already): die then.
        threading.Thread(target=_die_when_closed, args=(parent.sentinel,), daemon=True).start()
    elif os.getppid() != parent.pid:  # the driver died before the request took effect
        os._exit(1)


def _die_when_closed(sentinel: int) -> None:
    from multiprocessing import connection

    connection.wait([sentinel])
    os.kill(os.getpid(), signal.SIGKILL)


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
