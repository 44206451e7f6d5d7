"""The speed check's bookkeeping: per-machine baselines and the confirming re-measurement."""

from __future__ import annotations

import json

import pytest
import speed as S


def _baseline(**machines) -> dict:
    return {"machines": {k: {"ratios": v} for k, v in machines.items()}}


def test_a_recorded_machine_is_judged_by_its_own_ratio_elsewhere_by_the_largest():
    baseline = _baseline(fast={"grid": 1.0, "tpe": 2.0}, slow={"grid": 3.0})
    assert S.expected_ratio("grid", baseline, machine="fast") == 1.0
    assert S.expected_ratio("tpe", baseline, machine="slow") == 2.0, "fast's is all there is"
    assert S.expected_ratio("grid", baseline, machine="unrecorded") == 3.0
    assert S.expected_ratio("smac", baseline, machine="fast") is None


def test_regenerating_rewrites_this_machines_entry_and_keeps_the_others(tmp_path):
    path = tmp_path / "baseline.json"
    other = {"ratios": {"grid": 9.0}, "measured": "2026-01-01"}
    path.write_text(json.dumps({"machines": {"other": other,
                                             S.machine_key(): {"ratios": {"kept": 4.0}}}}))
    S.write_baseline([S.Measurement("grid", 2.0, 1.0, "ask")], path)
    data = S.read_baseline(path)
    assert data["machines"]["other"] == other
    assert data["machines"][S.machine_key()]["ratios"] == {"grid": 2.0, "kept": 4.0}


@pytest.fixture
def fixed_reference(monkeypatch):
    monkeypatch.setattr(S, "reference_seconds", lambda repeats=5: 1.0)


def test_a_burst_in_one_measurement_passes_on_the_second(fixed_reference):
    baseline = {"machines": {S.machine_key(): {"ratios": {"grid": 1.0}}}}
    calls = []
    kept, ok, line = S.judge(S.Measurement("grid", 5.0, 1.0, "ask"),
                             lambda: calls.append(1) or 1.5, baseline)
    assert ok and calls == [1] and kept.seconds == 1.5, line


def test_a_regression_fails_both_measurements(fixed_reference):
    baseline = {"machines": {S.machine_key(): {"ratios": {"grid": 1.0}}}}
    kept, ok, line = S.judge(S.Measurement("grid", 5.0, 1.0, "ask"), lambda: 4.0, baseline)
    assert not ok and kept.seconds == 4.0
    assert "REGRESSION" in line and "measured twice" in line


def test_a_pass_is_not_measured_again():
    baseline = {"machines": {S.machine_key(): {"ratios": {"grid": 1.0}}}}
    kept, ok, _ = S.judge(S.Measurement("grid", 2.0, 1.0, "ask"),
                          lambda: pytest.fail("measured again"), baseline)
    assert ok and kept.seconds == 2.0
