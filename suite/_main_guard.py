"""A script that calls `suite.run` outside `if __name__ == "__main__":` is refused at once.

The suite's workers are spawned processes, and spawn re-runs the user's script in each of
them (as `__mp_main__`) before the worker does anything: unguarded, every worker would start
a study of its own. Two checks, neither depending on when spawn renames `__main__` (Python
3.11 does so only after the script has run):

- in the driver, before anything is written: the `__main__` script's top-level statement
  that led to the call (its frame is on the stack) must lie inside an `if __name__ ==
  "__main__":` block, read from the script's source with `ast`;
- in a spawned process re-running the script: multiprocessing's own flag for "this process
  is still being prepared" (`current_process()._inheriting`, the one multiprocessing checks
  to refuse starting processes from there) or the calling module being `__mp_main__`: one
  line on stderr and exit 2, no traceback.

Without a script (a REPL, `python -c`, a notebook) there is nothing to re-run: no check.
"""

from __future__ import annotations

import ast
import multiprocessing
import sys
from pathlib import Path
from types import FrameType

from suite.errors import SuiteError

__all__ = ["GUARD", "check_main_guard"]

GUARD = 'if __name__ == "__main__":'


def check_main_guard(what: str = "suite.run") -> None:
    """Refuse a study started from an unguarded script (driver) or while spawn re-runs one
    (worker): see the module docstring."""
    frame = sys._getframe(1)
    if getattr(multiprocessing.current_process(), "_inheriting", False) or \
            _called_from_mp_main(frame):
        print(f"error: {what} was called again while a worker process re-ran your script; "
              f"put the call under {GUARD}", file=sys.stderr, flush=True)
        raise SystemExit(2)
    line = _unguarded_line(frame)
    if line is not None:
        raise SuiteError(f"{what} is called from line {line} of your script outside "
                         f"{GUARD}: every worker process re-runs the script, so put the call "
                         "under that guard")


def _called_from_mp_main(frame: FrameType | None) -> bool:
    while frame is not None:
        if frame.f_globals.get("__name__") == "__mp_main__":
            return True
        frame = frame.f_back
    return False


def _unguarded_line(frame: FrameType | None) -> int | None:
    """The line of the running `__main__` script's top-level statement, if it lies outside
    every `if __name__ == "__main__":` body; None if guarded or not called from a script."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    while frame is not None and not (frame.f_globals is getattr(main, "__dict__", None)
                                     and frame.f_code.co_name == "<module>"):
        frame = frame.f_back
    if frame is None or not path:
        return None
    try:
        tree = ast.parse(Path(path).read_bytes(), filename=path)
    except (OSError, SyntaxError, ValueError):
        return None  # not a readable Python source (a zipapp, a frozen binary): no check
    line = frame.f_lineno
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_guard(node.test) and node.body and \
                node.body[0].lineno <= line <= (node.body[-1].end_lineno or line):
            return None
    return line


def _is_guard(test: ast.expr) -> bool:
    """`__name__ == "__main__"`, either way round."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1
            and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = {_plain(test.left), _plain(test.comparators[0])}
    return sides == {"name:__name__", "const:__main__"}


def _plain(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return f"name:{node.id}"
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return f"const:{node.value}"
    return ""
