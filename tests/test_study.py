"""Studies end to end on the toy task: the resume/retrain saving, crash and resume."""

import json
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from suite.log import read_rows
from suite.optimizers import hpbandster_iteration
from suite.study import StudySpec, parse_seeds, run_study


def _hyperband_iteration_cost(min_epochs=1, max_epochs=27, eta=3):
    """Epochs one full Hyperband iteration trains, derived from the brackets (n_i, r_i)
    that hpbandster's own `HyperBand.get_next_iteration` builds."""
    from hpbandster.optimizers.hyperband import HyperBand

    retrain = resume = 0
    sampler = SimpleNamespace(get_config=None)
    for index in range(4):  # log_3(27) + 1 brackets make one iteration
        bracket = hpbandster_iteration(HyperBand, index, min_budget=min_epochs,
                                       max_budget=max_epochs, eta=eta, config_generator=sampler)
        previous = 0
        for n, budget in zip(bracket.num_configs, bracket.budgets, strict=True):
            retrain += n * budget
            resume += n * (budget - previous)  # a promotion pays only its new epochs
            previous = budget
    return round(retrain), round(resume)


def test_resume_policy_saves_the_predicted_share_of_a_hyperband_iteration(tmp_path):
    retrain, resume = _hyperband_iteration_cost()
    # hpbandster's brackets (n0 = floor(4 / (s+1)) * 3**s): 27@1, 9@3, 3@9, 1@27; 9@3, 3@9,
    # 1@27; 6@9, 2@27; 4@27. Retraining pays 108 + 81 + 108 + 108 epochs; resuming pays
    # only the new epochs of each promotion: 81 + 63 + 90 + 108, i.e. 63/405 = 15.6% less.
    assert (retrain, resume) == (405, 342)
    assert 1 - resume / retrain == pytest.approx(0.156, abs=1e-3)
    spent = {}
    for policy, epochs in (("retrain", retrain), ("resume", resume)):
        spec = StudySpec(task="toy", optimizers=("hyperband",), seeds=(0,),
                         budget=f"{epochs}e", promotion=policy, executor="inprocess")
        (outcome,) = run_study(spec, tmp_path / policy)
        rows = read_rows(outcome.directory)
        spent[policy] = outcome.ledger.totals.epochs
        assert outcome.reason == "budget"
        assert not [r for r in rows if r.get("status") == "cut"], "the iteration fits exactly"
        assert len([r for r in rows if r["event"] == "start"]) == 40 + 13 + 8 + 4
    assert spent == {"retrain": 405, "resume": 342}


def test_parse_seeds():
    assert parse_seeds("3") == (3,) and parse_seeds("0-4") == (0, 1, 2, 3, 4)
    assert parse_seeds("0,2,5-6,2") == (0, 2, 5, 6)


def _cli(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "suite.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def _comparable(rows):
    return [{k: v for k, v in r.items() if k not in ("wall_time", "worker")} for r in rows]


@pytest.mark.parametrize("optimizer", [pytest.param("hyperband", marks=pytest.mark.slow), "tpe"])
def test_killed_run_resumes_without_losing_or_repeating_an_epoch(tmp_path, optimizer):
    args = ["run", "--task", "toy", "--optimizer", optimizer, "--budget", "10x",
            "--executor", "inprocess"]
    reference = _cli(*args, "--out", str(tmp_path / "ref"))
    assert reference.wait(timeout=300) == 0, reference.stderr.read()
    ref_rows = read_rows(tmp_path / "ref" / optimizer / "seed-0")

    out = tmp_path / "killed"
    victim = _cli(*args, "--out", str(out), start_new_session=True)
    log = out / optimizer / "seed-0" / "log.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not log.exists() or log.stat().st_size < 20_000):
        time.sleep(0.005)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    killed_rows = read_rows(out / optimizer / "seed-0")
    assert killed_rows and killed_rows[-1]["event"] != "finish", "killed before the end"

    resumed = _cli("run", "--resume", str(out))
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    rows = read_rows(out / optimizer / "seed-0")
    assert rows[:len(killed_rows)] == killed_rows, "nothing logged is lost or rewritten"
    assert _comparable(rows) == _comparable(ref_rows)
    again = _cli("run", "--resume", str(out))
    assert again.wait(timeout=300) == 0 and read_rows(out / optimizer / "seed-0") == rows


def test_cli_run_summary_names_incumbent_and_budget_units(tmp_path):
    # in process: the summary is the same whatever executor trained the trials
    proc = _cli("run", "--task", "toy", "--optimizer", "random,bohb", "--budget", "3x",
                "--seeds", "0-1", "--out", str(tmp_path / "s"), "--include-default",
                "--executor", "inprocess")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    rows = [line.split() for line in out.splitlines()  # not the progress bars' lines
            if line.split()[:1] in (["random"], ["bohb"]) and line.split()[1].isdigit()]
    per_optimizer = [r for r in rows if len(r) == 7]  # optimizer runs median IQR ... used
    table = [r for r in rows if len(r) == 8]  # optimizer seed loss epochs used ... end
    assert sorted(r[0] for r in per_optimizer) == ["bohb", "random"], out
    assert all(r[1] == "2" and r[6] == "6.00x" for r in per_optimizer), out
    assert [(r[0], r[1]) for r in table] == [("random", "0"), ("random", "1"), ("bohb", "0"),
                                             ("bohb", "1")], out  # a row per run
    assert all(r[4] == "3.00x" and r[7] == "budget" for r in table), out
    assert "full-fidelity equivalents" in out
    assert f"next: suite report {tmp_path / 's'}" in out.replace("\n", "")
    plan = json.loads((tmp_path / "s" / "study.json").read_text())
    assert plan["optimizers"] == ["random", "bohb"] and plan["seeds"] == [0, 1]
    first = read_rows(tmp_path / "s" / "random" / "seed-0")[0]
    from suite.testing import ToyTask

    assert first["config"] == ToyTask().default_config(), "--include-default asks it first"


def test_a_budget_in_carps_budgets_is_resolved_at_plan_time_and_recorded(tmp_path):
    from suite.cli import main
    from suite.log import read_run_meta

    out = tmp_path / "s"
    # the toy task has d = 5 (one conditional): ⌈20 + 40·√5⌉ = 110 x; 0.01 of it = 1.1x
    assert main(["run", "--task", "toy", "--optimizer", "random", "--budget", "0.01carps",
                 "--executor", "inprocess", "--out", str(out)]) == 0
    plan = json.loads((out / "study.json").read_text())
    assert (plan["budget"], plan["budget_spelling"]) == ("1.1x", "0.01carps")
    meta = read_run_meta(out / "random" / "seed-0")
    assert (meta.budget, meta.budget_spelling, meta.space_dims) == ("1.1x", "0.01carps", 5)
    rows = read_rows(out / "random" / "seed-0")
    spent = rows[-1]["ledger"]["full"]
    assert 1.1 <= spent < 1.1 + 1 / meta.max_epochs, "spent the resolved budget, not 0.01x"
    assert main(["run", "--resume", str(out)]) == 0  # the resolved plan resumes as it is
    assert json.loads((out / "study.json").read_text()) == plan
