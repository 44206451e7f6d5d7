"""One module per CLI subcommand; each function takes the parsed arguments, returns an exit code."""

from suite.commands import figures_cmd, mlflow_cmd, report_cmd, tabulate_cmd
from suite.commands.run_cmd import run
from suite.commands.tasks_cmd import list_tasks
from suite.commands.train_cmd import train

COMMANDS = {"tasks": list_tasks, "train": train, "run": run, "tabulate": tabulate_cmd.run,
            "report": report_cmd.run, "figures": figures_cmd.run, "mlflow": mlflow_cmd.run}

__all__ = ["COMMANDS"]
