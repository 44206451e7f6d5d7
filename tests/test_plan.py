"""A study's settings are defined once (`suite.plan`): every flag, API argument,
study.json key and meta.json key follows from that definition, and round-trips."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, fields

import pytest

from suite.errors import SuiteError
from suite.plan import (
    Placement,
    Plan,
    RunSettings,
    add_flags,
    from_flags,
    given_flags,
    json_types,
    settings_of,
)
from suite.records import RunMeta
from suite.spec import StudySpec

SETTINGS = [f for cls in (Plan, Placement) for f in fields(cls)]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_flags(parser)
    return parser


def test_every_setting_is_a_flag_a_study_json_key_and_a_meta_json_key():
    parser_dests = {a.dest for a in _parser()._actions}
    spec_keys = set(json_types(StudySpec))
    meta_keys = set(json_types(RunMeta))
    for f in SETTINGS:
        assert f.name in parser_dests, f.name
        assert f.name in spec_keys, f.name
        # a run records the study's settings, one optimizer and seed in place of the lists
        assert f.name in meta_keys or f.name in ("optimizers", "seeds"), f.name
    assert {f.name for f in fields(RunSettings)} <= meta_keys
    assert "budget_spelling" in meta_keys and "budget_spelling" not in parser_dests


def test_flags_give_the_plan_and_placement_the_api_builds():
    args = _parser().parse_args([
        "--task", "toy", "--optimizer", "random, tpe", "--budget", "3x", "--seeds", "0-2,5",
        "--include-default", "--promotion", "retrain", "--workers", "2", "--devices",
        "cpu,cpu", "--trial-timeout", "30", "--keep-checkpoints", "all",
        "--on-failure", "stop"])
    plan, where = from_flags(args)
    assert plan == Plan(task="toy", optimizers=("random", "tpe"), budget="3x",
                        seeds=(0, 1, 2, 5), include_default=True, promotion="retrain")
    assert where == Placement(workers=2, devices=("cpu", "cpu"), trial_timeout=30.0,
                              keep_checkpoints="all", on_failure="stop")
    assert given_flags(args) == ["--task", "--optimizer", "--budget", "--seeds",
                                 "--include-default", "--promotion", "--workers", "--devices",
                                 "--trial-timeout", "--keep-checkpoints", "--on-failure"]
    # what --resume may still be given: where the study runs, not what it runs
    assert given_flags(_parser().parse_args(["--address", "ray://h:1"])) == []
    with pytest.raises(SuiteError, match="--budget is required"):
        from_flags(_parser().parse_args(["--task", "toy", "--optimizer", "random"]))


def test_a_plan_round_trips_through_study_json_and_meta_json():
    spec = StudySpec(task="toy", optimizers=("random",), budget="3x", seeds=(1, 4),
                     workers=2, devices=("cpu", "cpu"), trial_timeout=5.0, fuse="auto",
                     fuse_max=3, keep_checkpoints="all", on_failure="stop")
    written = json.loads(json.dumps(asdict(spec)))
    assert StudySpec.from_json(written) == spec
    meta = RunMeta.from_json({**settings_of(spec), "optimizer": "random", "seed": 4})
    for f in fields(RunSettings):
        assert getattr(meta, f.name) == getattr(spec, f.name), f.name
    again = RunMeta.from_json(json.loads(json.dumps(meta.to_json())))
    assert again.to_json() == meta.to_json()


def test_old_files_without_the_newer_settings_still_read():
    # a study.json and a meta.json written before fusing, retention and on_failure existed
    old_plan = {"task": "toy", "optimizers": ["random"], "seeds": [0], "budget": "2x",
                "scale": None, "promotion": "resume", "workers": 1, "devices": ["auto"],
                "executor": "local", "table": None}
    spec = StudySpec.from_json(old_plan)
    assert (spec.fuse, spec.keep_checkpoints, spec.on_failure) == ("off", "needed", "continue")
    meta = RunMeta.from_json({"task": "toy", "optimizer": "random", "seed": 0})
    assert (meta.fuse, meta.keep_checkpoints, meta.budget_spelling) == ("off", "needed", None)
    assert meta.format == 1


@pytest.mark.parametrize("values, message", [
    ({"promotion": "lazy"}, "unknown promotion 'lazy'; choose resume or retrain"),
    ({"on_failure": "panic"}, "unknown on_failure 'panic'; choose continue or stop"),
    ({"executor": "cloud"}, "unknown executor 'cloud'"),
    ({"workers": 0}, "--workers must be in 1..1024"),
    ({"seeds": ()}, "at least one optimizer and one seed"),
    ({"gpus_per_trial": 1.5, "executor": "ray"}, "a fraction in 0..1 or a whole number"),
])
def test_each_setting_is_checked_by_its_own_definition(values, message):
    with pytest.raises(SuiteError, match=message):
        StudySpec(**{"task": "toy", "optimizers": ("random",), "budget": "2x", **values})


def test_suite_run_takes_the_plan_settings_and_refuses_an_unknown_one(tmp_path):
    import suite

    with pytest.raises(SuiteError, match="unknown setting 'promotions'"):
        suite.run("toy", "random", "2x", out=tmp_path / "s", promotions="retrain")
    assert not (tmp_path / "s").exists()
