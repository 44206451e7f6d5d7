"""Studies in MLflow (`suite.mlflow_export`): `--mlflow [URI]` and `suite mlflow DIR`.

The tests marked `mlflow` start a real MLflow tracking server (the full `mlflow`, from an
environment of its own: its executable in `SUITE_MLFLOW_SERVER`) on 127.0.0.1 with a
SQLite backend in a temporary folder; CI builds that environment and runs them with
`pytest -m mlflow`. The others use the `mlflow-skinny` client's local SQLite store.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from mlflow_checks import Server, check_study, free_port, study_runs

from suite.api import Placement, Plan, start
from suite.cli import main
from suite.log import read_rows
from suite.mlflow_export import Exporter, connect, export_study
from suite.study import load_study
from suite.testing import toy_table

SERVER_ENV = "SUITE_MLFLOW_SERVER"


@pytest.fixture(scope="module")
def toy_path(tmp_path_factory):
    return toy_table(tmp_path_factory.mktemp("tables") / "toy.parquet", seeds=1)


def _replay(out: Path, table: Path, *extra: str) -> int:
    return main(["run", "--task", "toy", "--table", str(table), "--optimizer", "hyperband",
                 "--budget", "2x", "--jobs", "1", "--out", str(out), *extra])


def _error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "MLflow" in line or "mlflow" in line]


# --- without a server ------------------------------------------------------------------

def test_a_missing_extra_is_one_line_and_the_study_goes_on(tmp_path, toy_path, monkeypatch,
                                                           capsys):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # what `import mlflow` does when absent
    assert _replay(tmp_path / "s", toy_path, "--mlflow", "http://127.0.0.1:9") == 0
    assert read_rows(tmp_path / "s" / "hyperband" / "seed-0")[-1]["event"] == "finish"
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "pip install 'hpo-suite[mlflow]'" in lines[0], lines
    assert main(["mlflow", str(tmp_path / "s"), "--uri", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "pip install 'hpo-suite[mlflow]'" in err, err


def test_an_unreachable_server_is_one_line_and_the_study_goes_on(tmp_path, toy_path, capsys):
    port = free_port()  # nothing listens there
    began = time.monotonic()
    assert _replay(tmp_path / "s", toy_path, "--mlflow", f"http://127.0.0.1:{port}") == 0
    assert time.monotonic() - began < 60  # short timeouts: not MLflow's minutes of retries
    rows = read_rows(tmp_path / "s" / "hyperband" / "seed-0")
    assert rows[-1]["event"] == "finish"
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1, lines
    assert f"{len(rows)} of {len(rows)} log rows not sent" in lines[0]
    assert f"suite mlflow {tmp_path / 's'} --uri http://127.0.0.1:{port}" in lines[0]
    # the first failure, as it happened, is in the study's library.log
    assert "the study goes on without MLflow" in (tmp_path / "s" / "library.log").read_text()


@pytest.mark.parametrize("make", [lambda p: p.mkdir(), lambda p: None,
                                  lambda p: p.write_text("not a folder")],
                         ids=["empty folder", "missing", "a file"])
def test_suite_mlflow_on_what_is_not_a_study_is_one_line_and_writes_nothing(
        tmp_path, monkeypatch, capsys, make):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    target = tmp_path / "target"
    make(target)
    assert main(["mlflow", str(target)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a study folder" in err[0], err
    assert not (tmp_path / "mlflow.db").exists()  # nothing written to the default store


@pytest.mark.slow
def test_export_to_the_default_store_is_idempotent_and_completes_a_partial_one(
        tmp_path, toy_path, monkeypatch, capsys):
    """MLflow keeps a duplicate step as a second value: exporting again must send nothing,
    and after a partial export only what is missing."""
    monkeypatch.chdir(tmp_path)  # MLflow's default store: sqlite:///mlflow.db, here
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    out = tmp_path / "s"
    assert _replay(out, toy_path) == 0
    rows = read_rows(out / "hyperband" / "seed-0")
    client, uri = connect(None)
    assert uri.startswith("sqlite:") and (tmp_path / "mlflow.db").exists()
    half = Exporter(client, out, load_study(out))
    half.feed("hyperband", 0, rows[: len(rows) // 2])  # a partial export
    stats, _ = export_study(out, load_study(out), None)
    assert stats.found > 0 and stats.created > 0 and stats.skipped > 0
    check_study(client, out)
    again, _ = export_study(out, load_study(out), None)
    assert (again.created, again.sent) == (0, 0) and again.skipped == stats.sent + stats.skipped
    check_study(client, out)


# --- with a real tracking server -----------------------------------------------------------

@pytest.fixture
def server_executable() -> str:
    executable = os.environ.get(SERVER_ENV)
    if not executable:
        pytest.skip(f"{SERVER_ENV} is not set: the path of a full mlflow's `mlflow` executable "
                    "(e.g. python3 -m venv /tmp/srv && /tmp/srv/bin/pip install mlflow)")
    return executable


@pytest.fixture
def server(server_executable, tmp_path):
    srv = Server(server_executable, tmp_path).start()
    yield srv
    srv.kill()


@pytest.mark.mlflow
def test_a_live_study_and_a_replay_land_in_a_real_tracking_server(server, tmp_path, toy_path,
                                                                  capsys):
    live, replay = tmp_path / "live", tmp_path / "replay"
    assert main(["run", "--task", "toy", "--optimizer", "hyperband,random", "--budget", "2x",
                 "--executor", "inprocess", "--out", str(live), "--mlflow", server.url]) == 0
    assert _replay(replay, toy_path, "--mlflow", server.url) == 0
    assert not _error_lines(capsys.readouterr().err)
    client, _ = connect(server.url)
    assert check_study(client, live) > 10 and check_study(client, replay) > 10
    child = study_runs(client, replay)["hyperband/seed-0"]
    assert child.info.status == "FINISHED" and "incumbent.loss" in child.data.metrics
    # exporting the study the live path sent adds nothing
    assert main(["mlflow", str(replay), "--uri", server.url]) == 0
    assert "MLflow runs 0 created" in capsys.readouterr().out
    check_study(client, replay)


@pytest.mark.mlflow
def test_a_study_whose_server_is_killed_midway_completes_and_is_filled_in_later(
        server, tmp_path, capsys):
    """The server dies while the study runs: the study completes, its log complete, with
    one line on stderr; `suite mlflow DIR` on the restarted server then adds exactly what
    is missing."""
    out = tmp_path / "s"
    client, _ = connect(server.url)
    killed = threading.Event()

    def on_run(name, seed, runner):
        def on_row(row, runner):
            # midway: once the follower has sent some trials, and before half the budget
            if not killed.is_set() and runner.state.trials >= 5:
                _wait_for_runs(client, out, at_least=3)
                server.kill()
                killed.set()
        runner.on_row = on_row

    plan = Plan(task="toy", optimizers=("hyperband",), budget="3x")
    start(plan, Placement(executor="inprocess"), out, on_run=on_run, mlflow=server.url)
    assert killed.is_set()
    rows = read_rows(out / "hyperband" / "seed-0")
    assert rows[-1]["event"] == "finish"
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "not sent" in lines[0] and "suite mlflow" in lines[0], lines
    server.start()  # the same database
    assert main(["mlflow", str(out), "--uri", server.url]) == 0
    said = capsys.readouterr().out
    assert "already there" in said and " 0 already there" not in said.split(";")[1], said
    check_study(client, out)


def _wait_for_runs(client, out: Path, *, at_least: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if len(study_runs(client, out)) >= at_least:
                return
        except Exception:  # the experiment or study is not there yet
            pass
        time.sleep(0.2)
    raise AssertionError("the follower sent nothing in time")


@pytest.mark.slow
def test_a_local_store_the_client_cannot_use_is_one_line_saying_what_to_do(tmp_path, toy_path):
    """`mlflow-skinny` alone cannot open MLflow's default store (a SQLite file): that needs
    SQLAlchemy and Alembic, which the suite has through Optuna. Without them (simulated in
    a fresh process), the error says how to point at a server instead."""
    out = tmp_path / "s"
    assert _replay(out, toy_path) == 0
    code = ("import sys; sys.modules['sqlalchemy'] = sys.modules['alembic'] = None\n"
            "from suite.cli import main\n"
            f"sys.exit(main(['mlflow', {str(out)!r}]))")
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'm.db'}"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "set MLFLOW_TRACKING_URI" in lines[0], lines
    assert "install the full mlflow in an environment of its own" in lines[0]


@pytest.mark.slow
def test_a_stopped_study_resumed_with_mlflow_continues_its_runs_without_duplicates(
        tmp_path, toy_path, monkeypatch):
    """The resumed study's follower finds the runs sent before the stop and reads their
    histories: the rows logged before the stop are not sent twice."""
    from suite.api import resume
    from suite.interrupt import Stopped

    uri = f"sqlite:///{tmp_path / 'm.db'}"
    out, stop = tmp_path / "s", threading.Event()

    def on_run(name, seed, runner):
        def on_row(row, runner):
            if runner.state.trials >= 8:
                stop.set()
        runner.on_row = on_row

    plan = Plan(task="toy", optimizers=("hyperband",), budget="3x")
    with pytest.raises(Stopped):
        start(plan, Placement(table=str(toy_path)), out, stop=stop, on_run=on_run, mlflow=uri,
              jobs=1)
    client, _ = connect(uri)
    before = check_study(client, out)
    resume(out, mlflow=uri, jobs=1)
    assert read_rows(out / "hyperband" / "seed-0")[-1]["event"] == "finish"
    assert check_study(client, out) > before
    assert study_runs(client, out)["study"].info.status == "FINISHED"
