"""The Python API: `suite.run` on a user's task (a module outside `suite`), its `Study`
(epochs, trials, incumbents, report), `resume`, stop, bad input."""

import subprocess
import sys
import threading

import pytest

import suite
from suite.api import Placement, Plan, spec_of, split
from suite.errors import SuiteError
from suite.interrupt import Stopped
from suite.study import load_study


@pytest.fixture
def my_tasks(monkeypatch):
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).parent / "fixtures"))
    import my_tasks

    return my_tasks


def test_run_a_task_class_returns_frames_and_incumbents(tmp_path, my_tasks):
    study = suite.run(task=my_tasks.Quadratic, optimizers=["random", "hyperband"],
                      budget="3x", seeds=[0, 1], out=tmp_path / "s",
                      where=Placement(executor="inprocess"))
    assert load_study(tmp_path / "s").task == "my_tasks:Quadratic", "a reference on disk"
    epochs, trials, best = study.epochs(), study.trials(), study.incumbents()
    assert len(epochs) == sum(o.ledger.totals.epochs for o in study.outcomes)
    assert {"optimizer", "seed", "trial_id", "epoch", "loss", "config.lr"} <= set(epochs)
    assert 0 < len(trials) <= epochs.groupby(["run", "trial_id"]).ngroups  # completed ones
    assert sorted(zip(best["optimizer"], best["seed"], strict=True)) == [
        ("hyperband", 0), ("hyperband", 1), ("random", 0), ("random", 1)]
    for o in study.outcomes:  # the frame's incumbent is the runner's
        row = best[(best["optimizer"] == o.optimizer) & (best["seed"] == o.seed)].iloc[0]
        assert row["loss"] == pytest.approx(o.state.incumbent.loss)
        assert row["config.lr"] == pytest.approx(o.state.incumbent.config["lr"])
        assert row["ledger.full"] == pytest.approx(3.0)
    assert repr(study).startswith("Study(")


def test_report_writes_what_suite_report_writes(tmp_path, my_tasks):
    study = suite.run(task="my_tasks:Quadratic", optimizers="random", budget="2x",
                      out=tmp_path / "s", where=Placement(executor="inprocess"))
    result = study.report(resamples=100)
    assert result.out == tmp_path / "s" / "report" and (result.out / "report.md").exists()
    assert result.figures


def test_stop_then_resume_continues_the_study(tmp_path, my_tasks):
    stop = threading.Event()
    stop.set()  # stopped before its first run: nothing trained, the plan written
    with pytest.raises(Stopped):
        suite.run(task=my_tasks.Quadratic, optimizers="random", budget="2x",
                  out=tmp_path / "s", where=Placement(executor="inprocess"), stop=stop)
    study = suite.resume(tmp_path / "s")
    assert study.outcomes[0].reason == "budget"
    again = suite.run(task=my_tasks.Quadratic, optimizers="random", budget="2x",
                      out=tmp_path / "s", resume=True)  # complete: returns at once
    assert len(again.epochs()) == len(study.epochs())
    with pytest.raises(SuiteError, match="holds another study"):
        suite.run(task=my_tasks.Quadratic, optimizers="tpe", budget="2x", out=tmp_path / "s",
                  resume=True)
    with pytest.raises(SuiteError, match="already holds a study"):
        suite.run(task=my_tasks.Quadratic, optimizers="random", budget="2x",
                  out=tmp_path / "s")


def test_bad_input_is_one_suite_error_before_anything_is_written(tmp_path, my_tasks):
    for kwargs, match in (({"optimizers": "nope"}, "unknown optimizer"),
                          ({"budget": "ten"}, "budget"),
                          ({"task": my_tasks.Quadratic()}, "cannot name")):
        args = {"task": my_tasks.Quadratic, "optimizers": "random", "budget": "2x", **kwargs}
        with pytest.raises(SuiteError, match=match):
            suite.run(**args, out=tmp_path / "s")
        assert not (tmp_path / "s").exists()


UNGUARDED = """\
import sys
import suite

suite.run(task="toy", optimizers="random", budget="2x", out=sys.argv[1],
          where=suite.Placement(workers=2))
"""

# The driver is guarded; the call runs only when spawn re-runs the script in the child.
RERUN_IN_A_WORKER = """\
import multiprocessing
import sys
import suite

def nothing():
    pass

if __name__ == "__main__":
    child = multiprocessing.get_context("spawn").Process(target=nothing)
    child.start()
    child.join()
    sys.exit(child.exitcode)
suite.run(task="toy", optimizers="random", budget="2x", out=sys.argv[1])
"""


def _script(tmp_path, text: str):
    script = tmp_path / "my_study.py"
    script.write_text(text)
    return subprocess.run([sys.executable, str(script), str(tmp_path / "s")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)


def test_a_script_without_a_main_guard_is_refused_in_the_driver(tmp_path):
    proc = _script(tmp_path, UNGUARDED)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        "suite.errors.SuiteError: suite.run is called from line 4 of your script outside "
        'if __name__ == "__main__":: every worker process re-runs the script, so put the '
        "call under that guard")
    assert proc.stderr.count("Traceback") == 1 and "multiprocessing" not in proc.stderr
    assert not (tmp_path / "s").exists()


def test_a_script_re_run_by_spawn_is_stopped_in_the_worker_in_one_line(tmp_path):
    proc = _script(tmp_path, RERUN_IN_A_WORKER)
    assert proc.returncode == 2  # the child's exit code, passed on by the script
    assert proc.stderr.splitlines() == [
        "error: suite.run was called again while a worker process re-ran your script; put "
        'the call under if __name__ == "__main__":']
    assert not (tmp_path / "s").exists()


def test_plan_and_placement_are_the_study_json_fields():
    plan = Plan(task="toy", optimizers=("random",), budget="2x", seeds=(0, 3))
    where = Placement(workers=2)
    spec = spec_of(plan, where)
    assert split(spec) == (plan, Placement(executor="local", workers=2))
