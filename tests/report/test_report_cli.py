"""`suite report`: a report folder from synthetic runs and tables; bad input is one line."""

import re

import pytest
from synthetic import write_synthetic_study, write_synthetic_table

from suite.cli import main
from suite.report import _writer


def _report(*args, pdf: bool = False) -> int:
    # PDFs only where a test reads them: their embedded fonts cost about half a report
    return main(["report", *map(str, args), "--bootstrap", "100",
                 *(() if pdf else ("--no-pdf",))])


def test_report_from_replayed_runs_with_their_table(tmp_path, capsys, monkeypatch):
    table = write_synthetic_table(tmp_path / "toy.parquet")
    study = write_synthetic_study(tmp_path / "study", table=str(table), seeds=range(5))
    out = tmp_path / "report"
    titles = []  # every figure gets a title of its own: task, what, where from
    monkeypatch.setattr(_writer, "figure_title", lambda fig, text: titles.append(text))
    assert _report(study, "--out", out, pdf=True) == 0
    text = (out / "report.md").read_text()
    for expected in ("N = 5 seeds", "P(A < B)", "not independent data sets",
                     "Nemenyi critical difference",
                     "Wilcoxon", "no test metric", "normalized regret", "measured order:",
                     "Spearman", "interquartile mean"):
        assert expected in text, expected
    figures = {p.name for p in (out / "figures").iterdir()}
    for name in ("anytime", "regret", "ranks", "final", "cd", "iqm", "profile", "fanova",
                 "ped-anova",
                 "grid-importance", "literature", "fidelity", "top-curves", "run-curves",
                 "parallel"):
        assert {f"toy-{name}.png", f"toy-{name}.pdf"} <= figures, name
    assert not any("panels" in name for name in figures), "3 optimizers: one overlay each"
    assert (out / "report.html").read_text().count("<img") == len(figures) // 2
    assert "report.md" in capsys.readouterr().out
    assert len(titles) == len(figures) // 2 and all(t.startswith("toy · ") for t in titles)
    assert sum("replay, 5 seeds" in t for t in titles) >= 6  # anytime, ranks, final, cd, ...
    assert "toy · recommended config's regret (replay, 5 seeds)" in titles
    assert max(map(len, titles)) <= 80, "short titles: the details are in the captions"
    assert sum("recorded table" in t for t in titles) >= 3  # fidelity, top curves, fANOVA


@pytest.mark.slow  # CI runs it: .ci/run, "slow tests CI runs"
def test_report_data_is_byte_identical_across_builds(tmp_path):
    study = write_synthetic_study(tmp_path / "study", optimizers=("good", "bad"), seeds=[0, 1])
    for out in ("a", "b"):
        assert _report(study, "--out", tmp_path / out, "--no-table-figures", pdf=True) == 0
    for path in sorted((tmp_path / "a").rglob("*")):
        if path.is_file():
            twin = tmp_path / "b" / path.relative_to(tmp_path / "a")
            assert path.read_bytes() == twin.read_bytes(), path.name


def test_live_runs_one_seed_say_bands_need_seeds_and_test_needs_the_flag(tmp_path):
    study = write_synthetic_study(tmp_path / "live", seeds=[0])
    assert _report(study) == 0
    text = (study / "report" / "report.md").read_text()
    assert "a band needs at least 2 seeds" in text and "Friedman test skipped" in text
    assert "pass `--test`" in text


def test_test_flag_without_checkpoints_skips_cleanly(tmp_path):
    study = write_synthetic_study(tmp_path / "live", optimizers=("good",), seeds=[0])
    assert _report(study, "--test", "--no-table-figures") == 0
    text = (study / "report" / "report.md").read_text()
    assert "no incumbent checkpoint for good seed 0" in text


def test_test_flag_evaluates_the_incumbent_checkpoint(tmp_path):
    """The toy task evaluates its JSON checkpoints without torch."""
    import json

    from suite.log import RunLog

    run = tmp_path / "live" / "random" / "seed-0"
    config = {"batch_size": 32, "kind": "plain", "lr": 0.05, "width": 4}
    meta = {"task": "toy", "optimizer": "random", "seed": 0, "budget": "1x",
            "metric": "val_loss", "minimize": True, "max_epochs": 3, "simulated": False}
    with RunLog.create(run, meta) as log:
        log.append({"event": "start", "trial_id": 0, "config_id": 0, "config": config,
                    "target_epochs": 3, "resumed_from": None, "start_epoch": 0,
                    "asked_after": 0, "seed": 0, "resumed_checkpoint": None, "wall_time": 0.0})
        for epoch in (1, 2, 3):
            log.append({"event": "epoch", "trial_id": 0, "config_id": 0, "config": config,
                        "target_epochs": 3, "resumed_from": None,
                        "epoch": epoch, "loss": 1.0 / epoch, "metrics": {"val_loss": 1 / epoch},
                        "device_seconds": 1, "status": "ok" if epoch == 3 else "running",
                        "worker": 0, "wall_time": float(epoch),
                        "ledger": {"epochs": epoch, "full": epoch / 3,
                                   "device_seconds": epoch}})
        log.append({"event": "finish", "reason": "budget", "wall_time": 3.0,
                    "ledger": {"epochs": 3, "full": 1.0, "device_seconds": 3}})
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "0.e3.pt").write_text(json.dumps(
        {"task": "toy", "config": config, "epoch": 3}))
    assert _report(tmp_path / "live", "--test", "--device", "cpu") == 0
    out = tmp_path / "live" / "report"
    text = (out / "report.md").read_text()
    assert "its test metrics" in text and (out / "figures" / "toy-test.png").is_file()
    assert "test_loss" in (out / "data" / "toy-test.csv").read_text()


def test_table_only_report_and_incomplete_table_note(tmp_path, capsys):
    complete = write_synthetic_table(tmp_path / "t.parquet")
    assert _report("--table", complete, "--out", tmp_path / "t", "--fidelities", "1,3,9") == 0
    assert "At 1 epoch the main effects lead with lr" in (tmp_path / "t" / "report.md"
                                                           ).read_text()
    partial = write_synthetic_table(tmp_path / "p.parquet", complete=False)
    assert _report("--table", partial, "--out", tmp_path / "p") == 0
    assert "is incomplete (12/24 curves recorded)" in (tmp_path / "p" / "report.md").read_text()
    assert not (tmp_path / "p" / "figures").exists()
    assert "note: table" in capsys.readouterr().out


@pytest.mark.parametrize(("args", "message"), [
    ([], "nothing to report on"),
    (["missing-dir"], "missing-dir does not exist"),
    (["{tmp}", "{tmp}"], "give --out"),
    (["{tmp}", "--out", "{tmp}/r", "--fidelities", "3,1"], "--fidelities must be increasing"),
    (["{tmp}", "--out", "{tmp}/r"], "no run logs"),
    (["{tmp}", "--out", "{tmp}/r", "--pairs-at", "30q"], "malformed budget '30q'"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    args = [a.format(tmp=tmp_path) for a in args]
    assert main(["report", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_pairs_at_chosen_points_in_the_runs_unit_only(tmp_path, capsys):
    study = write_synthetic_study(tmp_path / "s", optimizers=("good", "bad"), seeds=[0, 1])
    assert _report(study, "--no-table-figures", "--pairs-at", "1x,2x,3x") == 0
    text = (study / "report" / "report.md").read_text()
    assert "### Pairs at 1x, 2x, 3x" in text
    figures = study / "report" / "figures"  # --no-pdf: the PNGs the report links, only
    assert list(figures.glob("*.png")) and not list(figures.glob("*.pdf"))
    assert main(["report", str(study), "--no-table-figures", "--pairs-at", "9e"]) == 2
    err = capsys.readouterr().err
    assert "give the points in that unit" in err and err.count("\n") == 1


def test_two_runs_of_one_optimizer_and_seed_are_refused(tmp_path, capsys):
    write_synthetic_study(tmp_path / "a", optimizers=("good",), seeds=[0])
    write_synthetic_study(tmp_path / "b", optimizers=("good",), seeds=[0])
    assert main(["report", str(tmp_path / "a"), str(tmp_path / "b"), "--out",
                 str(tmp_path / "r")]) == 2
    assert "report them separately" in capsys.readouterr().err


def test_a_table_changed_since_the_replay_is_noted(tmp_path):
    import json

    table = write_synthetic_table(tmp_path / "toy.parquet")
    study = write_synthetic_study(tmp_path / "study", optimizers=("good",), seeds=[0],
                                  table=str(table))
    meta = study / "good" / "seed-0" / "meta.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "table_sha256": "0" * 64}))
    assert _report(study, "--no-table-figures") == 0
    assert "has changed since these runs replayed it" in (study / "report" / "report.md"
                                                          ).read_text()


@pytest.mark.parametrize(("roots", "table", "table_figures", "sections"), [
    ([], True, True, ["reading", "grid fANOVA", "fidelity correlation"]),
    (["study"], True, False, ["reading", "anytime performance", "ranks and statistics",
                              "pairs", "test set", "importance from the trials",
                              "learning curves and trials"]),
])
def test_progress_announces_each_step_once_and_counts_them(tmp_path, roots, table,
                                                            table_figures, sections):
    from suite.report import ReportOptions, build_report

    path = write_synthetic_table(tmp_path / "toy.parquet")
    write_synthetic_study(tmp_path / "study", optimizers=("good",), seeds=[0])
    calls = []
    build_report([tmp_path / r for r in roots], tmp_path / "out", ReportOptions(
        table=path if table else None, table_figures=table_figures, resamples=100,
        render=False), on_step=lambda *call: calls.append(call))
    total = len(sections) + 1
    assert calls[0][:2] == (0, 0) and calls[-1] == (total, total, "done")
    assert calls[1:-1] == [(i, total, what) for i, what in enumerate(
        [*(f"toy: {s}" for s in sections), "writing report.md"])]


def test_a_task_named_by_reference_gets_file_names_safe_on_any_file_system(tmp_path):
    import json

    from suite.report import ReportOptions, build_report
    from suite.report._writer import file_stem

    study = write_synthetic_study(tmp_path / "study", optimizers=("good",), seeds=[0])
    meta = study / "good" / "seed-0" / "meta.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "task": "my_mod:MyTask"}))
    build_report([study], tmp_path / "r", ReportOptions(resamples=100, render=False))
    names = [p.name for p in (tmp_path / "r" / "data").iterdir()]
    assert names and all(n.startswith("my_mod-MyTask-") and ":" not in n for n in names)
    links = re.findall(r"\]\(figures/([^)]+)\)", (tmp_path / "r" / "report.md").read_text())
    assert links and not [link for link in links if ":" in link]
    # two names that differ only in an unsafe character stay two files
    assert file_stem("a:b") != file_stem("a-b") == "a-b" and file_stem("a?b") != file_stem("a:b")
