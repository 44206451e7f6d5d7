"""`suite run`'s closing summary: per optimizer in the task's own metric and direction, the
best configuration once, per-run rows for a small study, and the failed trials made visible
(a task that raises on some configurations and stops early, without an error, on others)."""

from __future__ import annotations

import contextlib
import io
import json
import re
import sys
from pathlib import Path

import pytest

from suite.cli import main

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def flaky_study(tmp_path_factory):
    """The study, run once for the module: (its folder, what `suite run` printed)."""
    out = tmp_path_factory.mktemp("flaky") / "s"
    printed = io.StringIO()
    sys.path.insert(0, str(FIXTURES))
    try:
        with contextlib.redirect_stdout(printed):  # not a terminal: rich's 80 columns
            code = main(["run", "--task", "my_tasks:Flaky", "--optimizer", "random,hyperband",
                         "--budget", "3x", "--seeds", "0-1", "--executor", "inprocess",
                         "--out", str(out)])
    finally:
        sys.path.remove(str(FIXTURES))
    assert code == 0
    return out, printed.getvalue()


def _ends(out: Path) -> list[dict]:
    return [r for path in sorted(out.glob("*/seed-*/log.jsonl"))
            for r in map(json.loads, path.read_text().splitlines()) if r["event"] == "end"]


def test_the_summary_names_the_metric_and_counts_failures_per_optimizer(flaky_study):
    out, printed = flaky_study
    lines = printed.splitlines()
    summary = lines[next(i for i, line in enumerate(lines) if "the incumbent of each" in line):]
    assert max(len(line) for line in summary if not line.startswith("next:")) <= 80, \
        printed  # the header's and the next command's paths are never wrapped
    assert "val_acc -" not in printed, "the progress bars name the task's metric too"
    assert "val_acc (maximized): the incumbent of each run" in printed
    text = " ".join(printed.split())
    assert "loss" not in text.replace("the loss diverged", ""), "the task's words only"
    ends = _ends(out)
    failed = {}
    for path in out.glob("*/seed-*/log.jsonl"):
        rows = [json.loads(r) for r in path.read_text().splitlines()]
        name = path.parent.parent.name
        failed[name] = failed.get(name, 0) + sum(r["event"] == "end" for r in rows)
    per_optimizer = {r[0]: r for r in map(str.split, lines)
                     if r[:1] in (["random"], ["hyperband"]) and len(r) == 7}
    assert {name: int(r[5]) for name, r in per_optimizer.items()} == failed
    assert all(r[1] == "2" and r[6] == "6.00x" for r in per_optimizer.values())
    diverged = sum(e["error"] == "ValueError: the loss diverged" for e in ends)
    tracebacks = [p.read_text() for p in out.glob("*/seed-*/errors/trial-*.txt")]
    assert len(tracebacks) == diverged and all(  # each raised trial's, in its run folder
        t.startswith("Traceback") and t.rstrip().endswith("the loss diverged")
        for t in tracebacks)
    stopped = [e for e in ends if e["error"].startswith("stopped at epoch")]
    assert diverged > len(stopped) > 0, ends  # both kinds happened in this study
    assert all(re.fullmatch(r"stopped at epoch 1 of (3|9) without an error", e["error"])
               and e["epoch"] == 1 for e in stopped)  # width >= 12 stops after epoch 1
    assert (f"failed trials: {len(ends)} of " in text
            and f"the most frequent error ({diverged} trials): ValueError: the loss diverged"
            in text), printed


def test_a_small_study_lists_its_runs_and_the_best_configuration_once(flaky_study):
    _, printed = flaky_study
    runs = [r for r in map(str.split, printed.splitlines())
            if r[:1] in (["random"], ["hyperband"]) and len(r) == 8]
    assert [(r[0], r[1]) for r in runs] == [("random", "0"), ("random", "1"),
                                            ("hyperband", "0"), ("hyperband", "1")]
    values = [float(r[2]) for r in runs]
    assert all(0 < v < 1 for v in values), "val_acc as the task reported it, not negated"
    best = [line for line in printed.splitlines() if line.startswith("best: ")]
    assert len(best) == 1 and f"val_acc {max(values):.4g} after 9 epochs" in best[0]


def test_the_report_has_a_failures_section_counting_what_the_logs_hold(flaky_study):
    from suite.report import ReportOptions, build_report

    out, _ = flaky_study
    build_report([out], out / "report", ReportOptions(resamples=100, pdf=False))
    text = (out / "report" / "report.md").read_text()
    section = text[text.index("### Failed trials"):].split("\n## ")[0]
    ends = _ends(out)
    assert section.startswith(f"### Failed trials\n\n{len(ends)} trials failed")
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in section.splitlines() if line.startswith("| ") and "---" not in line}
    del rows["optimizer"]
    by_optimizer = {}
    for path in out.glob("*/seed-*/log.jsonl"):
        name = path.parent.parent.name
        by_optimizer[name] = by_optimizer.get(name, 0) + sum(
            json.loads(r)["event"] == "end" for r in path.read_text().splitlines())
    assert {name: int(cells[1]) for name, cells in rows.items()} == {
        name: n for name, n in by_optimizer.items() if n}
    assert "ValueError: the loss diverged" in section
