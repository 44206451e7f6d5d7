"""Replay: the simulated executor's clock, the runner and study on recorded tables, resume,
determinism, and bad input as one line with exit 2."""

import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from ConfigSpace import ConfigurationSpace, OrdinalHyperparameter

from suite.budget import Ledger, parse_budget
from suite.cli import main
from suite.executors import EpochDone, Job, SimulatedExecutor, TrialEnded
from suite.log import RunLog, read_meta, read_rows
from suite.runner import Runner, training_seed
from suite.study import StudySpec, run_study
from suite.tables import grid_configs, read_table, write_table
from suite.testing import Killed, ScriptedOptimizer, ToyTask, kill_after, toy_table
from suite.types import Metric, Status, Trial


@pytest.fixture(scope="module")
def toy_path(tmp_path_factory):
    return toy_table(tmp_path_factory.mktemp("tables") / "toy.parquet", seeds=2)


@pytest.fixture(scope="module")
def toy(toy_path):
    return read_table(toy_path)


def hand_table(path, seconds, *, max_epochs=3, seeds=1, task="toy", nan_at=None):
    """A table over one ordinal `x` in 0..n-1: every epoch of configuration x takes
    `seconds(x, epoch)` device-seconds; the loss is x + 1/epoch (NaN at `nan_at`)."""
    n = len(seconds) if isinstance(seconds, list) else 4
    cost = seconds if callable(seconds) else (lambda x, epoch: seconds[x])
    space = ConfigurationSpace()
    space.add(OrdinalHyperparameter("x", list(range(n))))
    rows = []
    for index, config in enumerate(grid_configs(space)):
        x = config["x"]
        for seed in range(seeds):
            for epoch in range(1, max_epochs + 1):
                loss = math.nan if (x, epoch) == nan_at else x + 1 / epoch + seed / 100
                rows.append({"config_index": index, "config.x": x, "seed": seed, "epoch": epoch,
                             "val_loss": loss, "device_seconds": float(cost(x, epoch))})
    write_table(path, rows, {"task": task, "space": space.to_serialized_dict(),
                             "metrics": ["val_loss"], "seeds": seeds, "max_epochs": max_epochs,
                             "metric": "val_loss", "minimize": True, "scale": "full",
                             "complete": True})
    return read_table(path)


def replay(tmp_path, table, trials, *, workers=1, budget="100x", promotion="resume"):
    optimizer = ScriptedOptimizer(trials)
    log = RunLog.create(tmp_path / "run", {"task": "toy"})
    runner = Runner(optimizer=optimizer, executor=SimulatedExecutor(table, workers=workers),
                    ledger=Ledger(parse_budget(budget), max_epochs=table.max_epochs), log=log,
                    metric=Metric("val_loss"), seed=0, checkpoints=None, promotion=promotion)
    reason = runner.run()
    log.close()
    return reason, runner, optimizer, read_rows(tmp_path / "run")


def drain(executor):
    events = []
    while executor._jobs or executor._ended:
        event = executor.next_event()
        events.append((type(event).__name__, event.trial_id,
                       event.result.epoch if isinstance(event, EpochDone) else None,
                       executor.now))
    return events


def test_events_follow_the_simulated_clock_not_submission_order(tmp_path):
    table = hand_table(tmp_path / "t.parquet", [10, 1, 2, 3])
    executor = SimulatedExecutor(table, workers=4)
    for x in range(4):  # the long trial (x=0) is submitted first
        executor.submit(Job(Trial(x, {"x": x}, 3, x), seed=0, save_to=None))
    assert executor.free_slots() == 0
    events = drain(executor)
    epochs = [(tid, epoch, now) for kind, tid, epoch, now in events if kind == "EpochDone"]
    assert epochs == [(1, 1, 1), (1, 2, 2), (2, 1, 2), (1, 3, 3), (3, 1, 3), (2, 2, 4),
                      (2, 3, 6), (3, 2, 6), (3, 3, 9), (0, 1, 10), (0, 2, 20), (0, 3, 30)]
    for i, (kind, tid, _, now) in enumerate(events):  # each end right after its last epoch
        if kind == "TrialEnded":
            assert events[i - 1][1:] == (tid, 3, now)
    assert executor.free_slots() == 4


def test_cancel_frees_the_worker_now_and_drops_future_epochs(tmp_path):
    table = hand_table(tmp_path / "t.parquet", [5, 1, 1, 1])
    executor = SimulatedExecutor(table, workers=2)
    executor.submit(Job(Trial(0, {"x": 0}, 3, 0), seed=0, save_to=None))
    executor.submit(Job(Trial(1, {"x": 1}, 3, 1), seed=0, save_to=None))
    assert executor.next_event().trial_id == 1 and executor.now == 1
    executor.cancel(0)
    assert executor.next_event() == TrialEnded(0, 0) and executor.free_slots() == 1
    executor.submit(Job(Trial(2, {"x": 2}, 1, 2), seed=0, save_to=None))  # starts at t=1
    assert [e[1:] for e in drain(executor) if e[0] == "EpochDone"] == [
        (2, 1, 2), (1, 2, 2), (1, 3, 3)], "a tie at t=2 goes to the lower worker"


def test_replay_through_the_runner_logs_sim_time_in_completion_order(tmp_path):
    table = hand_table(tmp_path / "t.parquet", [10, 1, 2, 3])
    trials = [Trial(x, {"x": x}, 3, x) for x in range(4)]
    reason, runner, opt, rows = replay(tmp_path, table, trials, workers=4)
    assert reason == "optimizer" and len(opt.told) == 4
    epochs = [r for r in rows if r["event"] == "epoch"]
    assert [r["sim_time"] for r in epochs] == sorted(r["sim_time"] for r in epochs)
    assert [r["trial_id"] for r in epochs if r["status"] == "ok"] == [1, 2, 3, 0]
    assert all("sim_time" in r and "wall_time" in r for r in rows)
    assert rows[-1]["event"] == "finish" and rows[-1]["sim_time"] == 30
    assert runner.ledger.totals.device_seconds == pytest.approx(3 * (10 + 1 + 2 + 3))


@pytest.mark.parametrize("promotion", ["resume", "retrain"])
def test_a_resumed_promotion_pays_only_the_extra_epochs(tmp_path, promotion):
    table = hand_table(tmp_path / "t.parquet", lambda x, epoch: epoch, max_epochs=9)
    trials = [Trial(0, {"x": 1}, 3, 0), Trial(1, {"x": 1}, 9, 0, resume_from=0)]
    reason, runner, opt, rows = replay(tmp_path, table, trials, promotion=promotion)
    first = 1 + 2 + 3
    promoted = sum(range(4, 10)) if promotion == "resume" else sum(range(1, 10))
    assert runner.ledger.totals.device_seconds == first + promoted
    last = [r for r in rows if r["event"] == "epoch"][-1]
    assert last["sim_time"] == first + promoted and last["status"] == "ok"
    assert opt.told[1].loss == pytest.approx(1 + 1 / 9), "the same curve either way"


def test_a_nan_in_the_table_fails_the_trial_and_frees_its_worker(tmp_path):
    table = hand_table(tmp_path / "t.parquet", [1, 1, 1, 1], nan_at=(2, 2))
    trials = [Trial(i, {"x": x}, 3, i) for i, x in enumerate([2, 0, 1])]
    reason, runner, opt, rows = replay(tmp_path, table, trials, workers=2)
    assert opt.told[0].status is Status.FAILED and math.isinf(opt.told[0].loss)
    assert [r["epoch"] for r in rows if r.get("trial_id") == 0 and r["event"] == "epoch"] == [1, 2]
    third = next(r for r in rows if r["event"] == "start" and r["trial_id"] == 2)
    assert third["sim_time"] == 2, "the failed trial's worker took the next trial at once"


def test_a_configuration_outside_the_grid_fails_without_stopping_the_run(tmp_path):
    table = hand_table(tmp_path / "t.parquet", [1, 1, 1, 1])
    trials = [Trial(0, {"x": 7}, 3, 0), Trial(1, {"x": 1}, 3, 1)]
    reason, runner, opt, rows = replay(tmp_path, table, trials)
    end = next(r for r in rows if r["event"] == "end")
    assert end["trial_id"] == 0 and "not in the table's grid" in end["error"]
    assert opt.told[1].status is Status.OK


def _spec(table, optimizer="random", **kwargs):
    return StudySpec(task="toy", optimizers=(optimizer,), seeds=(kwargs.pop("seed", 0),),
                     budget=kwargs.pop("budget", "5x"), table=str(table), **kwargs)


def test_every_epoch_comes_from_the_table_with_the_trials_training_seed(tmp_path, toy_path, toy):
    (outcome,) = run_study(_spec(toy_path, seed=3, workers=3), tmp_path / "s")
    epochs = [r for r in read_rows(outcome.directory) if r["event"] == "epoch"]
    assert len(epochs) == 5 * 27 and outcome.ledger.totals.full == 5
    seeds = set()
    for row in epochs:
        seed = training_seed(3, row["config_id"]) % toy.seeds
        seeds.add(seed)
        metrics, seconds = toy.epoch(toy.config_index(row["config"]), seed, row["epoch"])
        assert row["metrics"] == metrics and row["device_seconds"] == seconds
    assert seeds == {0, 1}
    meta = read_meta(outcome.directory)
    assert meta["simulated"] is True and meta["executor"] == "simulated"
    assert meta["table"] == str(toy_path) and len(meta["table_sha256"]) == 64
    assert meta["table_provenance"]["seeds"] == 2 and "space" not in meta["table_provenance"]


def test_a_seconds_budget_charges_recorded_seconds_and_cuts_the_trial_in_flight(tmp_path,
                                                                              toy_path):
    (outcome,) = run_study(_spec(toy_path, budget="300s", workers=2), tmp_path / "s")
    rows = read_rows(outcome.directory)
    spent = outcome.ledger.totals.device_seconds
    assert outcome.reason == "budget" and 300 <= spent < 300 + 5
    assert spent == pytest.approx(sum(r["device_seconds"] for r in rows if r["event"] == "epoch"))
    cut = [r for r in rows if r.get("status") == "cut"]
    assert len(cut) == 2, "the epoch that spent the budget, and the other worker's trial"


def _without_wall_time(directory):
    return re.sub(r', "wall_time": [-0-9.e]+', "", (directory / "log.jsonl").read_text())


def test_the_same_replay_twice_gives_identical_logs(tmp_path, toy_path):
    spec = _spec(toy_path, "hyperband", budget="20x", workers=4)
    first, second = (run_study(spec, tmp_path / name)[0] for name in ("a", "b"))
    text = _without_wall_time(first.directory)
    assert text == _without_wall_time(second.directory) and "wall_time" not in text
    starts = [r for r in read_rows(first.directory) if r["event"] == "start"]
    assert len(starts) > 40 and "sim_time" in starts[-1]


# `suite run` that also fails if the process imported torch: a replay of a task that does not
# need it records no torch threads, and importing it cost ~2 s per process (and per worker)
_WITHOUT_TORCH = ("import sys; from suite.cli import main; code = main(sys.argv[1:]); "
                  "heavy = {'torch', 'sklearn'} & set(sys.modules); "
                  "assert not heavy, f'imported {heavy}'; sys.exit(code)")


def test_the_cli_replays_identically_twice_without_importing_torch(tmp_path, toy_path):
    args = [sys.executable, "-c", _WITHOUT_TORCH, "run", "--task", "toy", "--table", str(toy_path),
            "--optimizer", "random,asha", "--seeds", "0-1", "--budget", "4x", "--workers", "4",
            "--jobs", "1"]  # runs one after another: test_parallel.py shows --jobs 2 equal
    for name in ("a", "b"):
        proc = subprocess.run([*args, "--out", str(tmp_path / name)], capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
    for run in ("random/seed-0", "random/seed-1", "asha/seed-0", "asha/seed-1"):
        assert _without_wall_time(tmp_path / "a" / run) == _without_wall_time(tmp_path / "b" / run)
    plan = json.loads((tmp_path / "a" / "study.json").read_text())
    assert plan["executor"] == "simulated" and plan["table"] == str(toy_path)
    assert plan["scale"] == "full" and plan["workers"] == 4
    assert "cpu_threads" not in read_meta(tmp_path / "a" / "random/seed-0")["environment"]


def test_a_built_in_task_is_listed_and_replayed_without_torch_or_scikit_learn(tmp_path):
    # Each replay worker loads the task too: torch and scikit-learn cost ~3 s a process.
    table = Path(__file__).resolve().parents[1] / "results/tables/text_classifier.parquet"
    commands = [["tasks"],
                ["run", "--task", "text_classifier", "--table", str(table), "--optimizer",
                 "random,bohb", "--seeds", "0", "--budget", "2x", "--jobs", "1", "--out",
                 str(tmp_path / "run")]]
    outputs = []
    for command in commands:
        proc = subprocess.run([sys.executable, "-c", _WITHOUT_TORCH, *command],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        outputs.append(proc.stdout)
    assert "small_lm" in outputs[0] and "text_classifier" in outputs[0]
    assert (tmp_path / "run" / "bohb" / "seed-0").is_dir()


@pytest.mark.parametrize("optimizer, workers, budget, kill_at", [
    ("hyperband", 4, "15x", [3, 90, 250]),
    ("asha", 3, "10x", [40, 41]),
    ("tpe", 2, "400s", [30, 75]),
])
def test_a_killed_replay_resumes_to_the_uninterrupted_log(tmp_path, toy_path, optimizer,
                                                         workers, budget, kill_at):
    spec = _spec(toy_path, optimizer, budget=budget, workers=workers)
    (reference,) = run_study(spec, tmp_path / "ref")
    expected = _without_wall_time(reference.directory)
    out = tmp_path / "killed"
    with pytest.raises(Killed):
        run_study(spec, out, on_run=kill_after(kill_at[0]))
    for count in kill_at[1:]:  # killed again, later, during a resumed run
        with pytest.raises(Killed):
            run_study(spec, out, resume=True, on_run=kill_after(count))
    directory = out / optimizer / "seed-0"
    before = (directory / "log.jsonl").read_text()
    (outcome,) = run_study(spec, out, resume=True)
    assert (directory / "log.jsonl").read_text().startswith(before), "nothing rewritten"
    assert _without_wall_time(directory) == expected
    assert outcome.ledger.totals == reference.ledger.totals


def test_resume_refuses_a_changed_table(tmp_path):
    path = toy_table(tmp_path / "toy.parquet", seeds=1)
    spec = _spec(path, budget="3x")
    with pytest.raises(Killed):
        run_study(spec, tmp_path / "s", on_run=kill_after(20))
    toy_table(path, seeds=2)
    with pytest.raises(Exception, match="belongs to another table"):
        run_study(spec, tmp_path / "s", resume=True)


def test_a_replay_planned_with_a_relative_table_resumes_from_another_folder(
        tmp_path, toy_path, monkeypatch, capsys):
    """study.json names the table absolutely, so `--resume` works from any folder."""
    for name in ("planned_here", "resumed_here"):
        (tmp_path / name).mkdir()
    shutil.copy(toy_path, tmp_path / "planned_here" / "toy.parquet")
    monkeypatch.chdir(tmp_path / "planned_here")
    spec = _spec("toy.parquet", budget="3x")
    (reference,) = run_study(spec, tmp_path / "ref")
    with pytest.raises(Killed):
        run_study(spec, tmp_path / "s", on_run=kill_after(20))
    plan = json.loads((tmp_path / "s" / "study.json").read_text())
    assert plan["table"] == os.path.join(os.getcwd(), "toy.parquet")
    monkeypatch.chdir(tmp_path / "resumed_here")
    assert main(["run", "--resume", str(tmp_path / "s")]) == 0, capsys.readouterr().err
    assert _without_wall_time(tmp_path / "s" / "random" / "seed-0") == \
        _without_wall_time(reference.directory)


def test_a_new_study_may_go_into_an_existing_empty_folder(tmp_path, toy_path):
    (tmp_path / "empty").mkdir()
    (outcome,) = run_study(_spec(toy_path, budget="1x"), tmp_path / "empty")
    assert outcome.reason and (tmp_path / "empty" / "study.json").exists()


def test_include_default_replays_the_grid_configuration_nearest_the_default(tmp_path,
                                                                            toy_path):
    (outcome,) = run_study(_spec(toy_path, include_default=True, budget="2x"), tmp_path / "s")
    first = read_rows(outcome.directory)[0]
    nearest = {"batch_size": 32, "kind": "plain", "lr": 0.03, "width": 6}
    assert ToyTask().default_config() == {"batch_size": 32, "kind": "plain", "lr": 0.05,
                                          "width": 4}
    assert first["config"] == nearest == read_meta(outcome.directory)["default_config"]


@pytest.fixture
def _smac_temp_under_tmp_path(monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("TMPDIR", str(tmp_path))


@pytest.mark.usefixtures("_smac_temp_under_tmp_path")
@pytest.mark.parametrize("optimizer", ["grid", "random", "tpe", "hyperband", "bohb", "smac",
                                       "asha"])
def test_every_optimizer_replays_on_the_tables_grid(tmp_path, toy_path, toy, optimizer):
    (outcome,) = run_study(_spec(toy_path, optimizer, budget="3x", workers=2), tmp_path / "s")
    rows = read_rows(outcome.directory)
    assert outcome.reason == "budget" and rows[-1]["event"] == "finish"
    assert all(toy.config_index(r["config"]) >= 0 for r in rows if r["event"] == "start")
    assert outcome.state.incumbent is not None


def test_table_flag_alone_reads_the_tasks_table_and_resume_refuses_it(tmp_path, toy_path,
                                                                      capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results" / "tables").mkdir(parents=True)
    (tmp_path / "results" / "tables" / "toy.parquet").write_bytes(toy_path.read_bytes())
    assert main(["run", "--task", "toy", "--table", "--optimizer", "random", "--budget", "1x",
                 "--out", "s"]) == 0
    assert read_meta(tmp_path / "s" / "random" / "seed-0")["table"] == \
        str(tmp_path.resolve() / "results" / "tables" / "toy.parquet")  # absolute: resumes anywhere
    capsys.readouterr()
    assert main(["run", "--resume", "s", "--table", "other.parquet"]) == 2
    assert "drop --table" in capsys.readouterr().err


@pytest.mark.parametrize("optimizer, budget", [("random", "6x"), ("hyperband", "20x")])
def test_a_kill_next_to_a_recommend_row_neither_loses_nor_repeats_it(tmp_path, toy_path,
                                                                     optimizer, budget):
    spec = _spec(toy_path, optimizer, budget=budget, workers=2)
    (reference,) = run_study(spec, tmp_path / "ref")
    expected = _without_wall_time(reference.directory)
    events = [r["event"] for r in read_rows(reference.directory)]
    recommends = [i for i, e in enumerate(events) if e == "recommend"]
    assert len(recommends) >= 2 and all(events[i - 1] != "recommend" for i in recommends)
    at = recommends[1]
    for written in (at, at + 1):  # killed after the told row, or after the recommend row
        out = tmp_path / f"killed-{written}"
        with pytest.raises(Killed):
            run_study(spec, out, on_run=kill_after(written))
        run_study(spec, out, resume=True)
        assert _without_wall_time(out / optimizer / "seed-0") == expected
