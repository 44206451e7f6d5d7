"""Plain-dict registries: names on the command line → the classes that implement them.

Task modules import torch, so they are loaded only when asked for.
"""

from __future__ import annotations

import importlib

from suite.errors import SuiteError
from suite.types import Task

__all__ = ["TASKS", "check_task", "get_task", "SCALES"]

TASKS: dict[str, str] = {
    "text_classifier": "tasks.text_classifier:TextClassifier",
    "small_lm": "tasks.small_lm:SmallLM",
    "toy": "suite.testing:ToyTask",  # analytic curves, no torch: for tests and demos
}

SCALES = ("tiny", "full")


def check_task(name: str) -> None:
    """Reject a name that is not a registered task, with the choices, before any work."""
    if name not in TASKS:
        raise SuiteError(f"unknown task {name!r}; choose from {', '.join(sorted(TASKS))}")


def get_task(name: str, *, scale: str = "full") -> Task:
    """Instantiate a registered task at a scale (`tiny` for tests, `full` for real runs)."""
    check_task(name)
    if scale not in SCALES:
        raise SuiteError(f"unknown scale {scale!r}; choose from {', '.join(SCALES)}")
    module_name, class_name = TASKS[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)(scale=scale)
