"""The figure manifest: every committed figure → the command that builds it → its inputs,
with the SHA-256 of the inputs and of the data behind it.

`results/figures/manifest.json`:

    {"about": ..., "renderer": {package: version},
     "figures": [{"name", "command", "study", "inputs", "data", "figures", "notes"}]}

- `command`: a `suite report …` line with `--out`; `suite figures` runs it in-process.
- `study`: a `suite run …` line that makes the runs the command reads, or null. Replayed
  studies are not committed (their logs are megabytes and carry wall-clock times); they
  are rebuilt from the committed table in minutes, and what is committed and hashed is
  the data the report derives from them, which is deterministic.
- `inputs`: committed files the report read (tables; run folders, hashed as a tree of
  their `meta.json`, `log.jsonl` and `study.json`) → SHA-256.
- `data`: the report's `report.md` and `data/*` (relative to `--out`) → SHA-256. Equal
  inputs rebuild equal data byte for byte; `suite figures --check` verifies both.
- `figures`: PNG and PDF → SHA-256. They carry no timestamps, so the same renderer
  versions (`renderer`) give the same bytes; other versions may differ by a pixel, so the
  check compares them only under the recorded versions.

Adding a study is one entry: its `study` and `command` lines, the rest filled by
`suite figures`.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

from suite.errors import SuiteError

__all__ = ["DEFAULT_ENTRIES", "load_manifest", "rebuild_manifest", "check_manifest",
           "sha256_path", "renderer_versions", "build_entry"]

_TREE_FILES = ("meta.json", "log.jsonl", "study.json")
_RENDERER = ("matplotlib", "seaborn", "numpy", "pandas", "scipy", "optuna")

DEFAULT_ENTRIES: list[dict[str, Any]] = [
    {"name": "text_classifier-table",
     "command": "suite report --table results/tables/text_classifier.parquet "
                "--out results/figures/text_classifier-table"},
    {"name": "small_lm-table",
     "command": "suite report --table results/tables/small_lm.parquet "
                "--out results/figures/small_lm-table"},
    {"name": "text_classifier-live",
     "command": "suite report results/runs/text_classifier-live "
                "--table results/tables/text_classifier.parquet --no-table-figures "
                "--out results/figures/text_classifier-live"},
    {"name": "text_classifier-replay",
     "study": "suite run --task text_classifier --table --optimizer "
              "grid,random,tpe,hyperband,bohb,smac,asha --seeds 0-19 --budget 30x "
              "--workers 4 --include-default --out runs/text_classifier-replay",
     "command": "suite report runs/text_classifier-replay --no-table-figures "
                "--out results/figures/text_classifier-replay"},
]

Message = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def sha256_path(path: Path) -> str:
    """SHA-256 of a file, or of a run folder as a tree: each run file's relative path and
    SHA-256, sorted (other files, such as a report inside it, do not count)."""
    path = Path(path)
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    if not path.is_dir():
        raise SuiteError(f"{path} does not exist")
    lines = sorted(f"{p.relative_to(path).as_posix()}\t{sha256_path(p)}\n"
                   for p in path.rglob("*") if p.is_file() and p.name in _TREE_FILES)
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def renderer_versions() -> dict[str, str]:
    out = {}
    for name in _RENDERER:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def load_manifest(path: Path) -> dict[str, Any]:
    """The manifest at `path`, or a new one with `DEFAULT_ENTRIES` when there is none."""
    path = Path(path)
    if not path.is_file():
        return {"about": "suite figures: figure → command → inputs → SHA-256 (see "
                         "suite/report/_manifest.py)", "renderer": {},
                "figures": [dict(e) for e in DEFAULT_ENTRIES]}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        for entry in manifest["figures"]:
            _argv(entry["command"], "report")
        return manifest
    except (ValueError, KeyError, TypeError) as exc:
        raise SuiteError(f"{path} is not a figure manifest ({type(exc).__name__}: {exc})"
                         ) from None


def _argv(command: str, expected: str) -> list[str]:
    argv = shlex.split(command)
    if len(argv) < 2 or argv[0] != "suite" or argv[1] != expected:
        raise ValueError(f"expected `suite {expected} …`, got {command!r}")
    return argv[1:]


def _parse_report(command: str):
    from suite.cli import build_parser

    return build_parser().parse_args(_argv(command, "report"))


def build_entry(entry: dict[str, Any], *, out: Path | None = None, render: bool = True):
    """Run an entry's report command (into `out` instead of its own `--out` if given)."""
    from suite.commands.report_cmd import options, out_dir
    from suite.report import build_report

    args = _parse_report(entry["command"])
    target = Path(out) if out is not None else out_dir(args)
    return build_report([Path(d) for d in args.dirs], target, options(args, render=render))


def _selected(manifest: dict, names: Iterable[str] | None) -> list[dict]:
    names = None if names is None else set(names)
    return [e for e in manifest["figures"] if names is None or e["name"] in names]


def _study_out(entry: dict) -> Path | None:
    study = entry.get("study")
    if not study:
        return None
    argv = _argv(study, "run")
    if "--out" not in argv:
        raise SuiteError(f"{entry['name']}: its study command needs --out")
    return Path(argv[argv.index("--out") + 1])


def _ensure_study(entry: dict, run_studies: bool, say: Message) -> bool:
    """True when the entry's runs exist (running its study first if allowed)."""
    out = _study_out(entry)
    if out is None or ((out / "study.json").exists() and _complete(out)):
        return True
    if not run_studies:
        say(f"{entry['name']}: skipped, its runs {out} are missing or unfinished; run "
            f"`{entry['study']}` (or `suite figures --run-studies`)")
        return False
    argv = _argv(entry["study"], "run")
    resume = ["run", "--resume", str(out)] if (out / "study.json").exists() else argv
    say(f"{entry['name']}: running `suite {' '.join(resume)}`")
    done = subprocess.run([sys.executable, "-m", "suite.cli", *resume], check=False)
    if done.returncode != 0:
        raise SuiteError(f"{entry['name']}: its study command failed (exit "
                         f"{done.returncode})")
    return True


def _complete(out: Path) -> bool:
    from suite.log import find_runs, read_rows

    plan = json.loads((out / "study.json").read_text())
    runs = find_runs([out])
    finished = [r for r in runs if (rows := read_rows(r)) and rows[-1]["event"] == "finish"]
    return len(finished) == len(plan["optimizers"]) * len(plan["seeds"])


def _hashes(paths: Iterable[Path], root: Path | None = None) -> dict[str, str]:
    out = {}
    for p in paths:
        key = Path(p).relative_to(root).as_posix() if root else Path(p).as_posix()
        out[key] = sha256_path(Path(p))
    return dict(sorted(out.items()))


def rebuild_manifest(manifest: dict, path: Path, names: Iterable[str] | None = None, *,
                     run_studies: bool = False, on_message: Message = _quiet) -> dict:
    """Rebuild the selected entries' figures and data, record their hashes, write `path`."""
    for entry in _selected(manifest, names):
        if not _ensure_study(entry, run_studies, on_message):
            continue
        on_message(f"{entry['name']}: `{entry['command']}`")
        result = build_entry(entry)
        study_out = _study_out(entry)
        inputs = [p for p in result.inputs if study_out is None
                  or not Path(p).resolve().is_relative_to(study_out.resolve())]
        entry["inputs"] = _hashes(inputs)
        entry["data"] = _hashes(result.data, result.out)
        entry["figures"] = _hashes(result.figures, result.out)
        entry["notes"] = list(result.notes)
        for note in result.notes:
            on_message(f"  note: {note}")
    manifest["renderer"] = renderer_versions()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


def check_manifest(manifest: dict, names: Iterable[str] | None = None, *,
                   figures: bool = False, scratch: Path | None = None,
                   on_message: Message = _quiet) -> list[str]:
    """Problems found: committed inputs that no longer hash as recorded, and data that a
    rebuild (into a scratch folder) does not reproduce byte for byte; with `figures`, also
    PNG/PDF files, when this machine has the renderer versions the manifest records.
    Rebuilds go to `scratch` (a temporary folder by default). Entries whose study runs
    are missing are skipped with a message."""
    same_renderer = renderer_versions() == manifest.get("renderer")
    if figures and not same_renderer:
        on_message("figure files not compared: the renderer versions differ from the "
                   "manifest's")
    figures = figures and same_renderer
    problems = []
    for entry in _selected(manifest, names):
        if "data" not in entry:
            problems.append(f"{entry['name']}: never built (run `suite figures`)")
            continue
        for key, digest in entry.get("inputs", {}).items():
            if not Path(key).exists():
                problems.append(f"{entry['name']}: input {key} is missing")
            elif sha256_path(Path(key)) != digest:
                problems.append(f"{entry['name']}: input {key} changed")
        if not _ensure_study(entry, False, on_message):
            continue
        with tempfile.TemporaryDirectory(dir=scratch) as folder:
            result = build_entry(entry, out=Path(folder), render=figures)
            rebuilt = {"data": _hashes(result.data, result.out),
                       "figures": _hashes(result.figures, result.out)}
        for kind in ("data", "figures") if figures else ("data",):
            for key in sorted(set(rebuilt[kind]) | set(entry.get(kind, {}))):
                if rebuilt[kind].get(key) != entry.get(kind, {}).get(key):
                    problems.append(f"{entry['name']}: {kind} {key} is not reproduced")
        on_message(f"{entry['name']}: checked")
    return problems
