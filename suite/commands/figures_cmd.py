"""`suite figures`: rebuild every figure in results/figures/ from its manifest."""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from suite.commands import report_cmd
from suite.errors import SuiteError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifest", default="results/figures/manifest.json",
                        help="the manifest (default results/figures/manifest.json; created "
                             "with the default entries when missing)")
    parser.add_argument("--only", metavar="NAME[,NAME]", help="rebuild only these entries")
    parser.add_argument("--check", action="store_true",
                        help="rebuild in a scratch folder and compare the SHA-256 of the "
                             "inputs, data (and figures, under the manifest's renderer "
                             "versions) with the manifest, and read every figure for "
                             "overlapping, cut-off or too small text and legends over data; "
                             "write nothing")
    parser.add_argument("--run-studies", action="store_true",
                        help="run an entry's study command (`suite run …`) when its runs "
                             "are missing (replays: minutes on a CPU)")


def run(args: argparse.Namespace) -> int:
    from suite.report._manifest import check_manifest, load_manifest, rebuild_manifest

    path = Path(args.manifest)
    manifest = load_manifest(path, convert=convert_entry)
    names = [n.strip() for n in args.only.split(",")] if args.only else None
    known = {e["name"] for e in manifest["figures"]}
    unknown = sorted(set(names or ()) - known)
    if unknown:
        raise SuiteError(f"no manifest entry {', '.join(unknown)}; the entries are "
                         f"{', '.join(sorted(known))}")
    console = Console()

    def say(text: str) -> None:
        console.print(text, highlight=False, soft_wrap=True)

    if args.check:
        problems = check_manifest(manifest, names, figures=True, on_message=say)
        for problem in problems:
            say(f"[red]mismatch[/]: {problem}")
        say(f"{path}: {'OK' if not problems else f'{len(problems)} mismatches'}")
        return 1 if problems else 0

    def run_study(command: str, out: Path) -> None:
        argv = shlex.split(command)[1:]  # without the leading `suite`
        if (out / "study.json").exists():
            argv = ["run", "--resume", str(out)]
        say(f"running `suite {' '.join(argv)}`")
        done = subprocess.run([sys.executable, "-m", "suite.cli", *argv], check=False)
        if done.returncode != 0:
            raise SuiteError(f"`{command}` failed (exit {done.returncode})")

    rebuild_manifest(manifest, path, names, run_study=run_study if args.run_studies else None,
                     on_message=say)
    say(f"{path}: written")
    return 0


class _ReportParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise SuiteError(f"{self.prog}: {message}")


def convert_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry of the old manifest format, whose `command` is a `suite report …` line,
    as one that names its report (`report`: roots, out, options); the rest is kept."""
    from suite.report._manifest import report_entry

    argv = shlex.split(entry["command"])
    if argv[:2] != ["suite", "report"]:
        raise ValueError(f"expected `suite report …`, got {entry['command']!r}")
    parser = _ReportParser(prog=f"manifest entry {entry.get('name')!r}")
    report_cmd.add_arguments(parser)
    args = parser.parse_args(argv[2:])
    report = report_entry(args.dirs, report_cmd.out_dir(args), report_cmd.options(args))
    converted = {k: v for k, v in entry.items() if k != "command"}
    at = list(converted).index("inputs") if "inputs" in converted else len(converted)
    items = list(converted.items())
    return dict([*items[:at], ("report", report), *items[at:]])
