"""A study's settings, defined once: what it runs (`Plan`) and where it runs (`Placement`).

Each field of the two dataclasses below is one setting: its name, type and default, and
in its metadata (`setting(...)`) the help of its command-line flag, the values it may
take and the check of one value. Everything else is derived from these definitions:

- `suite run`'s flags (`add_flags`, `from_flags`: `--keep-checkpoints` for
  `keep_checkpoints`, a comma-separated list for a tuple, a switch for a bool);
- the Python API's `suite.Plan(...)` and `suite.Placement(...)`: these classes;
- study.json: `suite.spec.StudySpec` is `Plan`, `Placement` and what planning resolves
  (`Resolved`), read back through `decode` (the JSON types follow the annotations);
- each run's meta.json: `RunSettings` (the study's settings with one optimizer and seed)
  is the base of `suite.records.RunMeta`;
- the checks of one value (`check_values`: its choices and its own rule); what depends on
  several settings (a table with --devices, --gpus-per-trial without Ray) is StudySpec's.

A key an older study.json or meta.json lacks takes the default, the setting that runs had
before it existed. Torch-free and quick to import: `suite run --help` reads it.
"""

from __future__ import annotations

import math
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields, make_dataclass
from typing import Any

from suite.errors import SuiteError

__all__ = ["Plan", "Placement", "Resolved", "RunSettings", "setting", "decode", "json_types",
           "check_values", "settings_of", "flag_fields", "add_flags", "given_flags",
           "from_flags", "parse_seeds", "check_seeds", "check_runs", "check_fuse_max",
           "EXECUTORS", "PROMOTION_POLICIES", "KEEP_CHECKPOINTS", "ON_FAILURE", "FUSE_MODES",
           "MAX_SEED", "MAX_RUNS", "MAX_WORKERS", "MAX_TRIAL_TIMEOUT", "MAX_FUSE"]

EXECUTORS = ("local", "inprocess", "simulated", "ray")
PROMOTION_POLICIES = ("resume", "retrain")
KEEP_CHECKPOINTS = ("needed", "all")  # `suite._retention`
ON_FAILURE = ("continue", "stop")  # what a failed trial does to its run
FUSE_MODES = ("off", "auto")

# Limits on a plan, checked before anything is written (docs/reliability.md, "Bad input"):
MAX_SEED = 2**32 - 1  # numpy's and the optimizers' libraries' seed range
MAX_RUNS = 10_000  # optimizers × seeds: beyond it a typo (--seeds 0-100000000), not a study
MAX_WORKERS = 1024  # processes (or simulated workers, each a slot) started up front
MAX_TRIAL_TIMEOUT = 7 * 24 * 3600.0  # a week of wall seconds per trial attempt
MAX_FUSE = 256  # members per fused array


def setting(default: Any = MISSING, *, help: str | None, choices: tuple | None = None,
            check: Callable[[Any], None] | None = None, flag: str | None = None,
            cli: Mapping[str, Any] | None = None, parse: Callable[[str], Any] | None = None,
            on_resume: bool = False) -> Any:
    """A setting's field: `help` for its flag (None: not a flag), `choices` it may take
    (checked, and the flag's choices), `check` (one value; raises SuiteError), `flag` where
    it is not `--name-with-dashes`, `cli` further argparse keywords, `parse` the flag's
    text to a value (a tuple's default: comma-separated), `on_resume` a flag `--resume`
    accepts (where the study runs, not what it runs)."""
    meta = {"help": help, "choices": choices, "check": check, "flag": flag,
            "cli": dict(cli or {}), "parse": parse, "on_resume": on_resume}
    return field(default=default, metadata=meta)


def _at_least_one_seed(seeds: tuple[int, ...]) -> None:
    if not seeds:
        raise SuiteError("a study needs at least one optimizer and one seed")
    check_seeds(seeds)


def _at_least_one_optimizer(names: tuple[str, ...]) -> None:
    if not names:
        raise SuiteError("a study needs at least one optimizer and one seed")


def _workers(n: int) -> None:
    if not 1 <= n <= MAX_WORKERS:
        raise SuiteError(f"--workers must be in 1..{MAX_WORKERS}, got {n}")


def _trial_timeout(seconds: float | None) -> None:
    if seconds is not None and not 0 < seconds <= MAX_TRIAL_TIMEOUT:  # NaN and inf fail too
        raise SuiteError(f"--trial-timeout must be positive seconds, at most "
                         f"{MAX_TRIAL_TIMEOUT:.0f} (a week), got {seconds:g}")


def _gpus(gpus: float | None) -> None:
    # Ray shares a GPU by fractions below 1 and gives whole GPUs above it
    if gpus is not None and (gpus < 0 or (gpus > 1 and gpus != int(gpus))):
        raise SuiteError(f"--gpus-per-trial must be a fraction in 0..1 or a whole number "
                         f"of GPUs, got {gpus:g}")


def check_fuse_max(k: int) -> None:
    # workers × fuse_max trials are asked for at once: a huge K would ask without end
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_FUSE:
        raise SuiteError(f"--fuse-max must be an integer in 1..{MAX_FUSE}, got {k!r}")


_SEEDS = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")


def parse_seeds(text: str) -> tuple[int, ...]:
    """`3`, `0-4` or `0,2,5-7` → a tuple of seeds in the given order, without repeats.

    Ranges are bounded (seeds in 0..MAX_SEED, at most MAX_RUNS of them) before any is
    made: `0-100000000000` is refused at once, not after filling the memory."""
    text = text.replace(" ", "")
    if not _SEEDS.match(text):
        raise SuiteError(f"malformed seeds {text!r}: expected e.g. 0, 0-4 or 0,2,5-7")
    ranges = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        lo, hi = int(low), int(high or low)
        if hi < lo:
            raise SuiteError(f"malformed seed range {part!r}: the end is below the start")
        check_seeds((hi,))
        ranges.append(range(lo, hi + 1))
    check_runs(sum(map(len, ranges)))  # a run per seed at least: no more seeds than runs
    return tuple(dict.fromkeys(s for r in ranges for s in r))  # ordered, without repeats


def check_seeds(seeds) -> None:
    """Every seed in 0..MAX_SEED: outside it numpy refuses it mid-run, after files exist."""
    bad = next((s for s in seeds if not 0 <= s <= MAX_SEED), None)
    if bad is not None:
        raise SuiteError(f"seed {bad} is outside 0..{MAX_SEED} (2**32-1)")


def check_runs(runs: int) -> None:
    if runs > MAX_RUNS:
        raise SuiteError(f"{runs} runs (optimizers × seeds) exceed the limit of {MAX_RUNS} "
                         "per study; split it into several studies")


@dataclass(frozen=True)
class Plan:
    """What a study runs: every optimizer × seed on one task and budget.

    `task` is a reference (`NAME` or `package.module:Object`); `budget` is `600s`
    (device-seconds), `300e` (epochs) or `20x` (full-fidelity equivalents). `space`, the
    path of a recorded table, makes a live study search that table's grid and train what
    the table recorded (`suite.setting`): what its replay would ask, trained for real.
    """

    task: str = setting(help="NAME (suite tasks lists them) or package.module:Object")
    optimizers: tuple[str, ...] = setting(
        help="one or more, comma-separated (e.g. random,bohb)", flag="--optimizer",
        cli={"metavar": "NAMES"},
        check=_at_least_one_optimizer)
    budget: str = setting(help="600s (device-seconds), 300e (epochs), 20x (full-fidelity "
                               "equivalents) or 0.5carps (CARP-S budgets: ⌈20 + 40·√d⌉ x "
                               "for d hyperparameters)")
    seeds: tuple[int, ...] = setting((0,), help="several seeds: 0-4 or 0,2,5-7 (--seed N: one)",
                                     parse=parse_seeds, check=_at_least_one_seed)
    include_default: bool = setting(
        False, help="make the task's default configuration one of the first trials (in a "
                    "replay: the table grid's configuration nearest to it)")
    promotion: str = setting("resume", help="how a promoted trial trains on: resume its "
                                            "checkpoint, or retrain from the first epoch",
                             choices=PROMOTION_POLICIES)
    scale: str | None = setting(None, help="a built-in task's size", cli={"choices": ("tiny",
                                                                                      "full")})
    space: str | None = setting(
        None, cli={"nargs": "+", "metavar": ("table", "PATH")},
        help="table [PATH]: train live on the grid a recorded table holds (its fixed values "
             "too), each trial with the seed a replay reads, to compare live with replayed "
             "runs (default PATH results/tables/<task>.parquet); default: the task's space")


@dataclass(frozen=True)
class Placement:
    """Where a study runs: `local` subprocess workers by default (one, on `auto`).

    `table` replays a recorded table on the simulated executor; `address` and
    `gpus_per_trial` are the Ray executor's; `trial_timeout` is wall seconds per attempt.
    `keep_checkpoints`: `needed` (default) deletes, as a live run goes, every checkpoint
    nothing can need any more (a retry, a resume, a promotion, the incumbent:
    `suite._retention`) and keeps only the incumbent's at the end; `all` deletes none.
    `on_failure`: `continue` (default; a failed trial is a result, as with Optuna's
    `catch`) or `stop` (the first failed trial stops the study, as Ray Tune's
    `fail_fast`; it resumes).
    """

    executor: str | None = setting(
        None, choices=EXECUTORS,
        help="local: subprocess workers (default); inprocess: this process; ray: Ray actors "
             "on a cluster, or with --table each run a Ray task (pip install "
             "'hpo-suite[ray]'); simulated: a replay (the default with --table)")
    workers: int = setting(1, help="parallel workers (simulated ones in a replay)",
                           check=_workers, cli={"metavar": "N"})
    devices: tuple[str, ...] = setting(("auto",), help="comma-separated, round-robin over "
                                                       "workers, e.g. cuda:0,cuda:0 (default "
                                                       "auto)")
    table: str | None = setting(
        None, help="replay against a recorded table on the simulated executor (default PATH "
                   "results/tables/<task>.parquet)", cli={"nargs": "?", "const": "",
                                                          "metavar": "PATH"})
    address: str | None = setting(None, on_resume=True,
                                  help="with --executor ray: the cluster's address (default: "
                                       "start a local Ray instance)")
    gpus_per_trial: float | None = setting(
        None, check=_gpus, cli={"metavar": "G"},
        help="with --executor ray: each trial's GPUs, e.g. 0.25 (default 0: CPU)")
    trial_timeout: float | None = setting(
        None, check=_trial_timeout, cli={"metavar": "SECONDS"},
        help="stop a trial attempt after this many wall seconds (logged timeout)")
    fuse: str = setting("off", choices=FUSE_MODES,
                        help="auto: train queued trials that share a shape as one fused array "
                             "per worker (local executor; default off)")
    fuse_max: int = setting(8, check=check_fuse_max, cli={"metavar": "K"},
                            help="members per fused array (default 8); up to workers × K "
                                 "trials in flight")
    keep_checkpoints: str = setting(
        "needed", choices=KEEP_CHECKPOINTS,
        help="needed (default): a live run deletes each checkpoint once nothing (a retry, a "
             "resume, a promotion, the incumbent) can need it, and keeps the incumbent's at "
             "its end; all: delete none")
    on_failure: str = setting("continue", choices=ON_FAILURE,
                              help="continue (default): a failed trial is a result and the "
                                   "study goes on; stop: the first failed trial stops the "
                                   "study (it resumes)")


@dataclass(frozen=True)
class Resolved:
    """What planning adds to the settings given (`suite.setting`), never given itself."""

    budget_spelling: str | None = setting(None, help=None)  # as asked (`1carps`), once the
    # budget is resolved to full-fidelity equivalents (`126x`)


def _run_field(f: Field) -> tuple[str, Any, Field]:
    """A study setting as a run's meta.json records it: optional there (None where the
    study's has no default), as files written before the key existed lack it."""
    if f.default is MISSING and f.default_factory is MISSING:
        return f.name, f"{f.type} | None", field(default=None, metadata=f.metadata)
    return f.name, f.type, field(default=f.default, metadata=f.metadata)


# The settings a run's meta.json records: the study's, but for the optimizers and seeds
# (a run has one of each, `RunMeta.optimizer` and `.seed`). `suite.records.RunMeta`
# derives from it, so a new setting is recorded and read back without another edit.
RunSettings = make_dataclass(
    "RunSettings", [_run_field(f) for cls in (Plan, Placement, Resolved) for f in fields(cls)
                    if f.name not in ("optimizers", "seeds")],
    frozen=True, namespace={"__module__": __name__,
                            "__doc__": "A run's copy of its study's settings."})


def settings_of(spec: Any) -> dict[str, Any]:
    """The settings a run of the study `spec` records, as JSON values."""
    return {f.name: _to_json(getattr(spec, f.name)) for f in fields(RunSettings)}


def _to_json(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


# --- JSON: the types a decoded value may have, read from the annotations ---------------

_NONE = type(None)


def json_types(cls: type) -> dict[str, tuple[tuple[type, ...], type | None]]:
    """Per field of the dataclass `cls`: the exact Python types its decoded JSON value may
    have, and for a tuple (a JSON list) its items' type. bool is not an int here; a float
    may be written as an int; a Mapping is an object."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in fields(cls):
        hint = hints[f.name]
        union = isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
        allowed, items = [], None
        for arg in typing.get_args(hint) if union else (hint,):
            origin = typing.get_origin(arg) or arg
            if origin is tuple:
                allowed.append(list)
                items = typing.get_args(arg)[0]
            elif origin in (dict, Mapping):
                allowed.append(dict)
            elif arg is float:
                allowed += [int, float]
            else:
                allowed.append(arg)
        out[f.name] = (tuple(allowed), items)
    return out


def _expected(types_: tuple[type, ...], items: type | None) -> str:
    if items is not None:
        return f"a list of {items.__name__}"
    return " or ".join("null" if t is _NONE else t.__name__ for t in types_)


def decode(cls: type, data: dict[str, Any], *,
           skip: tuple[str, ...] = ()) -> tuple[dict[str, Any], dict[str, Any]]:
    """A decoded JSON object's keys that are fields of `cls` (but `skip`), type-checked
    (a list made a tuple), and the other keys as they were. ValueError (one line,
    `'workers' is str, not int`) for a value of the wrong type or a non-finite number."""
    table = {name: t for name, t in json_types(cls).items() if name not in skip}
    known, other = {}, {}
    for key, value in data.items():
        if key not in table:
            other[key] = value
            continue
        allowed, items = table[key]
        if type(value) not in allowed or (type(value) is list and items is not None and not all(
                type(v) is items for v in value)):
            raise ValueError(f"{key!r} is {type(value).__name__}, not "
                             f"{_expected(allowed, items)}")
        if type(value) is float and not math.isfinite(value):
            raise ValueError(f"{key!r} is {value}, not a finite number")
        known[key] = tuple(value) if type(value) is list and items is not None else value
    return known, other


def check_values(obj: Any) -> None:
    """Each setting of `obj` on its own: one of its choices (None where that is its
    default), and its own check. SuiteError, in one line, at the first that fails."""
    for f in fields(obj):
        value, meta = getattr(obj, f.name), f.metadata
        if meta.get("choices") and value not in meta["choices"] and not (
                value is None and f.default is None):
            raise SuiteError(f"unknown {f.name} {value!r}; choose "
                             f"{' or '.join(meta['choices'])}")
        if meta.get("check") is not None:
            meta["check"](value)


def flag_fields() -> list[Field]:
    """Every setting a flag gives, in the order `suite run --help` lists them."""
    return [f for cls in (Plan, Placement) for f in fields(cls) if f.metadata["help"]]


# --- command-line flags: one per setting, read back into a Plan and a Placement ---------

def _flag(f: Field) -> str:
    return f.metadata["flag"] or f"--{f.name.replace('_', '-')}"


def _base_type(hint: Any) -> Any:
    """`float | None` → float: the type a flag's text converts to."""
    args = [a for a in typing.get_args(hint) if a is not _NONE]
    return args[0] if isinstance(hint, types.UnionType) and len(args) == 1 else hint


def add_flags(parser) -> None:
    """`parser` (argparse) takes one flag per setting, None where not given."""
    hints = typing.get_type_hints(Plan) | typing.get_type_hints(Placement)
    for f in flag_fields():
        meta, kind = f.metadata, _base_type(hints[f.name])
        options: dict[str, Any] = {"help": meta["help"], "default": None, "dest": f.name}
        if kind is bool:
            options["action"] = "store_true"
        elif kind in (int, float):
            options["type"] = kind
        if meta["choices"]:
            options["choices"] = [c for c in meta["choices"] if c is not None]
        parser.add_argument(_flag(f), **options | meta["cli"])


def given_flags(args) -> list[str]:
    """The flags of `args` that say what a study runs (`--resume` takes them from the
    study); a flag marked `on_resume`, such as `--address`, is not one."""
    return [_flag(f) for f in flag_fields() if not f.metadata["on_resume"]
            and getattr(args, f.name, None) is not None]


def from_flags(args) -> tuple[Plan, Placement]:
    """The `Plan` and `Placement` the flags give (the defaults where not given); the text
    of a tuple's flag parsed (comma-separated, or by the setting's `parse`)."""
    hints = typing.get_type_hints(Plan) | typing.get_type_hints(Placement)
    given: dict[str, Any] = {}
    for f in flag_fields():
        value = getattr(args, f.name, None)
        if value is None:
            if f.default is MISSING:
                raise SuiteError(f"{_flag(f)} is required (or --resume DIR)")
            continue
        if typing.get_origin(hints[f.name]) is tuple:
            value = f.metadata["parse"](value) if f.metadata["parse"] else tuple(
                v.strip() for v in value.split(",") if v.strip())
        given[f.name] = value
    names = {cls: {f.name for f in fields(cls)} for cls in (Plan, Placement)}
    return (Plan(**{k: v for k, v in given.items() if k in names[Plan]}),
            Placement(**{k: v for k, v in given.items() if k in names[Placement]}))
