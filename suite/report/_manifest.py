"""The figure manifest: every committed figure → the report that builds it → its inputs,
with the SHA-256 of the inputs and of the data behind it.

`results/figures/manifest.json`:

    {"about": ..., "renderer": {package: version},
     "figures": [{"name", "study", "report", "inputs", "data", "figures", "notes"}]}

- `report`: what to build, in `build_report`'s own terms: `{"roots": [run folders],
  "out": report folder, "options": {ReportOptions field: value}}`, the options left out
  taking their defaults (`table` a path, `fidelities` a list of epochs; `render` is the
  check's to decide). `suite figures` calls `build_report` with them.
- `study`: a `suite run … --out DIR` line that makes the runs the report reads, or null.
  Replayed studies are not committed (their logs are megabytes and carry wall-clock
  times); they are rebuilt from the committed table in minutes, and what is committed and
  hashed is the data the report derives from them, which is deterministic. The report
  layer only reads the line's `--out`; running it is the command line's job
  (`suite figures --run-studies`).
- `inputs`: committed files the report read (tables; run folders, hashed as a tree of
  their `meta.json`, `log.jsonl` and `study.json`) → SHA-256.
- `data`: the report's `report.md` and `data/*` (relative to `out`) → SHA-256. Equal
  inputs rebuild equal data byte for byte; `suite figures --check` verifies both.
- `figures`: PNG and PDF → SHA-256. They carry no timestamps, so the same renderer
  versions (`renderer`) give the same bytes; other versions may differ by a pixel, so the
  check compares them only under the recorded versions.

Adding a study is one entry: its `study` line and `report`, the rest filled by
`suite figures`. Manifests written before `report` existed named a `suite report …`
`command` instead; `load_manifest` takes a `convert` function for those (the command
line passes one that parses them), and without it refuses them in one line.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import shlex
import tempfile
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

from suite import _json
from suite.errors import SuiteError
from suite.report._compose import build_report
from suite.report._runs import local_path
from suite.report._writer import ReportOptions, ReportResult

__all__ = ["DEFAULT_ENTRIES", "load_manifest", "rebuild_manifest", "check_manifest",
           "sha256_path", "renderer_versions", "build_entry", "report_entry",
           "options_from_dict", "options_to_dict"]

_TREE_FILES = ("meta.json", "log.jsonl", "study.json")
# fonttools subsets the fonts a PDF embeds: another version, other PDF bytes
_RENDERER = ("matplotlib", "seaborn", "numpy", "pandas", "scipy", "optuna", "fonttools")
_TC_TABLE = "results/tables/text_classifier.parquet"

DEFAULT_ENTRIES: list[dict[str, Any]] = [
    {"name": "text_classifier-table",
     "report": {"roots": [], "out": "results/figures/text_classifier-table",
                "options": {"table": _TC_TABLE}}},
    {"name": "small_lm-table",
     "report": {"roots": [], "out": "results/figures/small_lm-table",
                "options": {"table": "results/tables/small_lm-r1.parquet"}}},
    {"name": "text_classifier-live",
     "report": {"roots": ["results/runs/text_classifier-live"],
                "out": "results/figures/text_classifier-live",
                "options": {"table": _TC_TABLE, "table_figures": False}}},
    {"name": "text_classifier-replay",
     "study": "suite run --task text_classifier --table --optimizer "
              "grid,random,tpe,hyperband,bohb,smac,asha --seeds 0-19 --budget 30x "
              "--workers 4 --include-default --out runs/text_classifier-replay",
     "report": {"roots": ["runs/text_classifier-replay"],
                "out": "results/figures/text_classifier-replay",
                "options": {"table_figures": False}}},
]

Message = Callable[[str], None]
RunStudy = Callable[[str, Path], None]  # (the study's `suite run` line, its --out folder)
Convert = Callable[[dict[str, Any]], dict[str, Any]]  # an old `command` entry → `report`

_OPTION_FIELDS = {f.name for f in dataclasses.fields(ReportOptions)} - {"render", "check_figures"}


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


def load_manifest(path: Path, *, convert: Convert | None = None) -> dict[str, Any]:
    """The manifest at `path`, or a new one with `DEFAULT_ENTRIES` when there is none.

    Args:
        convert: turns an entry of the old format (a `suite report …` `command`) into
            one with `report`; without it such an entry is refused.

    Raises:
        SuiteError: not a manifest, or an entry that names no report to build.
    """
    path = Path(path)
    if not path.is_file():
        return {"about": "suite figures: figure → report → inputs → SHA-256 (see "
                         "suite/report/_manifest.py)", "renderer": {},
                "figures": copy.deepcopy(DEFAULT_ENTRIES)}
    try:
        manifest = _json.loads(path.read_text(encoding="utf-8"))
        entries = manifest["figures"]
        for i, entry in enumerate(entries):
            if "report" not in entry and "command" in entry:
                if convert is None:
                    raise SuiteError(f"{path}: entry {entry.get('name')!r} names a `command` "
                                     "(the old format); rebuild it with `suite figures`")
                entries[i] = entry = convert(entry)
            _check_entry(entry)
        return manifest
    except (ValueError, KeyError, TypeError) as exc:
        raise SuiteError(f"{path} is not a figure manifest ({type(exc).__name__}: {exc})"
                         ) from None


def _check_entry(entry: dict[str, Any]) -> None:
    """Raises ValueError/KeyError/TypeError on an entry `build_entry` cannot build."""
    str(entry["name"])
    report = entry["report"]
    if not isinstance(report["roots"], list) or not isinstance(report["out"], str):
        raise TypeError(f"{entry['name']}: report needs a list of roots and an out folder")
    options_from_dict(report.get("options", {}))
    _study_out(entry)


def options_from_dict(options: dict[str, Any]) -> ReportOptions:
    """`ReportOptions` from a manifest's plain dict (paths and lists as JSON has them)."""
    unknown = sorted(set(options) - _OPTION_FIELDS)
    if unknown:
        raise ValueError(f"unknown report options {', '.join(unknown)}; known: "
                         f"{', '.join(sorted(_OPTION_FIELDS))}")
    values = dict(options)
    if values.get("table") is not None:
        values["table"] = Path(values["table"])
    if values.get("fidelities") is not None:
        values["fidelities"] = tuple(int(e) for e in values["fidelities"])
    return ReportOptions(**values)


def options_to_dict(options: ReportOptions) -> dict[str, Any]:
    """The options that differ from the defaults, as plain JSON values (not `render`)."""
    default = ReportOptions()
    out = {}
    for name in (f.name for f in dataclasses.fields(ReportOptions)):
        value = getattr(options, name)
        if name in _OPTION_FIELDS and value != getattr(default, name):
            out[name] = (Path(value).as_posix() if isinstance(value, Path) else
                         list(value) if isinstance(value, tuple) else value)
    return out


def report_entry(roots: Iterable[Path | str], out: Path | str,
                 options: ReportOptions) -> dict[str, Any]:
    """An entry's `report`: what `build_entry` passes to `build_report`."""
    return {"roots": [Path(r).as_posix() for r in roots], "out": Path(out).as_posix(),
            "options": options_to_dict(options)}


def build_entry(entry: dict[str, Any], *, out: Path | None = None,
                render: bool = True, check_figures: bool = False) -> ReportResult:
    """Build an entry's report (into `out` instead of its own folder if given); with
    `check_figures`, each figure read for what a reader could not read."""
    report = entry["report"]
    options = dataclasses.replace(options_from_dict(report.get("options", {})),
                                  render=render, check_figures=check_figures)
    target = Path(out) if out is not None else Path(report["out"])
    return build_report([Path(d) for d in report["roots"]], target, options)


def _selected(manifest: dict, names: Iterable[str] | None) -> list[dict]:
    names = None if names is None else set(names)
    return [e for e in manifest["figures"] if names is None or e["name"] in names]


def _study_out(entry: dict) -> Path | None:
    """The folder an entry's `study` line writes (its `--out`), or None without a study."""
    study = entry.get("study")
    if not study:
        return None
    argv = shlex.split(study)
    if argv[:2] != ["suite", "run"]:
        raise ValueError(f"expected `suite run …`, got {study!r}")
    if "--out" not in argv[:-1]:
        raise ValueError(f"{entry['name']}: its study command needs --out")
    return Path(argv[argv.index("--out") + 1])


def _ensure_study(entry: dict, run_study: RunStudy | None, say: Message) -> bool:
    """True when the entry's runs exist (running its study first if given a way to)."""
    out = _study_out(entry)
    if out is None or ((out / "study.json").exists() and _complete(out)):
        return True
    if run_study is None:
        say(f"{entry['name']}: skipped, its runs {out} are missing or unfinished; run "
            f"`{entry['study']}` (or `suite figures --run-studies`)")
        return False
    say(f"{entry['name']}: its runs {out} are missing or unfinished; running its study")
    run_study(entry["study"], out)
    return True


def _complete(out: Path) -> bool:
    from suite.log import find_runs, read_log
    from suite.records import FinishRow

    plan = _json.loads((out / "study.json").read_text(encoding="utf-8"))
    runs = find_runs([out])
    finished = [r for r in runs if (rows := read_log(r)) and type(rows[-1]) is FinishRow]
    return len(finished) == len(plan["optimizers"]) * len(plan["seeds"])


def _hashes(paths: Iterable[Path], root: Path | None = None) -> dict[str, str]:
    out = {}
    for p in paths:
        key = Path(p).relative_to(root).as_posix() if root else local_path(p)
        out[key] = sha256_path(Path(p))
    return dict(sorted(out.items()))


def rebuild_manifest(manifest: dict, path: Path, names: Iterable[str] | None = None, *,
                     run_study: RunStudy | None = None, on_message: Message = _quiet) -> dict:
    """Rebuild the selected entries' figures and data, record their hashes, write `path`
    (atomically; the other entries as `path` holds them when written, so a long rebuild
    never undoes one that finished meanwhile).

    Args:
        run_study: runs an entry's study when its runs are missing or unfinished; without
            it such entries are skipped with a message.
    """
    rebuilt = {}
    for entry in _selected(manifest, names):
        if not _ensure_study(entry, run_study, on_message):
            continue
        rebuilt[entry["name"]] = entry
        on_message(f"{entry['name']}: building {entry['report']['out']}")
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
    path = Path(path)
    if path.exists():  # a study can take most of an hour: what others wrote since stays
        on_disk = json.loads(path.read_text(encoding="utf-8"))
        names_on_disk = {e["name"] for e in on_disk.get("figures", [])}
        on_disk["figures"] = [rebuilt.get(e["name"], e) for e in on_disk.get("figures", [])]
        on_disk["figures"] += [e for e in manifest["figures"] if e["name"] not in names_on_disk]
        manifest = on_disk
    manifest["renderer"] = renderer_versions()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return manifest


def check_manifest(manifest: dict, names: Iterable[str] | None = None, *,
                   figures: bool = False, scratch: Path | None = None,
                   on_message: Message = _quiet) -> list[str]:
    """Problems found: committed inputs that no longer hash as recorded, and data that a
    rebuild (into a scratch folder) does not reproduce byte for byte; with `figures`, also
    PNG/PDF files, when this machine has the renderer versions the manifest records; and
    every figure a reader could not read (`suite.report._legibility`). Rebuilds go to
    `scratch` (a temporary folder by default). Entries whose study runs are missing are
    skipped with a message."""
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
        if not _ensure_study(entry, None, on_message):
            continue
        with tempfile.TemporaryDirectory(dir=scratch) as folder:
            result = build_entry(entry, out=Path(folder), render=figures,
                                 check_figures=True)
            rebuilt = {"data": _hashes(result.data, result.out),
                       "figures": _hashes(result.figures, result.out)}
        problems += [f"{entry['name']}: {p}" for p in result.legibility]
        for kind in ("data", "figures") if figures else ("data",):
            for key in sorted(set(rebuilt[kind]) | set(entry.get(kind, {}))):
                if rebuilt[kind].get(key) != entry.get(kind, {}).get(key):
                    problems.append(f"{entry['name']}: {kind} {key} is not reproduced")
        on_message(f"{entry['name']}: checked")
    return problems
