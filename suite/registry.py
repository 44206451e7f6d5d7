"""Task references: how a task is named on the command line, in a study plan, and to
every worker that rebuilds it in a process of its own.

A reference is one string:

- `NAME`: a built-in task (`BUILTIN_TASKS`) or one that an installed package registers
  in the `suite.tasks` entry-point group, e.g. in its pyproject.toml
  `[project.entry-points."suite.tasks"] mine = "mypkg.tasks:Mine"`. A built-in name
  always means the built-in task (the built-ins are declared in the suite's own
  pyproject.toml too, and known here by name so that a source checkout works uninstalled).
- `package.module:Object`: `Object` (a dotted attribute path) is a `Task` subclass (built
  without arguments), a `Task` instance, or a factory (a callable that returns one).

The reference, never the object, travels to the workers (subprocesses, Ray actors) and
into `study.json`, so the module must be importable wherever the workers run (installed,
or on PYTHONPATH). `load_task` resolves a reference and checks the task once: its
description and objective, its space and default, and that every optional capability it
declares has its methods (`suite.types.Capabilities`). A reference that cannot be
resolved or a task that fails the check is a `SuiteError`: one line, exit code 2.

`scale` (`tiny` for tests, `full` for real runs) is an option of the built-in tasks, not
of the Task API: it is given only to a task whose constructor or factory takes it.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from importlib.metadata import entry_points
from typing import Any

from suite.config import validate_config
from suite.errors import ConfigError, SuiteError
from suite.types import CAPABILITY_METHODS, Capabilities, Task, TaskInfo

__all__ = ["BUILTIN_TASKS", "ENTRY_POINT_GROUP", "SCALES", "TASKS", "accepts_scale",
           "check_reference", "check_task", "get_task", "load_task", "reference_of",
           "task_names"]

ENTRY_POINT_GROUP = "suite.tasks"

BUILTIN_TASKS: dict[str, str] = {
    "text_classifier": "tasks.text_classifier:TextClassifier",
    "small_lm": "tasks.small_lm:SmallLM",
    "toy": "suite.testing:ToyTask",  # analytic curves, no torch: for tests and demos
}
TASKS = BUILTIN_TASKS  # the name older code knows them by

SCALES = ("tiny", "full")

_TARGET = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def task_names() -> dict[str, str]:
    """Every task known by name → its `module:Object`: the entry points of installed
    packages, then the built-ins (which win a clash of names)."""
    found: dict[str, str] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(point.name, point.value)
    return {**found, **BUILTIN_TASKS}


def check_reference(ref: str) -> str:
    """The `module:Object` a reference stands for, without importing anything; a
    SuiteError for a malformed reference or an unknown name."""
    if not isinstance(ref, str) or not ref.strip():
        raise SuiteError(f"a task reference is a NAME or package.module:Object, got {ref!r}")
    if ":" in ref:
        if not _TARGET.match(ref):
            raise SuiteError(f"malformed task reference {ref!r}: expected NAME or "
                             "package.module:Object")
        return ref
    names = task_names()
    if ref not in names:
        raise SuiteError(f"unknown task {ref!r}; choose from {', '.join(sorted(names))}, "
                         "or give package.module:Object")
    if not _TARGET.match(names[ref]):
        raise SuiteError(f"task {ref!r} is registered as {names[ref]!r}, not "
                         "package.module:Object")
    return names[ref]


def accepts_scale(ref: str) -> bool:
    """Whether the task behind `ref` takes a `scale` (the built-ins do)."""
    target = _resolve(ref)
    if isinstance(target, Task) or not callable(target):
        return False
    try:
        return "scale" in inspect.signature(target).parameters
    except (TypeError, ValueError):  # a builtin or C callable: no signature to read
        return False


def load_task(ref: str, *, scale: str | None = None) -> Task:
    """The task a reference names, built and checked (see the module docstring).

    Args:
        ref: `NAME` or `package.module:Object`.
        scale: for a task that takes one (the built-ins: `tiny` or `full`); None: its
            default.

    Raises:
        SuiteError: the reference is unknown or broken, the task fails its check, or
            `scale` is given to a task that takes none.
    """
    target = _resolve(ref)
    if scale is not None and not accepts_scale(ref):
        raise SuiteError(f"task {ref!r} takes no scale; drop --scale {scale}")
    if isinstance(target, Task):
        task = target
    elif isinstance(target, type) and not issubclass(target, Task):
        raise SuiteError(f"task {ref!r} is the class {target.__name__}, not a subclass of "
                         "suite.Task")
    elif callable(target):
        try:
            task = target(**({} if scale is None else {"scale": scale}))
        except SuiteError:
            raise
        except Exception as exc:
            raise SuiteError(f"task {ref!r} could not be built: {_describe(exc)}") from None
    else:
        raise SuiteError(f"task {ref!r} is a {type(target).__name__}, not a suite.Task, a "
                         "Task subclass or a factory")
    if not isinstance(task, Task):
        raise SuiteError(f"task {ref!r} built a {type(task).__name__}, not a suite.Task")
    check_task(task, ref)
    return task


def reference_of(task: Any) -> str:
    """The reference that names `task` for the workers: `task` itself if a string, else
    `module:name` of the module-level class, factory or instance it is (what a Python API
    taking a Task object hands to the executors). A SuiteError if it has none: defined in
    `__main__` or inside a function, or not bound to a module-level name."""
    if isinstance(task, str):
        check_reference(task)
        return task
    candidates = [getattr(task, "__module__", None), type(task).__module__,
                  getattr(getattr(task, "fn", None), "__module__", None)]
    for module_name in dict.fromkeys(m for m in candidates if m and m != "__main__"):
        module = sys.modules.get(module_name)
        for name, value in vars(module).items() if module is not None else ():
            if value is task and not name.startswith("__"):
                return f"{module_name}:{name}"
    raise SuiteError(f"cannot name {task!r} for the workers: define it at module level in "
                     "an importable module (not __main__), or give its package.module:Object")


def get_task(ref: str, *, scale: str | None = None) -> Task:
    """`load_task` under the name older code knows it by."""
    return load_task(ref, scale=scale)


def check_task(task: Task, ref: str | None = None) -> Capabilities:
    """Check a task once, where it is loaded: its `info`, its space and default, and that
    each capability it declares has its methods and each method it overrides is declared.
    Returns its capabilities."""
    what = f"task {ref or type(task).__name__!r}"
    info = getattr(task, "info", None)
    if not isinstance(info, TaskInfo):
        raise SuiteError(f"{what} has no `info = TaskInfo(name, ...)`")
    if type(info.revision) is not int or info.revision < 1:
        raise SuiteError(f"{what}: TaskInfo.revision must be an integer from 1, got "
                         f"{info.revision!r}")
    caps = getattr(task, "capabilities", None)
    if not isinstance(caps, Capabilities):
        raise SuiteError(f"{what}: `capabilities` is not a suite.Capabilities")
    for name, methods in CAPABILITY_METHODS.items():
        declared = getattr(caps, name)
        for method in methods:
            overridden = getattr(type(task), method, None) is not getattr(Task, method)
            if declared and not overridden:
                raise SuiteError(f"{what} declares Capabilities({name}=True) but does not "
                                 f"define {method}")
            if overridden and not declared:
                raise SuiteError(f"{what} defines {method} but does not declare "
                                 f"Capabilities({name}=True)")
    if caps.test and not caps.checkpoints:
        raise SuiteError(f"{what} declares a test evaluation without checkpoints to evaluate")
    if caps.test_epochs:
        _check_test_keyword(task, caps, what)
    try:
        space = task.config_space()
        validate_config(space, task.default_config())
    except ConfigError as exc:
        raise SuiteError(f"{what}: its default configuration does not fit its space: "
                         f"{exc}") from None
    except SuiteError:
        raise
    except Exception as exc:
        raise SuiteError(f"{what}: its space or default failed: {_describe(exc)}") from None
    return caps


def _check_test_keyword(task: Task, caps: Capabilities, what: str) -> None:
    """`test_epochs` promises `train(..., test=...)` (and `train_fused`'s, when fused)."""
    for method in ("train", "train_fused") if caps.fused else ("train",):
        try:
            params = inspect.signature(getattr(task, method)).parameters
        except (TypeError, ValueError):  # no signature to read: trust the declaration
            continue
        if "test" not in params and not any(
                p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            raise SuiteError(f"{what} declares Capabilities(test_epochs=True) but its "
                             f"{method} takes no `test` keyword")


def _resolve(ref: str) -> Any:
    """The object `module:Object` names, imported; one-line SuiteErrors."""
    target = check_reference(ref)
    module_name, _, attribute = target.partition(":")
    try:
        obj = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name + ".").startswith(exc.name + "."):
            raise SuiteError(f"task {ref!r}: no module named {exc.name!r} (install it, or "
                             "put its folder on PYTHONPATH)") from None
        raise SuiteError(f"task {ref!r}: importing {module_name} failed: "
                         f"{_describe(exc)}") from None
    except Exception as exc:  # a module that raises while it imports
        raise SuiteError(f"task {ref!r}: importing {module_name} failed: "
                         f"{_describe(exc)}") from None
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise SuiteError(f"task {ref!r}: {module_name} has no {attribute!r}") from None
    return obj


def _describe(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
