"""However a task writes `save_to`, every logged epoch keeps its own checkpoint; the runner
creates the folder it asks a task to write into; and a killed driver's local workers die
with it, so no process of a killed study writes after it (real processes, by PID)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from suite.errors import TaskContractError
from suite.executors._base import Job, run_job
from suite.types import Capabilities, EpochResult, TaskInfo, Trial

# A user's task, written as users write it: its state saved in place every epoch (the file
# keeps its inode), an epoch as slow as `SLOW` says.
USER_TASK = '''
import json, os, time
from pathlib import Path
import ConfigSpace as CS
from suite import Task, TaskInfo, Capabilities, EpochResult, Fidelity

class InPlace(Task):
    info = TaskInfo(name="in_place", fidelity=Fidelity(min_epochs=1, max_epochs=9, eta=3))
    capabilities = Capabilities(checkpoints=True)

    def config_space(self, seed=0):
        space = CS.ConfigurationSpace(seed=seed)
        space.add(CS.UniformFloatHyperparameter("x", 0.0, 1.0))
        return space

    def default_config(self):
        return {"x": 0.5}

    def train(self, config, *, epochs, seed, resume_from=None, save_to=None, device="auto"):
        start = json.loads(Path(resume_from).read_text())["epoch"] if resume_from else 0
        for epoch in range(start + 1, epochs + 1):
            time.sleep(float(os.environ.get("SLOW", "0")))
            with open(save_to, "w") as f:  # in place: the same file every epoch
                f.write(json.dumps({"epoch": epoch}))
            yield EpochResult(epoch, {"val_loss": config["x"] / epoch}, 0.01, Path(save_to))
'''


class _InPlace:
    info = TaskInfo(name="in_place")
    capabilities = Capabilities(checkpoints=True, timer=True)

    def __init__(self, write: bool = True) -> None:
        self.write = write

    def train(self, config, *, epochs, seed, resume_from=None, save_to=None, device="auto"):
        for epoch in range(1, epochs + 1):
            if self.write or epoch == 1:
                with open(save_to, "w") as f:
                    f.write(json.dumps({"epoch": epoch}))
            yield EpochResult(epoch, {"val_loss": 1 / epoch}, 0.01, Path(save_to))


def test_a_task_saving_in_place_keeps_each_epochs_checkpoint(tmp_path):
    """A hard-linked pin shared the task's file: every pin then held the last epoch."""
    save_to = tmp_path / "checkpoints" / "7.pt"  # its folder does not exist yet
    job = Job(Trial(7, {}, 4, 7), seed=0, save_to=save_to)
    pins = [r.checkpoint for r in run_job(_InPlace(), job, "cpu")]
    assert [p.name for p in pins] == ["7.e1.pt", "7.e2.pt", "7.e3.pt", "7.e4.pt"]
    assert [json.loads(p.read_text())["epoch"] for p in pins] == [1, 2, 3, 4]


def test_a_checkpoint_reported_but_not_written_breaks_the_contract_naming_it(tmp_path):
    job = Job(Trial(3, {}, 2, 3), seed=0, save_to=tmp_path / "3.pt")
    with pytest.raises(TaskContractError, match=r"3\.pt for epoch 2 but did not write it"):
        list(run_job(_InPlace(write=False), job, "cpu"))


def _children(pid: int) -> list[int]:
    return [int(child) for task in Path(f"/proc/{pid}/task").iterdir()
            for child in (task / "children").read_text().split()]


def _workers(driver: int) -> list[int]:
    """The driver's workers (not multiprocessing's resource tracker): spawned (a local
    executor's), or forked by the fork server it started (a parallel replay's)."""
    found = []
    for pid in _children(driver):
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if b"spawn_main" in cmdline:
            found.append(pid)
        elif b"multiprocessing.forkserver" in cmdline:
            found += _children(pid)
    return found


def _trained(log: Path) -> set[int]:
    """Trials with an epoch logged (a start row is written before a worker has started)."""
    rows = [json.loads(line) for line in (log.read_text().splitlines() if log.exists() else ())
            if line.endswith("}")]
    return {r["trial_id"] for r in rows if r["event"] == "epoch"}


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")  # dead, not yet reaped by whoever adopted it


def _kill_when(driver: subprocess.Popen, ready, outlived: str) -> None:
    """SIGKILL `driver` once `ready()` (its two spawned workers at work); both workers
    must be gone within 1 s."""
    try:
        deadline = time.monotonic() + 120
        while not ready():
            assert driver.poll() is None, driver.stderr.read()
            assert time.monotonic() < deadline, "no epoch logged"
            time.sleep(0.05)
        workers = _workers(driver.pid)
        assert len(workers) == 2, workers
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    deadline = time.monotonic() + 1.0
    while not all(_gone(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert all(_gone(pid) for pid in workers), outlived


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_sigkilled_drivers_workers_die_with_it_mid_epoch(tmp_path):
    (tmp_path / "user_task.py").write_text(textwrap.dedent(USER_TASK))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get(
        "PYTHONPATH", "")]), SLOW="1.5")  # each epoch 1.5 s: the workers are mid-epoch
    out = tmp_path / "study"
    driver = subprocess.Popen(
        [sys.executable, "-m", "suite.cli", "run", "--task", "user_task:InPlace",
         "--optimizer", "random", "--budget", "20x", "--workers", "2", "--out", str(out)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    log = out / "random" / "seed-0" / "log.jsonl"
    # both workers past start-up, training; gone well inside the 1.5 s epoch they were in
    _kill_when(driver, lambda: len(_trained(log)) >= 2, "a worker outlived its killed driver")
    files = {p: p.stat().st_mtime_ns for p in (out / "random" / "seed-0").rglob("*")}
    time.sleep(2.0)  # longer than an epoch: an orphan would have saved by now
    assert {p: p.stat().st_mtime_ns for p in (out / "random" / "seed-0").rglob("*")} == files


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_sigkilled_parallel_replays_workers_die_with_it_mid_run(tmp_path):
    from suite.testing import toy_table

    table = toy_table(tmp_path / "toy.parquet", seeds=2)
    out = tmp_path / "study"
    driver = subprocess.Popen(
        [sys.executable, "-m", "suite.cli", "run", "--task", "toy", "--table", str(table),
         "--optimizer", "random,asha", "--budget", "3000x", "--workers", "4", "--jobs", "2",
         "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _kill_when(driver, lambda: sum(len(_trained(log)) > 0  # both runs writing rows
                                   for log in out.glob("*/seed-0/log.jsonl")) >= 2,
               "a replay worker outlived its killed driver")
    sizes = {p: p.stat().st_size for p in out.glob("*/seed-0/log.jsonl")}
    time.sleep(0.5)  # an orphan replay writes hundreds of rows in this time
    assert {p: p.stat().st_size for p in out.glob("*/seed-0/log.jsonl")} == sizes
