"""Exact resume: train 3 epochs, resume to 6 == train 6, bit for bit on the CPU."""

import pytest
import torch

from suite.registry import get_task

# Small members of each space so the test is fast; every knob that carries state
# across epochs (schedules, plateau counters, momentum, dropout RNG) is switched on.
SMALL = {
    "small_lm": [
        {"width": 128, "depth": 2, "batch_size": 32, "schedule": "cyclic", "clr_half_cycle": 1},
        {"width": 128, "depth": 2, "batch_size": 32, "optimizer": "sgd", "lr": 0.05},
    ],
    "text_classifier": [{"lr_patience": 1, "lr_factor": 0.5}],
}
CASES = [(task, cfg) for task, cfgs in SMALL.items() for cfg in cfgs]


def _train(task, config, epochs, tmp_path, name, resume_from=None):
    ckpt = tmp_path / name
    results = list(task.train(config, epochs=epochs, seed=7, resume_from=resume_from,
                              save_to=ckpt, device="cpu"))
    return results, torch.load(ckpt, weights_only=True)


@pytest.mark.parametrize("task_name, overrides", CASES)
def test_resume_is_bit_identical(task_name, overrides, tmp_path):
    task = get_task(task_name, scale="tiny")
    config = {**task.default_config(), **overrides}
    if config.get("optimizer") == "sgd":
        config["momentum"] = 0.9
    if config.get("schedule") == "cyclic":
        config.setdefault("clr_ratio", 4.0)

    straight, full_state = _train(task, config, 6, tmp_path, "straight.pt")
    first, _ = _train(task, config, 3, tmp_path, "part.pt")
    rest, resumed_state = _train(task, config, 6, tmp_path, "resumed.pt",
                                 resume_from=tmp_path / "part.pt")

    assert [r.epoch for r in straight] == [1, 2, 3, 4, 5, 6]
    assert [r.epoch for r in first] == [1, 2, 3] and [r.epoch for r in rest] == [4, 5, 6]
    assert [r.metrics for r in first + rest] == [r.metrics for r in straight]
    for name, tensor in full_state["model"].items():
        assert torch.equal(tensor, resumed_state["model"][name]), name
