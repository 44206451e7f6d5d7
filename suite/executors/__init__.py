"""Where trials run: in this process (tests), in worker subprocesses (live), on the
simulated clock of a recorded table (replay), or on Ray actors (`_ray`: not imported
here, so that Ray stays optional; `training_executor` imports it when asked for)."""

from suite.executors._base import ArrayJob, EpochDone, Executor, Job, TrialEnded
from suite.executors._fusing import FusingExecutor
from suite.executors._inprocess import InProcessExecutor
from suite.executors._local import LocalExecutor
from suite.executors._simulated import SimulatedExecutor
from suite.executors._training import FUSE_MODES, check_fuse, training_executor

__all__ = ["ArrayJob", "EpochDone", "Executor", "FUSE_MODES", "FusingExecutor",
           "InProcessExecutor", "Job", "LocalExecutor", "SimulatedExecutor", "TrialEnded",
           "check_fuse", "training_executor"]
