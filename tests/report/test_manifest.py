"""The figure manifest: committed inputs hash as recorded, rebuilt data reproduces."""

import json
from dataclasses import replace
from pathlib import Path

import pytest
from synthetic import write_synthetic_study, write_synthetic_table

from suite.cli import main
from suite.commands.figures_cmd import convert_entry
from suite.errors import SuiteError
from suite.report import ReportOptions
from suite.report._manifest import (
    check_manifest,
    load_manifest,
    options_from_dict,
    options_to_dict,
    rebuild_manifest,
    sha256_path,
)

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "results" / "figures" / "manifest.json"


@pytest.mark.skipif(not COMMITTED.is_file(), reason="no committed manifest yet")
def test_committed_manifest_inputs_and_data_reproduce(monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)  # the manifest's paths are relative to the repository root
    manifest = load_manifest(COMMITTED)
    messages = []
    # entries made from a study (a replay, minutes to rerun) are checked by
    # `suite figures --check` once their runs exist; here only their committed inputs
    built = [e["name"] for e in manifest["figures"] if not e.get("study")]
    problems = check_manifest(manifest, built, scratch=tmp_path, on_message=messages.append)
    assert problems == []
    assert all(any(m.startswith(f"{n}: checked") for m in messages) for n in built)
    for entry in manifest["figures"]:
        for key, digest in entry.get("inputs", {}).items():
            assert sha256_path(ROOT / key) == digest, f"{entry['name']}: {key} changed"
    for entry in manifest["figures"]:
        for path in entry.get("figures", {}):
            out = entry["report"]["out"]
            assert (ROOT / out / path).is_file(), f"committed figure {out}/{path} missing"


def _setup(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    write_synthetic_table(Path("toy.parquet"))
    write_synthetic_study(Path("runs/live"), optimizers=("good", "bad"), seeds=[0, 1])
    manifest = {"about": "test", "renderer": {}, "figures": [
        {"name": "toy-table", "report": {"roots": [], "out": "figs/table", "options": {
            "table": "toy.parquet", "resamples": 100}}},
        {"name": "toy-live", "report": {"roots": ["runs/live"], "out": "figs/live", "options": {
            "table": "toy.parquet", "table_figures": False, "resamples": 100}}},
        {"name": "toy-replay", "study": "suite run --task toy --table toy.parquet --optimizer "
                                        "random --seeds 0-1 --budget 3x --out runs/replay",
         "report": {"roots": ["runs/replay"], "out": "figs/replay"}}]}
    path = Path("figs/manifest.json")
    path.parent.mkdir()
    path.write_text(json.dumps(manifest))
    return path


@pytest.mark.slow  # CI runs it: .ci/run, "slow tests CI runs"
def test_rebuild_records_hashes_and_check_catches_changes(tmp_path, monkeypatch):
    path = _setup(tmp_path, monkeypatch)
    messages = []
    manifest = rebuild_manifest(load_manifest(path), path, on_message=messages.append)
    table, live, replay = manifest["figures"]
    assert table["inputs"] == {"toy.parquet": sha256_path(Path("toy.parquet"))}
    assert set(live["inputs"]) == {"runs/live", "toy.parquet"}
    assert "data/toy-grid-importance.csv" in table["data"] and "report.md" in live["data"]
    assert "figures/toy-anytime.png" in live["figures"]
    assert "data" not in replay and any("toy-replay: skipped" in m for m in messages)
    assert manifest["renderer"]["matplotlib"]
    assert json.loads(path.read_text()) == manifest

    assert check_manifest(manifest, ["toy-table"], figures=True, scratch=tmp_path) == []
    assert check_manifest(manifest, ["toy-live"], scratch=tmp_path) == []
    log = Path("runs/live/good/seed-0/log.jsonl")
    log.write_text(log.read_text().replace('"val_loss": 0.', '"val_loss": 1.', 1))
    live["data"]["report.md"] = "0" * 64
    problems = check_manifest(manifest, ["toy-live"], scratch=tmp_path)
    assert "toy-live: input runs/live changed" in problems
    assert "toy-live: data report.md is not reproduced" in problems
    assert check_manifest(manifest, ["toy-replay"]) == ["toy-replay: never built (run "
                                                         "`suite figures`)"]


@pytest.mark.slow  # CI runs it: .ci/run, "slow tests CI runs"
def test_figures_cli_check_and_unknown_entry(tmp_path, monkeypatch, capsys):
    path = _setup(tmp_path, monkeypatch)
    assert main(["figures", "--manifest", str(path), "--only", "toy-table"]) == 0
    assert main(["figures", "--manifest", str(path), "--only", "toy-table", "--check"]) == 0
    assert "OK" in capsys.readouterr().out
    assert main(["figures", "--manifest", str(path), "--only", "nope"]) == 2
    assert "no manifest entry nope" in capsys.readouterr().err


def test_tree_hash_ignores_files_other_than_run_data(tmp_path):
    run = write_synthetic_study(tmp_path / "s", optimizers=("good",), seeds=[0])
    before = sha256_path(run)
    (run / "report").mkdir()
    (run / "report" / "report.md").write_text("x")
    assert sha256_path(run) == before


@pytest.mark.slow  # CI runs it: .ci/run, "slow tests CI runs"
def test_old_command_entries_convert_on_the_command_line_only(tmp_path, monkeypatch, capsys):
    path = _setup(tmp_path, monkeypatch)
    new = json.loads(path.read_text())
    old = json.loads(path.read_text())
    old["figures"][1] = {"name": "toy-live", "command": "suite report runs/live --table "
                         "toy.parquet --no-table-figures --out figs/live --bootstrap 100"}
    path.write_text(json.dumps(old))
    with pytest.raises(SuiteError, match="names a `command` .*rebuild it with `suite figures`"):
        load_manifest(path)
    assert convert_entry(old["figures"][1]) == new["figures"][1]
    assert load_manifest(path, convert=convert_entry) == new
    assert main(["figures", "--manifest", str(path), "--only", "toy-live"]) == 0
    assert json.loads(path.read_text())["figures"][1]["report"] == new["figures"][1]["report"]


def test_an_entry_with_unknown_options_is_refused(tmp_path, monkeypatch):
    path = _setup(tmp_path, monkeypatch)
    manifest = json.loads(path.read_text())
    manifest["figures"][0]["report"]["options"]["bootstrap"] = 100
    path.write_text(json.dumps(manifest))
    with pytest.raises(SuiteError, match="unknown report options bootstrap"):
        load_manifest(path)


def test_options_round_trip_through_the_manifest_dict():
    options = ReportOptions(table=Path("t.parquet"), fidelities=(1, 3), top=5, render=False)
    plain = options_to_dict(options)
    assert plain == {"table": "t.parquet", "top": 5, "fidelities": [1, 3]}
    assert options_from_dict(json.loads(json.dumps(plain))) == replace(options, render=True)


@pytest.mark.slow  # CI runs it: .ci/run, "slow tests CI runs"
def test_run_studies_runs_a_missing_study_then_builds_its_report(tmp_path, monkeypatch):
    path = _setup(tmp_path, monkeypatch)
    assert main(["figures", "--manifest", str(path), "--only", "toy-replay",
                 "--run-studies"]) == 0
    replay = json.loads(path.read_text())["figures"][2]
    assert (Path("runs/replay") / "study.json").is_file() and "report.md" in replay["data"]
    assert "runs/replay" not in replay["inputs"]  # a study's runs are rebuilt, not hashed
    assert check_manifest(load_manifest(path), ["toy-replay"], scratch=tmp_path) == []


def test_a_table_named_absolutely_is_reported_as_the_repository_names_it(tmp_path,
                                                                         monkeypatch):
    """A replay's plan names its table absolutely (for --resume from anywhere); reports and
    the manifest name it relative to the working folder, the same on every machine."""
    from suite.report._runs import local_path

    monkeypatch.chdir(tmp_path)
    assert local_path(tmp_path / "results" / "t.parquet") == "results/t.parquet"
    assert local_path("results/t.parquet") == "results/t.parquet"
    assert local_path("/elsewhere/t.parquet") == "/elsewhere/t.parquet"
    assert local_path(None) is None


def test_a_long_rebuild_keeps_what_another_wrote_meanwhile(tmp_path, monkeypatch):
    """`suite figures --only A` running for most of an hour (its study) must not write back
    the B it read at its start over the B another `suite figures` rebuilt meanwhile."""
    import suite.report._manifest as m

    path = tmp_path / "manifest.json"
    entries = [{"name": n, "report": {"roots": [], "out": str(tmp_path / n)}} for n in "AB"]
    path.write_text(json.dumps({"figures": entries}))
    manifest = load_manifest(path)  # what the long rebuild of A read at its start

    def built(entry, **_):
        out = tmp_path / entry["name"]
        out.mkdir(exist_ok=True)
        (out / "report.md").write_text(entry["name"])
        return m.ReportResult(out=out, data=[out / "report.md"])

    monkeypatch.setattr(m, "build_entry", built)
    rebuild_manifest(load_manifest(path), path, ["B"])  # another, meanwhile
    after = rebuild_manifest(manifest, path, ["A"])
    assert [("data" in e) for e in after["figures"]] == [True, True]
    assert json.loads(path.read_text()) == after
