"""suite: multi-fidelity hyperparameter-optimization benchmarking on real training jobs.

The public Task API (docs/tasks.md): subclass `Task` (or wrap a training function with
`task_from_function`), then name it `package.module:Object` wherever a task is asked for,
or hand it to `run(task=..., optimizers=..., budget=...)`, which returns a `Study`.
Its names are imported on first use, so that `suite --help` stays instant.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from suite._version import __version__

if TYPE_CHECKING:
    from suite._function_task import EpochReport, get_checkpoint, report_epoch, task_from_function
    from suite.api import Placement, Plan, Study, open_study, resume, run
    from suite.registry import load_task
    from suite.space import search_space
    from suite.types import (
        Capabilities,
        EpochResult,
        Fidelity,
        Member,
        Metric,
        Task,
        TaskInfo,
    )

_EXPORTS = {"Capabilities": "suite.types", "EpochResult": "suite.types",
            "Fidelity": "suite.types", "Member": "suite.types", "Metric": "suite.types",
            "Task": "suite.types", "TaskInfo": "suite.types", "load_task": "suite.registry",
            "report_epoch": "suite._function_task", "EpochReport": "suite._function_task",
            "get_checkpoint": "suite._function_task",
            "task_from_function": "suite._function_task", "search_space": "suite.space",
            "Plan": "suite.api", "Placement": "suite.api", "Study": "suite.api",
            "open_study": "suite.api", "resume": "suite.api", "run": "suite.api"}

__all__ = ["Capabilities", "EpochReport", "EpochResult", "Fidelity", "Member", "Metric",
           "Placement", "Plan", "Study", "Task", "TaskInfo", "__version__", "get_checkpoint",
           "load_task", "open_study", "report_epoch", "resume", "run", "search_space",
           "task_from_function"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'suite' has no attribute {name!r}")
