"""A real MLflow tracking server, and what a study must look like in it (read back through
MLflow's own client): shared by the MLflow tests and the overhead benchmark."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from suite.log import read_rows
from suite.mlflow_export import study_id
from suite.study import load_study

STARTUP = 180.0  # seconds: the server migrates its new database first (47 s seen here)


class Server:
    """`mlflow server` on 127.0.0.1 with a SQLite backend under `folder`; `kill()` stops it
    at once (SIGKILL to its process group), `start()` again on the same database."""

    def __init__(self, executable: str, folder: Path) -> None:
        self.executable, self.folder = executable, folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> Server:
        with open(self.folder / "server.log", "a") as log:  # the server keeps its own copy
            self.process = subprocess.Popen(
                [self.executable, "server", "--host", "127.0.0.1", "--port", str(self.port),
                 "--workers", "1", "--backend-store-uri",
                 f"sqlite:///{self.folder / 'db.sqlite'}",
                 "--default-artifact-root", str(self.folder / "artifacts")],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + STARTUP
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited: see {self.folder / 'server.log'}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2):
                    return self
            except OSError:
                time.sleep(0.5)
        self.kill()
        raise RuntimeError(f"mlflow server did not start in {STARTUP:g} s")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(30)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def study_runs(client, out: Path) -> dict[str, object]:
    """The study's MLflow runs by `suite.key` (every experiment: the search is by tag)."""
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs, token = [], None
    while True:
        page = client.search_runs(experiments, f"tags.`suite.study_id` = '{study_id(out)}'",
                                  max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            break
    keys = [r.data.tags["suite.key"] for r in runs]
    assert len(keys) == len(set(keys)), "a run was exported twice"
    return dict(zip(keys, runs, strict=True))


def check_study(client, out: Path) -> int:
    """Every trial of every log is one nested run with its configuration as params and
    exactly one metric step per logged epoch; returns the number of trials checked."""
    out = Path(out)
    spec, runs = load_study(out), study_runs(client, out)
    study = runs.pop("study")
    trials = 0
    for optimizer in spec.optimizers:
        for seed in spec.seeds:
            child = runs.pop(f"{optimizer}/seed-{seed}")
            assert child.data.tags["mlflow.parentRunId"] == study.info.run_id
            for key, (config, epochs) in _trials(out / optimizer / f"seed-{seed}").items():
                run = runs.pop(f"{optimizer}/seed-{seed}/trial-{key}")
                assert run.data.tags["mlflow.parentRunId"] == child.info.run_id
                assert run.data.params == {k: v if isinstance(v, str) else json.dumps(v)
                                           for k, v in config.items()}
                for metric in run.data.metrics:
                    steps = [m.step for m in client.get_metric_history(run.info.run_id, metric)]
                    assert sorted(steps) == epochs, (key, metric, steps)
                assert "suite.loss" in run.data.metrics or not epochs
                trials += 1
    assert not runs, f"runs in MLflow that the logs do not hold: {sorted(runs)}"
    return trials


def _trials(directory: Path) -> dict[int, tuple[dict, list[int]]]:
    """trial id → (its configuration, the epochs its log rows hold)."""
    trials: dict[int, tuple[dict, list[int]]] = {}
    for row in read_rows(directory):
        if row["event"] == "start":
            trials[row["trial_id"]] = (row["config"], [])
        elif row["event"] == "epoch":
            trials[row["trial_id"]][1].append(row["epoch"])
    return trials
