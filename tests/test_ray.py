"""The Ray executor on a local Ray instance with 2 CPU workers running the toy task.

Starting Ray takes seconds, so these tests carry the `ray` marker: the default run leaves
them out and CI runs them with `pytest -m ray`. Without a GPU, `--gpus-per-trial` is
tested as plumbing only (the refusal on a GPU-less instance); trials train on the CPU.
The last test needs no Ray and runs by default; the one-line error without Ray is in the
catalogue of bad inputs (tests/test_bad_inputs.py).
"""

import functools
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from logcheck import assert_every_epoch_once, killer

from suite.budget import Ledger, parse_budget
from suite.errors import SuiteError
from suite.executors import InProcessExecutor
from suite.log import RunLog, read_meta, read_rows
from suite.runner import Runner
from suite.testing import At, Die, Faults, Pace, ToyTask
from suite.testing import ScriptedOptimizer as Scripted
from suite.types import Status, Trial


@pytest.fixture(scope="module")
def ray_local():
    from suite.executors._ray import connect

    ray = connect(None, workers=2)
    assert ray.cluster_resources().get("CPU") == 2  # the 2-core CI machine's whole share
    yield ray
    ray.shutdown()


def _ray_executor(make_task, workers=2):
    from suite.executors._ray import RayExecutor

    return RayExecutor(make_task, workers=workers)


def _config(width):
    return {**ToyTask().default_config(), "width": width}


def _run(tmp_path, executor, trials, name="run", **runner_options):
    optimizer = Scripted(trials)
    log = RunLog.create(tmp_path / name, {"task": "toy"})
    runner = Runner(optimizer=optimizer, executor=executor,
                    ledger=Ledger(parse_budget("100x"), max_epochs=27), log=log,
                    metric=ToyTask.info.metric, seed=0, checkpoints=tmp_path / name / "ckpt",
                    **runner_options)
    with log:
        reason = runner.run()
    return reason, runner, optimizer, read_rows(tmp_path / name)


def _trials():
    widths = (3, 5, 7, 9)
    trials = [Trial(i, _config(w), 6, i) for i, w in enumerate(widths)]
    return trials + [Trial(4, _config(3), 12, 0, resume_from=0)]  # a promotion


@pytest.mark.ray
def test_ray_executor_trains_as_in_process_training_does(tmp_path, ray_local):
    """The same trials (a promotion, an exception, a NaN) give the same epochs, losses,
    statuses and ledger on 2 Ray actors as in this process."""
    fault = Faults((At(3, "raise", (("width", 7),)), At(2, "nan", (("width", 9),))))
    make_task = functools.partial(ToyTask, fault=fault)
    ray_run = _run(tmp_path, _ray_executor(make_task), _trials(), "ray")
    local_run = _run(tmp_path, InProcessExecutor(make_task(), workers=2), _trials(), "here")
    for reason, _, _, rows in (ray_run, local_run):
        assert reason == "optimizer"
        assert assert_every_epoch_once(rows) == {0: "ok", 1: "ok", 2: "failed", 3: "failed",
                                                 4: "ok"}

    def epochs(rows):  # NaN is not equal to itself: compare its text
        return sorted((r["trial_id"], r["epoch"], repr(r["loss"]), r["status"]) for r in rows
                      if r["event"] == "epoch")

    assert epochs(ray_run[3]) == epochs(local_run[3])
    assert {t: (r.status, r.loss) for t, r in ray_run[2].told.items()} == \
        {t: (r.status, r.loss) for t, r in local_run[2].told.items()}
    ray_totals, local_totals = ray_run[1].ledger.totals, local_run[1].ledger.totals
    assert ray_totals.epochs == local_totals.epochs == 6 * 2 + 2 + 2 + 6
    # charged in another order: equal up to float rounding
    assert ray_totals.device_seconds == pytest.approx(local_totals.device_seconds)
    (end,) = [r for r in ray_run[3] if r["event"] == "end"]
    assert end["error"] == "RuntimeError: injected fault at epoch 3"
    assert {r["worker"] for r in ray_run[3] if r["event"] == "epoch"} == {0, 1}


@pytest.mark.ray
def test_ray_worker_killed_mid_run_is_retried_and_the_run_completes(tmp_path, ray_local):
    """SIGKILL one actor's process mid-trial: its trial resumes from the checkpoint of its
    last logged epoch; a trial whose actor dies on the retry too is `crashed`."""
    pace = Pace(0.2, str(tmp_path / "pids"))
    always = Die(3, (("width", 9),))  # this trial's worker dies on every attempt
    make_task = functools.partial(ToyTask, fault=Faults((pace, always)))
    trials = [Trial(i, _config(w), 5, i) for i, w in enumerate((3, 5, 7, 9))]
    kill = killer(tmp_path / "pids")
    reason, runner, opt, rows = _run(tmp_path, _ray_executor(make_task), trials, on_row=kill)
    assert reason == "optimizer" and rows[-1]["event"] == "finish"
    assert len(kill.killed) == 1
    (victim, _), = kill.killed.items()
    retries = {r["trial_id"]: r for r in rows if r["event"] == "retry"}
    assert set(retries) == {victim, 3}
    for tid, retry in retries.items():  # from the checkpoint pinned at the last logged epoch
        assert retry["resumed_checkpoint"] == f"{tid}.e{retry['epoch']}.pt"
    assert retries[3]["epoch"] == 2
    expected = {0: "ok", 1: "ok", 2: "ok", 3: "crashed"}
    assert assert_every_epoch_once(rows) == expected
    assert {t: r.status for t, r in opt.told.items()} == {
        t: Status.FAILED if s == "crashed" else Status.OK for t, s in expected.items()}


@pytest.mark.ray
def test_ray_trial_past_the_timeout_is_killed(tmp_path, ray_local):
    make_task = functools.partial(ToyTask, fault=Pace(120, match=(("width", 5),)))
    trials = [Trial(i, _config(w), 4, i) for i, w in enumerate((5, 3, 7))]
    start = time.monotonic()
    reason, runner, opt, rows = _run(tmp_path, _ray_executor(make_task), trials,
                                     trial_timeout=15)
    assert reason == "optimizer" and time.monotonic() - start < 60
    assert assert_every_epoch_once(rows) == {0: "timeout", 1: "ok", 2: "ok"}
    assert opt.told[0].status is Status.FAILED


@pytest.mark.ray
def test_gpus_per_trial_on_a_gpu_less_local_instance_is_refused(ray_local):
    from suite.executors._ray import connect

    with pytest.raises(SuiteError, match="--gpus-per-trial 0.25, but this machine's Ray "
                                         "instance has no GPU"):
        connect(None, workers=2, gpus_per_trial=0.25)


def _cli(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "suite.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


@pytest.mark.ray
def test_ray_driver_killed_then_resume_continues(tmp_path):
    out = tmp_path / "study"
    victim = _cli("run", "--task", "toy", "--optimizer", "hyperband", "--budget", "10x",
                  "--executor", "ray", "--workers", "2", "--trial-timeout", "120",
                  "--out", str(out), start_new_session=True)
    run = out / "hyperband" / "seed-0"
    deadline = time.time() + 180
    while time.time() < deadline and victim.poll() is None and (
            not (run / "log.jsonl").exists() or (run / "log.jsonl").stat().st_size < 20_000):
        time.sleep(0.005)
    os.killpg(victim.pid, signal.SIGKILL)  # the driver and the Ray instance it started
    victim.wait()
    killed_rows = read_rows(run)
    assert killed_rows and killed_rows[-1]["event"] != "finish", "killed before the end"

    resumed = _cli("run", "--resume", str(out))
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    rows = read_rows(run)
    assert rows[:len(killed_rows)] == killed_rows, "nothing logged is lost or rewritten"
    assert rows[-1]["event"] == "finish" and rows[-1]["reason"] == "budget"
    assert_every_epoch_once(rows)
    # every epoch charged once across the kill: exactly the budget, 10 x 27 epochs
    assert len([r for r in rows if r["event"] == "epoch"]) == 270 == rows[-1]["ledger"]["epochs"]
    plan = json.loads((out / "study.json").read_text())
    assert (plan["executor"], plan["address"], plan["trial_timeout"]) == ("ray", None, 120)
    assert read_meta(run)["executor"] == "ray"


def test_default_executors_never_import_ray():
    code = ("import sys, suite.study, suite.commands.run_cmd, suite.executors; "
            "print('ray' in sys.modules, 'suite.executors._ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.split() == ["False", "False"], out.stderr


@pytest.mark.ray
@pytest.mark.parametrize("signum, group", [(signal.SIGTERM, False), (signal.SIGINT, True)],
                         ids=["sigterm-driver", "sigint-group"])
def test_ray_study_stops_on_a_signal_and_resumes(tmp_path, signum, group):
    """The runner owns signals with Ray too: SIGTERM to the driver (a scheduler stopping
    the job) or SIGINT to its process group (Ctrl-C, which Ray's own processes see as
    well) stops the study with one line, no traceback, exit 128 + signal; --resume then
    runs it to its budget with every epoch logged and charged once."""
    out = tmp_path / "study"
    victim = _cli("run", "--task", "toy", "--optimizer", "random", "--budget", "10x",
                  "--executor", "ray", "--workers", "2", "--out", str(out),
                  start_new_session=True)
    run = out / "random" / "seed-0"
    deadline = time.time() + 180
    while time.time() < deadline and victim.poll() is None and (
            not (run / "log.jsonl").exists() or (run / "log.jsonl").stat().st_size < 5_000):
        time.sleep(0.005)
    if group:
        os.killpg(victim.pid, signum)
    else:
        victim.send_signal(signum)
    _, err = victim.communicate(timeout=120)
    assert victim.returncode == 128 + signum, err
    assert "Traceback" not in err, err
    name = signal.Signals(signum).name
    assert [line for line in err.splitlines() if line.strip()] == [
        f"suite run: interrupted ({name}): resume with suite run --resume {out}"]
    stopped = read_rows(run)
    assert stopped and stopped[-1]["event"] != "finish"

    resumed = _cli("run", "--resume", str(out))
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    rows = read_rows(run)
    assert rows[:len(stopped)] == stopped, "nothing logged is lost or rewritten"
    assert rows[-1]["event"] == "finish" and rows[-1]["reason"] == "budget"
    assert_every_epoch_once(rows)
    assert len([r for r in rows if r["event"] == "epoch"]) == 270 == rows[-1]["ledger"]["epochs"]
