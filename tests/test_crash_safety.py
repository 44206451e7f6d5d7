"""SIGKILL at random moments, `--resume` each time: nothing lost, duplicated or changed.

The full harness (20 kills on the classifier table) runs as its own CI step:
`python tests/crash_harness.py`. Here a few kills on the toy table keep it in the default
run, and the harness's own comparison is shown to catch what it is there to catch.
"""

import json

import crash_harness
import pytest

from suite.log import LOG_NAME
from suite.testing import toy_table


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    work = tmp_path_factory.mktemp("crash")
    table = toy_table(work / "toy.parquet", seeds=1)
    args = ["--task", "toy", "--table", str(table), "--optimizers", "random,hyperband",
            "--seeds", "0-3", "--budget", "20x", "--workers", "3", "--kills", "3",
            "--window", "0.3", "--work", str(work)]
    return work, crash_harness.main(args)


@pytest.mark.slow  # CI runs it: .ci/run, "slow tests CI runs"
def test_a_study_killed_three_times_ends_with_the_uninterrupted_rows(study):
    work, code = study
    assert code == 0  # 3 kills landed mid-run, and every run equals the reference
    assert len(list((work / "crashed").rglob(LOG_NAME))) == 8


@pytest.mark.slow  # CI runs it: .ci/run, "slow tests CI runs"
def test_the_comparison_catches_a_lost_and_a_duplicated_epoch(study):
    work, _ = study
    run = work / "crashed" / "hyperband" / "seed-0" / LOG_NAME
    lines = run.read_text().splitlines(keepends=True)
    epoch = next(i for i, line in enumerate(lines) if json.loads(line)["event"] == "epoch")
    run.write_text("".join(lines[:epoch] + lines[epoch + 1:]))
    problems = crash_harness.problems_of(work / "reference", work / "crashed")
    assert any("epochs lost" in p for p in problems)
    assert any("the suite refuses its log" in p for p in problems), "its reader, too"
    run.write_text("".join(lines[:epoch + 1] + lines[epoch:]))
    problems = crash_harness.problems_of(work / "reference", work / "crashed")
    assert any("duplicated" in p for p in problems)
    assert any("the suite refuses its log" in p for p in problems)
    run.write_text("".join(lines))
    assert crash_harness.problems_of(work / "reference", work / "crashed") == []
