"""`suite figures`: rebuild every figure in results/figures/ from its manifest."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from suite.errors import SuiteError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifest", default="results/figures/manifest.json",
                        help="the manifest (default results/figures/manifest.json; created "
                             "with the default entries when missing)")
    parser.add_argument("--only", metavar="NAME[,NAME]", help="rebuild only these entries")
    parser.add_argument("--check", action="store_true",
                        help="rebuild in a scratch folder and compare the SHA-256 of the "
                             "inputs, data (and figures, under the manifest's renderer "
                             "versions) with the manifest; write nothing")
    parser.add_argument("--run-studies", action="store_true",
                        help="run an entry's study command (`suite run …`) when its runs "
                             "are missing (replays: minutes on a CPU)")


def run(args: argparse.Namespace) -> int:
    from suite.report._manifest import check_manifest, load_manifest, rebuild_manifest

    path = Path(args.manifest)
    manifest = load_manifest(path)
    names = [n.strip() for n in args.only.split(",")] if args.only else None
    known = {e["name"] for e in manifest["figures"]}
    unknown = sorted(set(names or ()) - known)
    if unknown:
        raise SuiteError(f"no manifest entry {', '.join(unknown)}; the entries are "
                         f"{', '.join(sorted(known))}")
    console = Console()

    def say(text: str) -> None:
        console.print(text, highlight=False)

    if args.check:
        problems = check_manifest(manifest, names, figures=True, on_message=say)
        for problem in problems:
            say(f"[red]mismatch[/]: {problem}")
        say(f"{path}: {'OK' if not problems else f'{len(problems)} mismatches'}")
        return 1 if problems else 0
    rebuild_manifest(manifest, path, names, run_studies=args.run_studies, on_message=say)
    say(f"{path}: written")
    return 0
