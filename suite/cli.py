"""The `suite` command line: composes the library; holds no logic of its own."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from suite._version import __version__
from suite.errors import NoSpaceError, SuiteError, cannot_write

__all__ = ["main", "build_parser"]


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="suite", description="Multi-fidelity HPO benchmarking on real "
                     "training jobs: tasks, optimizers, one budget ledger, reports.")
    parser.add_argument("--version", action="version", version=f"suite {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    tasks = sub.add_parser("tasks", help="list the tasks with their spaces, defaults, fidelity")
    tasks.add_argument("--task", help="show only this task (NAME or package.module:Object)")

    train = sub.add_parser("train", help="train one configuration and print per-epoch metrics")
    train.add_argument("--task", required=True)
    train.add_argument("--config", default="default",
                       help="'default', a JSON file, or an inline JSON object; keys left out "
                            "take the task default")
    train.add_argument("--epochs", type=int, help="absolute epoch target (default: max)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    train.add_argument("--scale", choices=["tiny", "full"],
                       help="a built-in task's size (default full)")
    train.add_argument("--save", metavar="PATH", help="write a checkpoint here after each epoch")
    train.add_argument("--resume-from", metavar="PATH", help="continue from this checkpoint")
    train.add_argument("--test", action="store_true",
                       help="evaluate the final model on the held-out test set")
    from suite.commands.run_cmd import add_arguments

    add_arguments(sub.add_parser("run", help="compare optimizers × seeds under one budget"))
    from suite.commands import tabulate_cmd

    tabulate_cmd.add_arguments(sub.add_parser(
        "tabulate", help="record a task's table of learning curves (resumable)"))
    from suite.commands import figures_cmd, report_cmd

    report_cmd.add_arguments(sub.add_parser(
        "report", help="a report (Markdown, HTML, figures) from run logs and/or a table"))
    figures_cmd.add_arguments(sub.add_parser(
        "figures", help="rebuild results/figures/ from its manifest (--check verifies)"))
    from suite.commands import mlflow_cmd

    mlflow_cmd.add_arguments(sub.add_parser(
        "mlflow", help="export a study's logs into MLflow (again: only what is missing)"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from suite.commands import COMMANDS  # after parsing: `--help` never imports torch

    try:
        return COMMANDS[args.command](args)
    except SuiteError as exc:
        print(f"suite {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a full disk where no command expected a write to fail
        error = cannot_write(exc.filename or "a file", exc)
        if not isinstance(error, NoSpaceError):
            raise  # anything else is a bug: its traceback is what to report
        print(f"suite {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"suite {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
