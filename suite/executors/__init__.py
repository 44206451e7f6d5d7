"""Where trials run: in this process (tests, replay) or in worker subprocesses (live)."""

from suite.executors._base import EpochDone, Executor, Job, TrialEnded
from suite.executors._inprocess import InProcessExecutor
from suite.executors._local import LocalExecutor

__all__ = ["EpochDone", "Executor", "InProcessExecutor", "Job", "LocalExecutor", "TrialEnded"]
