"""A user's PyTorch job (tests/fixtures/user_mlp.py: complete state saved *in place* with
`torch.save(state, save_to)`), studied on 2 workers, its `suite run` SIGKILLed at random
moments several times and each time resumed with `--resume` from another working folder:
every epoch of every trial is logged exactly once, `suite report` accepts the final log,
and each configuration's curve is bit for bit the one it trains without interruption.
Slow (a study of about a minute): CI lists it; the Ray twin (one kill) runs under `-m ray`."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from logcheck import assert_every_epoch_once

from suite.log import read_rows

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
KILLS = 3


def _env() -> dict[str, str]:
    path = os.pathsep.join([str(ROOT), str(FIXTURES), os.environ.get("PYTHONPATH", "")])
    return dict(os.environ, PYTHONPATH=path, USER_MLP_PACE="0.05")


def _suite(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "suite.cli", *args], cwd=cwd, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _epochs(log: Path) -> int:
    if not log.exists():
        return 0
    return sum('"event": "epoch"' in line for line in log.read_text().splitlines())


def _reference(config: dict, seed: int, epochs: int, threads: int) -> list[float]:
    """The configuration trained without interruption, in this process, with the
    workers' threads."""
    import torch
    from user_mlp import MLP

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return [r.metrics["val_mse"] for r in MLP().train(config, epochs=epochs, seed=seed)]
    finally:
        torch.set_num_threads(before)


def _kill_and_resume(tmp_path: Path, executor: str, times: int = KILLS
                     ) -> tuple[Path, list[dict], int]:
    out = tmp_path / "study"
    plan = ["run", "--task", "user_mlp:MLP", "--optimizer", "hyperband", "--budget", "4x",
            "--workers", "2", "--executor", executor, "--out", str(out)]
    log = out / "hyperband" / "seed-0" / "log.jsonl"
    moments = random.Random(29)
    kills, leftovers = 0, []
    for attempt in range(times + 1):
        where = tmp_path / f"cwd-{attempt}"  # each resume from another working folder
        where.mkdir()
        driver = _suite(*(plan if attempt == 0 else ["run", "--resume", str(out)]), cwd=where)
        if attempt == times:
            _, err = driver.communicate(timeout=600)
            assert driver.returncode == 0, err
            break
        logged = _epochs(log)
        deadline = time.monotonic() + 300
        while driver.poll() is None and _epochs(log) <= logged + 2:  # it trained on
            assert time.monotonic() < deadline, "no epoch logged"
            time.sleep(0.01)
        time.sleep(moments.uniform(0.0, 1.0))  # then a random moment, mid-epoch or not
        family = _descendants(driver.pid)
        if driver.poll() is None:
            os.kill(driver.pid, signal.SIGKILL)  # the driver alone: its workers follow
            kills += 1
        driver.wait()
        _trainers_die(family, log.parent)
        leftovers += family
    for pid in leftovers:  # a local Ray instance's agents outlive it: not writers, but
        with contextlib.suppress(ProcessLookupError):  # not left on the machine either
            os.kill(pid, signal.SIGKILL)
    return out, read_rows(log.parent), kills


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for task in Path(f"/proc/{todo.pop()}/task").glob("*"):
            with contextlib.suppress(OSError):
                children = [int(c) for c in (task / "children").read_text().split()]
                found += children
                todo += children
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")  # dead, not yet reaped by whoever adopted it


def _trainers_die(family: list[int], run: Path) -> None:
    """The processes that train (local workers: `spawn_main`; Ray actors: `ray::_Trial`)
    are gone within seconds of their driver's SIGKILL, by PID, and nothing in the run
    folder changes after that."""
    trainers = [p for p in family if b"spawn_main" in _cmdline(p) or
                _cmdline(p).startswith(b"ray::_Trial")]
    deadline = time.monotonic() + 15
    while not all(map(_gone, trainers)):
        assert time.monotonic() < deadline, [p for p in trainers if not _gone(p)]
        time.sleep(0.05)
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()}
    time.sleep(0.5)
    after = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()}
    assert after == before, "a killed study's process wrote on"


@pytest.mark.slow
def test_a_users_in_place_checkpoints_survive_repeated_sigkills_and_resumes(tmp_path,
                                                                            monkeypatch):
    monkeypatch.syspath_prepend(str(FIXTURES))
    out, rows, kills = _kill_and_resume(tmp_path, "local")
    _check(tmp_path, out, rows, kills, threads=max(1, (os.cpu_count() or 1) // 2))


@pytest.mark.ray
def test_a_users_in_place_checkpoints_survive_repeated_sigkills_on_ray(tmp_path, monkeypatch):
    """Ray fate-shares an actor with its owner: a SIGKILLed driver's actors are killed by
    Ray (with a local instance its GCS and raylet exit within a second, the actors with
    them), so none trains on into the resumed study. One kill: what repeated kills add
    (resumes of resumes, checkpoints of promoted trials) the local test above shows, and
    each kill here costs a Ray instance's start (about 40 s of CI's 2 cores)."""
    monkeypatch.syspath_prepend(str(FIXTURES))
    out, rows, kills = _kill_and_resume(tmp_path, "ray", times=1)
    _check(tmp_path, out, rows, kills, threads=1, least=1)  # an actor: one thread


def _check(tmp_path: Path, out: Path, rows: list[dict], kills: int, threads: int,
           least: int = 2) -> None:
    assert kills >= least, "killed mid-study (several times where asked)"
    assert rows[-1]["event"] == "finish" and rows[-1]["reason"] == "budget"
    assert_every_epoch_once(rows)
    epochs = [r for r in rows if r["event"] == "epoch"]
    assert len(epochs) == rows[-1]["ledger"]["epochs"] == 4 * 9, "each epoch charged once"
    resumed = [r for r in rows if r["event"] == "start" and r["resumed_checkpoint"]]
    assert resumed, "promotions resumed from checkpoints"

    report = subprocess.run([sys.executable, "-m", "suite.cli", "report", str(out),
                             "--no-pdf", "--out", str(tmp_path / "report")], env=_env(),
                            capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr  # it reads (and checks) the log

    seeds = {r["config_id"]: r["seed"] for r in rows if r["event"] == "start"}
    configs = {r["config_id"]: r["config"] for r in rows if r["event"] == "start"}
    for config_id, config in configs.items():  # its trials' epochs, promotions included
        curve = {e["epoch"]: e["metrics"]["val_mse"] for e in epochs
                 if e["config_id"] == config_id}
        if curve:
            whole = _reference(config, seeds[config_id], max(curve), threads)
            np.testing.assert_array_equal(  # bit for bit (a diverged NaN is equal to NaN)
                [curve[e] for e in sorted(curve)], [whole[e - 1] for e in sorted(curve)])
