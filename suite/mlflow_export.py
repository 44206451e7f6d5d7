"""Studies in MLflow: every run log of a study exported as nested MLflow runs.

Three levels: a run per study (its folder's name), a child run per optimizer × seed, and a
grandchild run per trial: its configuration as params, each trained epoch's metrics as
steps (the epoch is the step) with the oriented `suite.loss`, the epoch's
`suite.device_seconds` and the ledger's three units after it (`ledger.epochs`,
`ledger.device_seconds`, `ledger.full`); the trial's status, optimizer, seed, budget and
fidelity (`suite.target_epochs`, `suite.resumed_from`) as tags. A child run gets the
run's final incumbent (the runner's rule: most epochs, then lowest loss) as the metrics
`incumbent.loss` and `incumbent.epochs` and the tags `suite.incumbent.*`, and the
optimizer's last recommendation as `suite.recommended_trial`.

The JSONL logs stay the one source of truth: MLflow only ever gets what they hold, by one
code path, `Exporter.feed`, which two ways in share:

- `suite mlflow DIR [--uri URI]` (`export_study`): every log of a finished, replayed or
  stopped study, after the fact;
- `suite run ... --mlflow [URI]` (`following`): a thread of its own tails the study's logs
  while the study writes them and feeds the same exporter, so nothing is added to the
  training path. Its client has short timeouts and few retries (`CLIENT_ENV`, unless set
  in the environment). An unreachable server, a rejected write or a missing extra stops
  the following with one line on stderr (during a study, stderr is the study's
  `library.log`); the study goes on. When the study ends, one line says what was not
  sent and the `suite mlflow` command that fills it in.

Exporting is idempotent, checked rather than assumed: every MLflow run carries the tags
`suite.study_id` (a hash of the study folder's absolute path) and `suite.key`
(`study`, `OPT/seed-K`, `OPT/seed-K/trial-N`), so an export first finds the runs already
there (one search), and for a run found it reads each metric's history before sending
it and sends only the (key, step) pairs missing: MLflow keeps a duplicate step as a
second value, so exporting twice would otherwise double every curve. Params already
present are not sent again (MLflow refuses a changed one).

Where the runs go: `MLFLOW_TRACKING_URI`, else MLflow's own default for the installed
version (3.x: `sqlite:///mlflow.db` in the working directory, which needs SQLAlchemy and
Alembic: Optuna, a dependency of the suite, brings both, so the `mlflow-skinny` client of
the `mlflow` extra can use it). The experiment is `MLFLOW_EXPERIMENT_NAME`, else
`suite-<task>`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from suite.errors import SuiteError
from suite.library_log import as_thread

__all__ = ["Exporter", "ExportStats", "export_study", "connect", "following", "Follower",
           "CLIENT_ENV", "EXTRA_HINT"]

EXTRA_HINT = "pip install 'hpo-suite[mlflow]'"
# MLflow's client retries 7 times with a backoff factor of 2 and waits 120 s per request by
# default: minutes against a dead server. The suite's client gives up within seconds, and
# does not print a "View run" line (nor fetch the run again for it) for every trial ended.
CLIENT_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
              "MLFLOW_HTTP_REQUEST_TIMEOUT": "5", "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}
POLL = 0.5  # seconds between two reads of the logs by the live follower
DRAIN = 60.0  # seconds the follower may take, once the study ended, to send the rest
# Per log_batch MLflow takes at most 1000 entries, of which 100 params and 100 tags.
_BATCH_METRICS, _BATCH_OTHERS = 800, 100
_TRIAL_END = {"ok": "FINISHED", "failed": "FAILED", "crashed": "FAILED", "timeout": "FAILED",
              "cut": "KILLED"}
_LEDGER = ("epochs", "device_seconds", "full")
_EVENTS = frozenset({"start", "epoch", "end", "retry", "recommend", "finish"})


def connect(uri: str | None):
    """An MLflow client for `uri` (None or empty: MLflow's default) and the URI it uses."""
    for key, value in CLIENT_ENV.items():
        os.environ.setdefault(key, value)
    try:
        import mlflow
        from mlflow import MlflowClient
    except ImportError:
        raise SuiteError(f"MLflow is not installed: {EXTRA_HINT}") from None
    uri = uri or mlflow.get_tracking_uri()
    try:
        client = MlflowClient(tracking_uri=uri)
        if not _served(uri):  # a local store: usable by this client? (see `describe`)
            client.search_experiments(max_results=1)
        return client, uri
    except Exception as exc:  # a URI MLflow cannot use: its own message, on one line
        raise SuiteError(describe(exc, uri)) from None


def _served(uri: str) -> bool:
    return uri.startswith(("http://", "https://", "databricks"))


def describe(exc: BaseException, uri: str) -> str:
    """One line: why MLflow at `uri` failed. A local store (MLflow's default, a SQLite
    file) needs SQLAlchemy and Alembic, which `mlflow-skinny` does not bring: without
    them, the line says what to do instead."""
    text = " ".join(str(getattr(exc, "message", None) or exc).split())
    text = f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__
    if not _served(uri):
        return (f"MLflow's store {uri} cannot be used here ({text}); set MLFLOW_TRACKING_URI "
                "(or give the URI) to a tracking server, or install the full mlflow in an "
                "environment of its own and run its server (docs/mlflow.md)")
    return f"MLflow at {uri}: {text}"


def study_id(out: Path) -> str:
    return hashlib.sha256(str(Path(out).resolve()).encode()).hexdigest()[:16]


@dataclass
class ExportStats:
    """What an export did: MLflow runs created and found, metric values sent and skipped
    (already there), and the log rows read."""

    created: int = 0
    found: int = 0
    sent: int = 0
    skipped: int = 0
    rows: int = 0


@dataclass
class _Target:
    """One MLflow run and what it is known to hold: the steps of each metric (`history`;
    a key missing there is read from MLflow first, unless the run is `fresh`: this
    exporter created it, so it holds only what was sent)."""

    run_id: str
    status: str
    params: set[str] = field(default_factory=set)
    fresh: bool = False
    history: dict[str, set[int]] = field(default_factory=dict)
    metrics: list = field(default_factory=list)  # pending
    new_params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    end: str | None = None  # the terminal status to set once flushed


@dataclass
class _Run:
    """An optimizer × seed run being exported: its child run, its trials, its incumbent."""

    target: _Target
    trials: dict[int, _Target] = field(default_factory=dict)
    incumbent: tuple[int, float, int] | None = None  # (epochs, -loss, trial_id): larger wins
    configs: dict[int, dict] = field(default_factory=dict)
    finished: bool = False


class Exporter:
    """Feeds a study's log rows to MLflow as nested runs; see the module docstring.

    Not thread-safe: one thread feeds it (the follower's, or the exporting command's).
    """

    def __init__(self, client, out: Path, spec) -> None:
        self.client, self.out, self.spec = client, Path(out), spec
        self.study_id = study_id(out)
        self.stats = ExportStats()
        self.experiment_id = self._experiment()
        self._existing = self._search()
        self.study = self._target("study", self.out.name, None, {
            "suite.task": spec.task, "suite.budget": spec.budget,
            "suite.optimizers": ",".join(spec.optimizers),
            "suite.seeds": ",".join(map(str, spec.seeds)),
            "suite.simulated": str(spec.table is not None),
            "suite.folder": str(self.out.resolve())})
        self._runs: dict[tuple[str, int], _Run] = {}

    # --- finding or creating runs --------------------------------------------------

    def _experiment(self) -> str:
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or f"suite-{_stem(self.spec.task)}"
        found = self.client.get_experiment_by_name(name)
        if found is not None and found.lifecycle_stage == "active":
            return found.experiment_id
        if found is not None:  # deleted in the UI: restored, not a new one under its name
            self.client.restore_experiment(found.experiment_id)
            return found.experiment_id
        return self.client.create_experiment(name)

    def _search(self) -> dict[str, Any]:
        """This study's runs already in MLflow, by `suite.key` (one paged search)."""
        found, token = {}, None
        while True:
            page = self.client.search_runs(
                [self.experiment_id], f"tags.`suite.study_id` = '{self.study_id}'",
                max_results=1000, page_token=token)
            for run in page:
                found.setdefault(run.data.tags.get("suite.key"), run)
            token = page.token
            if not token:
                return found

    def _target(self, key: str, name: str, parent: _Target | None,
                tags: dict[str, str]) -> _Target:
        run = self._existing.get(key)
        tags = {"suite.study_id": self.study_id, "suite.key": key, **tags}
        if run is not None:
            self.stats.found += 1
            target = _Target(run.info.run_id, run.info.status, set(run.data.params))
        else:
            if parent is not None:
                tags["mlflow.parentRunId"] = parent.run_id
            run = self.client.create_run(self.experiment_id, run_name=name, tags=tags)
            self.stats.created += 1
            target = _Target(run.info.run_id, run.info.status, fresh=True)
        target.tags.update(tags)
        return target

    def _run(self, optimizer: str, seed: int) -> _Run:
        run = self._runs.get((optimizer, seed))
        if run is None:
            target = self._target(f"{optimizer}/seed-{seed}", f"{optimizer} seed {seed}",
                                  self.study, self._run_tags(optimizer, seed))
            run = self._runs[(optimizer, seed)] = _Run(target)
        return run

    def _run_tags(self, optimizer: str, seed: int) -> dict[str, str]:
        return {"suite.optimizer": optimizer, "suite.seed": str(seed),
                "suite.budget": self.spec.budget, "suite.task": self.spec.task}

    # --- rows ----------------------------------------------------------------------

    def feed(self, optimizer: str, seed: int, rows: list[dict]) -> None:
        """Send what `rows` (the next rows of the run's log, as written) add to MLflow.
        Raises what the client raises; the rows then count as not sent."""
        run = self._run(optimizer, seed)
        for row in rows:
            event = row.get("event")
            if event in ("start", "epoch", "end", "retry", "recommend"):
                self._trial_row(run, optimizer, seed, row)
            elif event == "finish":
                self._finish(run, row)
        self._flush(run)
        self.stats.rows += len(rows)

    def _trial(self, run: _Run, optimizer: str, seed: int, row: dict) -> _Target:
        trial_id = row["trial_id"]
        target = run.trials.get(trial_id)
        if target is None:
            tags = {**self._run_tags(optimizer, seed), "suite.trial_id": str(trial_id),
                    "suite.config_id": str(row["config_id"]),
                    "suite.target_epochs": str(row["target_epochs"]),
                    "suite.resumed_from": str(row["resumed_from"]), "suite.status": "running"}
            target = self._target(f"{optimizer}/seed-{seed}/trial-{trial_id}",
                                  f"trial {trial_id}", run.target, tags)
            target.new_params.update({k: _param(v) for k, v in row["config"].items()})
            run.trials[trial_id] = target
            run.configs[trial_id] = row["config"]
        return target

    def _trial_row(self, run: _Run, optimizer: str, seed: int, row: dict) -> None:
        event = row["event"]
        if event == "recommend":
            run.target.tags["suite.recommended_trial"] = str(row["trial_id"])
            return
        target = self._trial(run, optimizer, seed, row)
        if event == "retry":
            target.tags["suite.retried_at_epoch"] = str(row["epoch"])
            return
        if event == "end":
            self._end(target, row["status"], row.get("error"))
            return
        if event != "epoch":
            return
        step, values = row["epoch"], dict(row["metrics"])
        values.update({"suite.loss": row["loss"], "suite.device_seconds": row["device_seconds"],
                       **{f"ledger.{k}": row["ledger"][k] for k in _LEDGER}})
        target.metrics.extend((k, v, step) for k, v in values.items() if _number(v))
        if row["status"] != "running":
            self._end(target, row["status"], None)
        if row["status"] == "ok" and math.isfinite(row["loss"]):
            key = (step, -row["loss"], row["trial_id"])
            if run.incumbent is None or key[:2] > run.incumbent[:2]:
                run.incumbent = key

    def _end(self, target: _Target, status: str, error: str | None) -> None:
        target.tags["suite.status"] = status
        if error:
            target.tags["suite.error"] = error[:500]
        target.end = _TRIAL_END.get(status, "FAILED")

    def _finish(self, run: _Run, row: dict) -> None:
        run.finished = True
        run.target.tags["suite.finish"] = row["reason"]
        run.target.metrics.extend((f"ledger.{k}", row["ledger"][k], 0) for k in _LEDGER)
        if run.incumbent is not None:
            epochs, loss, trial_id = run.incumbent
            run.target.tags.update({
                "suite.incumbent.trial_id": str(trial_id),
                "suite.incumbent.config": json.dumps(run.configs.get(trial_id), sort_keys=True)})
            run.target.metrics.extend([("incumbent.loss", -loss, 0),
                                       ("incumbent.epochs", epochs, 0)])
        run.target.end = "FINISHED"

    def finish_study(self) -> None:
        """Ends the study's run once every planned run has its `finish` row."""
        done = all(self._runs.get((o, s)) is not None and self._runs[(o, s)].finished
                   for o in self.spec.optimizers for s in self.spec.seeds)
        if done:
            self.study.end = "FINISHED"
        self._send(self.study)

    # --- sending -------------------------------------------------------------------

    def _flush(self, run: _Run) -> None:
        for target in (*run.trials.values(), run.target):
            self._send(target)

    def _send(self, target: _Target) -> None:
        from mlflow.entities import Metric, Param, RunTag

        metrics = self._missing(target)
        params = [Param(k, v) for k, v in target.new_params.items() if k not in target.params]
        tags = [RunTag(k, v) for k, v in target.tags.items()]
        now = int(time.time() * 1000)
        metric_objs = [Metric(k, float(v), now, step) for k, v, step in metrics]
        batches = max(-(-len(metric_objs) // _BATCH_METRICS), -(-len(params) // _BATCH_OTHERS),
                      -(-len(tags) // _BATCH_OTHERS))
        for i in range(batches):
            some, few = (slice(i * n, (i + 1) * n) for n in (_BATCH_METRICS, _BATCH_OTHERS))
            self.client.log_batch(target.run_id, metrics=metric_objs[some], params=params[few],
                                  tags=tags[few])
        for key, _, step in metrics:
            target.history.setdefault(key, set()).add(step)
        target.params.update(target.new_params)
        self.stats.sent += len(metrics)
        target.metrics, target.new_params, target.tags = [], {}, {}
        if target.end is not None and target.status != target.end:
            self.client.set_terminated(target.run_id, status=target.end)
            target.status = target.end

    def _missing(self, target: _Target) -> list[tuple[str, float, int]]:
        """The pending metric values whose (key, step) MLflow does not hold yet: for a run
        found rather than created, each key's history is read once first."""
        out, seen = [], set()
        for key, value, step in target.metrics:
            if key not in target.history and not target.fresh:
                history = self.client.get_metric_history(target.run_id, key)
                target.history[key] = {m.step for m in history}
            if step in target.history.get(key, ()) or (key, step) in seen:
                self.stats.skipped += 1
                continue
            seen.add((key, step))
            out.append((key, value, step))
        return out


def _stem(task: str) -> str:
    return (task.rpartition(":")[2] or task).replace("/", "-")


def _param(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else value


def _number(value: Any) -> bool:
    return type(value) in (int, float)


def export_study(out: Path, spec, uri: str | None) -> tuple[ExportStats, str]:
    """Export the study in `out` (finished, replayed or stopped; `spec` its plan) into
    MLflow at `uri`; idempotent (see the module docstring). Returns what it did and the
    URI used.

    Raises:
        SuiteError: a damaged log, MLflow missing or failing (one line).
    """
    from suite.log import LOG_NAME, read_log, read_rows

    out = Path(out)
    logs = [(o, s, out / o / f"seed-{s}") for o in spec.optimizers for s in spec.seeds]
    logs = [(o, s, d) for o, s, d in logs if (d / LOG_NAME).exists()]
    for _, _, directory in logs:
        read_log(directory)  # every log checked first: a damaged one sends nothing
    client, uri = connect(uri)
    try:
        exporter = Exporter(client, out, spec)
        for optimizer, seed, directory in logs:
            exporter.feed(optimizer, seed, read_rows(directory))
        exporter.finish_study()
    except SuiteError:
        raise
    except Exception as exc:  # MLflow's, the store's or the network's: one line
        raise SuiteError(describe(exc, uri)) from None
    return exporter.stats, uri


class Follower:
    """Tails a study's logs in a thread of its own and feeds them to an `Exporter`.

    The first failure (MLflow missing, the server unreachable, a write refused) is one
    line on stderr and ends the following; the study never waits for it. Leaving the
    `with` block sends what is left, for at most `DRAIN` seconds.
    """

    def __init__(self, out: Path, spec, uri: str | None) -> None:
        self.out, self.spec, self.uri = Path(out), spec, uri
        self.error: str | None = None
        self.sent_rows = 0
        self._offsets: dict[Path, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="suite-mlflow", daemon=True)
        self._study_thread = threading.get_ident()  # its stderr: the study's library log

    def __enter__(self) -> Follower:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(DRAIN)
        if self._thread.is_alive() and self.error is None:
            self.error = f"still sending after {DRAIN:g} s; stopped waiting"

    def _main(self) -> None:
        with as_thread(self._study_thread):
            self._follow()

    def _follow(self) -> None:
        try:
            client, self.uri = connect(self.uri)
            exporter = Exporter(client, self.out, self.spec)
            while True:
                final = self._stop.is_set()
                self._poll(exporter)
                if final:
                    exporter.finish_study()
                    return
                self._stop.wait(POLL)
        except Exception as exc:
            self.error = str(exc) if isinstance(exc, SuiteError) else describe(exc, self.uri or "")
            print(f"suite: {self.error}; the study goes on without MLflow", file=sys.stderr)

    def _poll(self, exporter: Exporter) -> None:
        from suite.log import LOG_NAME

        for optimizer in exporter.spec.optimizers:
            for seed in exporter.spec.seeds:
                path = self.out / optimizer / f"seed-{seed}" / LOG_NAME
                rows, offset = self._new_rows(path)
                if rows:
                    exporter.feed(optimizer, seed, rows)
                    self.sent_rows += len(rows)
                self._offsets[path] = offset  # only once sent: a failure resends nothing

    def _new_rows(self, path: Path) -> tuple[list[dict], int]:
        """The rows of the complete lines appended since the last read, and the offset
        after them; a line being written waits. Unreadable lines (a torn line) and the
        repair marker are skipped, as the reader does."""
        offset = self._offsets.get(path, 0)
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:
            return [], offset
        end = data.rfind(b"\n") + 1
        rows = []
        for line in data[:end].splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and row.get("event") in _EVENTS:
                rows.append(row)
        return rows, offset + end

    def summary(self) -> str | None:
        """One line when something was not sent: how much, and the command filling it in."""
        from suite.log import read_rows

        if self.error is None:
            return None
        total = sum(len(read_rows(path.parent)) for path in self.out.glob("*/seed-*/log.jsonl"))
        uri = f" --uri {self.uri}" if self.uri else ""
        return (f"suite: MLflow: {total - self.sent_rows} of {total} log rows not sent "
                f"({self.error}); fill them in with: suite mlflow {self.out}{uri}")


@contextmanager
def following(out: Path, spec, uri: str | None) -> Iterator[Follower | None]:
    """`with following(out, spec, uri) as follower:` around a study (`spec` its plan);
    `uri` None follows nothing, "" is MLflow's default. Entering `follower` starts it; on
    leaving this block, what was not sent is one line on stderr."""
    if uri is None:
        yield None
        return
    follower = Follower(out, spec, uri or None)
    try:
        yield follower
    finally:
        line = follower.summary()
        if line:
            print(line, file=sys.stderr)
