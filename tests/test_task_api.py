"""The public Task API: a user's task in a module of their own (tests/fixtures/my_tasks.py,
outside the `suite` and `tasks` packages), named `my_tasks:Object` or by an entry point,
studied on every executor; a task without checkpoints; the function adapter.

The CLI runs in subprocesses whose PYTHONPATH holds the fixtures' folder, as a user's
would hold theirs; workers (spawned processes, Ray actors) rebuild the task from the
reference alone.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from logcheck import assert_every_epoch_once

import suite
from suite.errors import SuiteError
from suite.log import read_meta, read_rows
from suite.registry import load_task, task_names
from suite.study import StudySpec, run_study

SPACE = {"lr": (1e-4, 1.0, "log"), "width": (1, 16)}  # my_tasks.SPACE
FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(FIXTURES))


def _env(*extra_paths, **variables):
    paths = [str(ROOT), str(FIXTURES), *map(str, extra_paths)]
    old = os.environ.get("PYTHONPATH")
    return dict(os.environ, PYTHONPATH=os.pathsep.join(paths + ([old] if old else [])),
                PYTHONHASHSEED="0", **variables)


def _cli(*args, env=None, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "suite.cli", *args], env=env or _env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **kwargs)


def _epochs(rows):
    return [r for r in rows if r["event"] == "epoch"]


def _check_complete(run):
    rows = read_rows(run)
    assert_every_epoch_once(rows)
    assert [r["event"] for r in rows].count("finish") == 1 and rows[-1]["event"] == "finish"
    assert len(_epochs(rows)) == rows[-1]["ledger"]["epochs"], "each epoch charged once"
    return rows


# --- references: every form resolves, every broken one is one line -------------------

@pytest.mark.parametrize("ref", ["my_tasks:Quadratic", "my_tasks:make_quadratic",
                                 "my_tasks:quadratic"])
def test_a_class_a_factory_and_an_instance_name_the_same_task(on_path, ref):
    task = load_task(ref)
    assert isinstance(task, suite.Task) and task.info.name == "quadratic"
    assert task.capabilities == suite.Capabilities(checkpoints=True)
    assert [r.epoch for r in task.train(task.default_config(), epochs=3, seed=0)] == [1, 2, 3]


def test_the_built_ins_load_by_name_and_declare_every_capability():
    toy = load_task("toy")
    assert toy.capabilities == suite.Capabilities(True, True, True, True, True, True)
    assert load_task("toy", scale="tiny").scale == "tiny"


@pytest.mark.parametrize("ref, message", [
    ("nope", "unknown task 'nope'; choose from"),
    ("a b:c", "malformed task reference"),
    ("no_such_module:Task", "no module named 'no_such_module'"),
    ("my_tasks:Nope", "my_tasks has no 'Nope'"),
    ("my_tasks:NotATask", "not a subclass of suite.Task"),
    ("my_tasks:SPACE", "is a dict, not a suite.Task"),
    ("my_tasks:Abstract", "could not be built: TypeError"),
    ("my_tasks:RaisesOnBuild", "could not be built: RuntimeError: no data here"),
    ("my_tasks:UndeclaredFused", "defines fuse_key but does not declare "
                                 "Capabilities(fused=True)"),
])
def test_a_broken_reference_is_one_clear_error(on_path, ref, message):
    with pytest.raises(SuiteError, match=None) as caught:
        load_task(ref)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_scale_is_an_option_of_the_built_ins_only(on_path):
    with pytest.raises(SuiteError, match="takes no scale"):
        load_task("my_tasks:Quadratic", scale="tiny")


@pytest.mark.parametrize("ref", ["my_tasks:Nope", "no_such_module:Task", "nope"])
def test_cli_refuses_a_broken_reference_in_one_line_before_writing(tmp_path, ref):
    out = tmp_path / "study"
    proc = _cli("run", "--task", ref, "--optimizer", "random", "--budget", "1x",
                "--out", str(out))
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2
    assert err.count("\n") == 1 and err.startswith("suite run: error: "), err
    assert not out.exists()


# --- a user's task on the local executor, killed and resumed ---------------------------

@pytest.mark.slow
def test_a_users_task_runs_on_two_local_workers_and_resumes_after_sigkill(tmp_path):
    """The study plan records the reference; the workers (fresh processes) rebuild the task
    from it; a SIGKILL of the whole process group mid-study, then `--resume`: every epoch
    logged once, nothing logged lost or rewritten."""
    out = tmp_path / "study"
    env = _env(MY_TASKS_PACE="0.02")
    args = ["run", "--task", "my_tasks:Quadratic", "--optimizer", "hyperband", "--budget",
            "12x", "--executor", "local", "--workers", "2", "--out", str(out)]
    victim = _cli(*args, env=env, start_new_session=True)
    run = out / "hyperband" / "seed-0"
    deadline = time.time() + 240
    while time.time() < deadline and victim.poll() is None and (
            not (run / "log.jsonl").exists() or len(_epochs(read_rows(run))) < 20):
        time.sleep(0.01)
    assert victim.poll() is None, victim.stderr.read()
    os.killpg(victim.pid, signal.SIGKILL)  # the driver and its workers
    victim.wait()
    killed = read_rows(run)
    assert killed[-1]["event"] != "finish", "killed before the end"
    plan = json.loads((out / "study.json").read_text())
    assert plan["task"] == "my_tasks:Quadratic" and plan["scale"] is None

    resumed = _cli("run", "--resume", str(out), env=env)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    rows = _check_complete(run)
    assert rows[:len(killed)] == killed, "nothing logged is lost or rewritten"
    assert rows[-1]["ledger"]["epochs"] == 12 * 9 and rows[-1]["reason"] == "budget"
    assert {r["worker"] for r in _epochs(rows)} == {0, 1}
    assert read_meta(run)["task"] == "my_tasks:Quadratic"
    resumed_at = [r for r in rows[len(killed):] if r["event"] == "epoch"]
    assert resumed_at, "the resumed driver trained the rest"


# --- a task without checkpoints: promotions retrain, and are charged so ----------------

def _hyperband(ref, tmp_path, budget, **options):
    spec = StudySpec(task=ref, optimizers=("hyperband",), seeds=(0,), budget=budget,
                     executor="inprocess", **options)
    (outcome,) = run_study(spec, tmp_path / ref.replace(":", "-"))
    return outcome, read_rows(outcome.directory)


def test_promotions_of_a_task_without_checkpoints_retrain_and_are_charged_so(on_path,
                                                                             tmp_path):
    """One Hyperband iteration (min 1, max 27, eta 3) trains 405 epochs when every
    promotion retrains and 342 when promotions resume (tests/test_study.py derives both
    from hpbandster's brackets). The toy task without checkpoints is asked for `resume`
    and pays 405: each promotion trains, and logs, every epoch from the first."""
    outcome, rows = _hyperband("my_tasks:ToyWithoutCheckpoints", tmp_path, "405e")
    assert outcome.ledger.totals.epochs == 405 and outcome.reason == "budget"
    assert not [r for r in rows if r.get("status") == "cut"], "the iteration fits exactly"
    starts = [r for r in rows if r["event"] == "start"]
    promotions = [r for r in starts if r["resumed_from"] is not None]
    assert len(starts) == 65 and len(promotions) == 13 + 4 + 2
    assert all(r["start_epoch"] == 0 and r["resumed_checkpoint"] is None for r in promotions)
    for start in promotions:
        trained = [r["epoch"] for r in _epochs(rows) if r["trial_id"] == start["trial_id"]]
        assert trained == list(range(1, start["target_epochs"] + 1))
    assert_every_epoch_once(rows)
    plan = json.loads((outcome.directory.parents[1] / "study.json").read_text())
    assert plan["promotion"] == "retrain" and read_meta(outcome.directory)["promotion"] == \
        "retrain"
    assert not (outcome.directory / "checkpoints").exists(), "no checkpoints to keep"
    # the same task with its checkpoints resumes its promotions: 63 epochs fewer
    resumed, _ = _hyperband("toy", tmp_path, "342e")
    assert resumed.ledger.totals.epochs == 342 and resumed.reason == "budget"


@pytest.mark.slow
def test_a_killed_study_of_a_task_without_checkpoints_resumes_to_the_uninterrupted_rows(
        tmp_path):
    """SIGKILL mid-study, `--resume`: the trials in flight train again from their first
    epoch, and the log ends exactly as an uninterrupted run's (in-process: deterministic)."""
    env = _env(MY_TASKS_PACE="0.01")
    args = ["run", "--task", "my_tasks:from_generator", "--optimizer", "hyperband",
            "--budget", "6x", "--executor", "inprocess"]
    reference = _cli(*args, "--out", str(tmp_path / "ref"), env=env)
    out = tmp_path / "killed"
    victim = _cli(*args, "--out", str(out), env=env, start_new_session=True)
    run = out / "hyperband" / "seed-0"
    deadline = time.time() + 240
    while time.time() < deadline and victim.poll() is None and (
            not (run / "log.jsonl").exists() or len(_epochs(read_rows(run))) < 15):
        time.sleep(0.005)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    killed = read_rows(run)
    assert killed[-1]["event"] != "finish", "killed before the end"
    resumed = _cli("run", "--resume", str(out), env=env)
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    assert reference.wait(timeout=300) == 0, reference.stderr.read()
    rows = _check_complete(run)
    assert rows[:len(killed)] == killed, "nothing logged is lost or rewritten"

    def comparable(rows):
        return [{k: v for k, v in r.items() if k not in ("wall_time", "device_seconds",
                                                          "ledger")} for r in rows]

    assert comparable(rows) == comparable(read_rows(tmp_path / "ref" / "hyperband" /
                                                    "seed-0"))


def test_a_worker_that_dies_retrains_a_task_without_checkpoints_from_scratch(on_path,
                                                                            tmp_path):
    """Its worker killed at epoch 3, the trial runs again from the first epoch; epochs 1-2
    are trained again but neither logged nor charged again, and the trial completes."""
    import functools

    from my_tasks import ToyWithoutCheckpoints

    from suite.budget import Ledger, parse_budget
    from suite.executors import LocalExecutor
    from suite.log import RunLog
    from suite.runner import Runner
    from suite.testing import Die
    from suite.testing import ScriptedOptimizer as Scripted
    from suite.types import Trial

    task = ToyWithoutCheckpoints()
    config = task.default_config()
    make = functools.partial(ToyWithoutCheckpoints,
                             fault=Die(3, marker_dir=str(tmp_path / "died")))
    log = RunLog.create(tmp_path / "run", {"task": "toy"})
    runner = Runner(optimizer=Scripted([Trial(0, config, 5, 0)]),
                    executor=LocalExecutor(make, workers=1, devices=("cpu",)),
                    ledger=Ledger(parse_budget("10x"), max_epochs=27), log=log,
                    metric=task.info.metric, seed=0, checkpoints=None)
    with log:
        assert runner.run() == "optimizer"
    rows = read_rows(tmp_path / "run")
    assert [r["event"] for r in rows].count("retry") == 1
    assert assert_every_epoch_once(rows) == {0: "ok"}
    assert [r["epoch"] for r in _epochs(rows)] == [1, 2, 3, 4, 5]
    assert rows[-1]["ledger"]["epochs"] == 5


# --- the function adapter -------------------------------------------------------------

def test_a_generator_function_is_a_task(on_path):
    task = load_task("my_tasks:from_generator")
    assert task.info.name == "quadratic-fn" and task.info.fidelity == suite.Fidelity(1, 9, 3)
    assert task.capabilities == suite.Capabilities()
    assert task.default_config() == {"lr": 0.01, "width": 4}
    space = task.config_space(seed=3)
    assert space["lr"].log and space["width"].lower == 1
    results = list(task.train({"lr": 0.1, "width": 8}, epochs=4, seed=7))
    assert [r.epoch for r in results] == [1, 2, 3, 4]
    assert results[0].metrics == {"val_loss": pytest.approx(2.0), "seed": 7.0}
    assert all(r.device_seconds >= 0 and r.checkpoint is None for r in results)


def test_a_loop_reporting_each_epoch_is_a_task_and_stops_at_the_target(on_path):
    task = load_task("my_tasks:from_loop")
    results = task.train({"lr": 0.01, "width": 8}, epochs=3, seed=0)
    assert [r.metrics["val_loss"] for r in results] == pytest.approx([1.0, 0.5, 1 / 3])
    stream = task.train({"lr": 0.01, "width": 8}, epochs=9, seed=0)
    assert next(stream).epoch == 1
    stream.close()  # a cancelled trial: the loop's thread is stopped at its next report


def test_the_adapter_times_each_epoch_and_reports_errors_in_one_line():
    def slow(config, epochs):
        for _ in range(epochs):
            time.sleep(0.05)
            yield config["x"]

    task = suite.task_from_function(slow, {"x": (0.0, 1.0)}, name="slow", fidelity=3)
    results = list(task.train({"x": 0.5}, epochs=2, seed=0))
    assert [r.metrics for r in results] == [{"val_loss": 0.5}] * 2
    assert all(0.04 < r.device_seconds < 1.0 for r in results)

    def wrong(config):
        suite.report_epoch(accuracy=0.9)

    task = suite.task_from_function(wrong, {"x": [1, 2]}, name="wrong", metric="val_acc",
                                    minimize=False, fidelity=3)
    with pytest.raises(SuiteError, match="reported accuracy, not its objective 'val_acc'"):
        list(task.train({"x": 1}, epochs=1, seed=0))

    def fails(config):
        raise ValueError("bad batch")

    task = suite.task_from_function(fails, {"x": [1, 2]}, name="fails", fidelity=3)
    with pytest.raises(ValueError, match="bad batch"):
        list(task.train({"x": 1}, epochs=1, seed=0))
    with pytest.raises(SuiteError, match="not \\(low, high\\)"):
        suite.task_from_function(fails, {"x": {"a": 1}}, name="bad-space")
    with pytest.raises(SuiteError, match="is for a training function"):
        suite.report_epoch(val_loss=1.0)


def test_a_class_task_may_write_its_space_as_a_dict_of_ranges(on_path, tmp_path):
    """One space grammar: what task_from_function takes, a class's config_space returns."""
    task = load_task("my_tasks:DictSpace")
    space = task.config_space(seed=3)
    assert space["lr"].log and (space["width"].lower, space["width"].upper) == (1, 16)
    assert space == suite.search_space(SPACE) == load_task("my_tasks:from_generator"
                                                           ).config_space()
    assert space.sample_configuration() == task.config_space(seed=3).sample_configuration()
    assert task.default_config() == {"lr": pytest.approx(0.01), "width": 8}
    outcome, rows = _hyperband("my_tasks:DictSpace", tmp_path, "3x")
    assert outcome.reason == "budget" and outcome.ledger.totals.epochs == 27
    assert_every_epoch_once(rows)
    message = "hyperparameter lr: a range's low 1.0 must be below its high 0.0001"
    with pytest.raises(SuiteError, match=message):
        load_task("my_tasks:BadDictSpace")
    with pytest.raises(SuiteError, match=message):
        suite.task_from_function(lambda c: None, {"lr": (1.0, 1e-4, "log")}, name="bad")
    with pytest.raises(SuiteError, match="not a list"):
        suite.search_space([("lr", (0.0, 1.0))])


@pytest.mark.parametrize("ref", ["my_tasks:from_generator_checkpointed",
                                 "my_tasks:from_loop_checkpointed"])
def test_a_function_task_with_checkpoints_resumes_its_promotions(on_path, tmp_path, ref):
    """Ray Tune's habit: the state handed with each epoch, handed back on resume; every
    epoch charged is an epoch trained, and the curves are those of retraining."""
    import my_tasks

    my_tasks.TRAINED.clear()
    outcome, rows = _hyperband(ref, tmp_path, "3x")
    assert read_meta(outcome.directory)["promotion"] == "resume"
    promoted = [r for r in rows if r["event"] == "start" and r["resumed_checkpoint"]]
    assert promoted and all(r["start_epoch"] > 0 for r in promoted)
    assert_every_epoch_once(rows)
    assert len(my_tasks.TRAINED) == outcome.ledger.totals.epochs == 27
    again, plain = _hyperband("my_tasks:from_generator", tmp_path / "plain", "3x")
    curve = {(r["config_id"], r["epoch"]): r["loss"] for r in plain if r["event"] == "epoch"}
    shared = [(curve[key], r["loss"]) for r in rows if r["event"] == "epoch"
              and (key := (r["config_id"], r["epoch"])) in curve]
    assert len(shared) > 9 and all(a == b for a, b in shared)  # resumed == retrained


def test_a_function_tasks_checkpoint_errors_are_one_line_without_its_values(on_path,
                                                                           tmp_path):
    from suite.errors import TaskContractError

    def handed(state):
        def train(config):
            suite.report_epoch(val_loss=1.0, checkpoint=state)
        return train

    secret = {"weights": "s3cr3t" * 1000, "f": lambda: 0}  # cannot be saved as plain data
    cases = [(True, secret, r"checkpoint \(a dict\) cannot be saved as plain data"),
             (True, None, "keeps checkpoints but its epoch 1 handed none"),
             (False, {"epoch": 1}, "hands a checkpoint, but the task was made without")]
    for keeps, state, says in cases:
        task = suite.task_from_function(handed(state), {"x": [1, 2]}, name="t", fidelity=3,
                                        checkpoints=keeps)
        with pytest.raises(TaskContractError, match=says) as caught:
            list(task.train({"x": 1}, epochs=1, seed=0, save_to=tmp_path / "t.pt"))
        assert "s3cr3t" not in str(caught.value) and len(str(caught.value)) < 200


def test_a_function_task_studied_in_process(on_path, tmp_path):
    outcome, rows = _hyperband("my_tasks:from_generator", tmp_path, "3x")
    assert outcome.ledger.totals.epochs == 27 and outcome.reason == "budget"
    assert_every_epoch_once(rows)
    assert read_meta(outcome.directory)["promotion"] == "retrain"


@pytest.mark.slow
def test_a_function_task_studied_on_two_local_workers(tmp_path):
    out = tmp_path / "study"
    proc = _cli("run", "--task", "my_tasks:from_loop", "--optimizer", "hyperband",
                "--budget", "3x", "--workers", "2", "--out", str(out))
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    rows = _check_complete(out / "hyperband" / "seed-0")
    assert rows[-1]["ledger"]["epochs"] == 27
    assert read_meta(out / "hyperband" / "seed-0")["promotion"] == "retrain"


# --- an installed package registers a task through the entry-point group ---------------

def _fake_installed_package(root: Path) -> Path:
    """What `pip install` of a package declaring
    `[project.entry-points."suite.tasks"] quad = "my_tasks:Quadratic"` leaves on sys.path."""
    dist = root / "my_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[suite.tasks]\nquad = my_tasks:Quadratic\n"
                                           "toy = my_tasks:Quadratic\n")
    return root


def test_a_task_registered_by_an_installed_package_runs_by_its_name(on_path, tmp_path,
                                                                     monkeypatch):
    site = _fake_installed_package(tmp_path / "site")
    monkeypatch.syspath_prepend(str(site))
    assert task_names()["quad"] == "my_tasks:Quadratic"
    assert load_task("quad").info.name == "quadratic"
    assert load_task("toy").info.name == "toy", "a built-in name stays the built-in task"
    out = tmp_path / "study"
    proc = _cli("run", "--task", "quad", "--optimizer", "random", "--budget", "2x",
                "--executor", "inprocess", "--out", str(out), env=_env(site))
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    rows = _check_complete(out / "random" / "seed-0")
    assert rows[-1]["ledger"]["epochs"] == 18
    assert json.loads((out / "study.json").read_text())["task"] == "quad"


@pytest.mark.slow
def test_an_entry_point_task_on_two_local_workers(tmp_path):
    """The workers, fresh processes, find the name through the entry point too."""
    site = _fake_installed_package(tmp_path / "site")
    out = tmp_path / "study"
    proc = _cli("run", "--task", "quad", "--optimizer", "random", "--budget", "2x",
                "--workers", "2", "--out", str(out), env=_env(site))
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert _check_complete(out / "random" / "seed-0")[-1]["ledger"]["epochs"] == 18


# --- the Ray executor ------------------------------------------------------------------

@pytest.mark.ray
def test_a_users_task_runs_on_ray_actors(tmp_path):
    out = tmp_path / "study"
    proc = _cli("run", "--task", "my_tasks:Quadratic", "--optimizer", "hyperband",
                "--budget", "6x", "--executor", "ray", "--workers", "2", "--out", str(out))
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    run = out / "hyperband" / "seed-0"
    rows = _check_complete(run)
    assert rows[-1]["ledger"]["epochs"] == 6 * 9 and rows[-1]["reason"] == "budget"
    assert read_meta(run)["executor"] == "ray"


def test_the_built_ins_are_declared_as_entry_points_too():
    import tomllib

    from suite.registry import BUILTIN_TASKS, ENTRY_POINT_GROUP

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"][ENTRY_POINT_GROUP] == BUILTIN_TASKS


def _code_lines(path):
    return sum(1 for line in path.read_text().splitlines()
               if line.strip() and not line.strip().startswith("#"))


@pytest.mark.parametrize("ref, lines", [("minimal_task:Minimal", 12),
                                        ("minimal_function:task", 7)])
def test_the_minimal_tasks_of_the_docs_run_a_study(on_path, tmp_path, ref, lines):
    """docs/tasks.md shows these two files and their line counts (code, blanks aside)."""
    assert _code_lines(FIXTURES / f"{ref.split(':')[0]}.py") == lines
    docs = (ROOT / "docs" / "tasks.md").read_text()
    assert f"tests/fixtures/{ref.split(':')[0]}.py, {lines} lines of code" in docs
    assert (FIXTURES / f"{ref.split(':')[0]}.py").read_text().strip() in docs, "shown as is"
    outcome, rows = _hyperband(ref, tmp_path, "2x")
    assert outcome.reason == "budget" and outcome.ledger.totals.epochs == 18
    assert outcome.state.incumbent is not None


def test_a_task_object_is_named_by_its_module_level_binding(on_path):
    """What a Python API taking a Task object (or class, or factory) hands the workers."""
    import my_tasks

    from suite.registry import reference_of

    assert reference_of(my_tasks.Quadratic) == "my_tasks:Quadratic"
    assert reference_of(my_tasks.make_quadratic) == "my_tasks:make_quadratic"
    assert reference_of(my_tasks.quadratic) == "my_tasks:quadratic"
    assert reference_of(my_tasks.from_loop) == "my_tasks:from_loop"
    assert reference_of("toy") == "toy"
    with pytest.raises(SuiteError, match="cannot name"):
        reference_of(my_tasks.Quadratic())  # a fresh instance: no module-level name


def test_suite_tasks_shows_the_name_task_takes_for_an_entry_point_task(on_path, tmp_path,
                                                                      monkeypatch, capsys):
    from suite.cli import main

    monkeypatch.syspath_prepend(str(_fake_installed_package(tmp_path / "site")))
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    assert "quadratic: " in out  # its TaskInfo name titles it ...
    assert "run it: suite run --task quad ..." in out  # ... and the name to type is shown
    assert "run it: suite run --task small_lm ..." in out
