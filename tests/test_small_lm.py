import math

import pytest
import torch

from suite.errors import CheckpointError, ConfigError, SuiteError
from tasks.small_lm import SmallLM
from tasks.small_lm.training import LMProgress, load_corpus, lr_at

SMALL = {"width": 128, "depth": 2, "batch_size": 32}


@pytest.fixture(scope="module")
def task():
    return SmallLM(scale="tiny")


def _cfg(task, **overrides):
    return {**task.default_config(), **SMALL, **overrides}


def test_corpus_split_is_90_5_5_by_position():
    full = load_corpus("full")
    total = len(full.train) + len(full.val) + len(full.test)
    assert total == 1_115_394 and len(full.vocab) == 65
    assert len(full.train) == int(0.9 * total) and len(full.val) == int(0.05 * total)


def test_space_conditions_and_default(task):
    space = task.config_space(seed=0)
    default = task.default_config()
    assert default["schedule"] == "cosine" and "clr_ratio" not in default
    assert "momentum" not in default
    for _ in range(30):
        cfg = dict(space.sample_configuration())
        assert ("clr_ratio" in cfg) == (cfg["schedule"] == "cyclic")
        assert ("momentum" in cfg) == (cfg["optimizer"] == "sgd")


def test_cosine_horizon_is_max_epochs_not_epochs():
    cfg = {"lr": 1.0, "warmup_frac": 0.0, "schedule": "cosine"}
    assert lr_at(0, cfg, steps_per_epoch=10, max_epochs=27) == pytest.approx(1.0)
    assert lr_at(135, cfg, steps_per_epoch=10, max_epochs=27) == pytest.approx(0.55)
    assert lr_at(270, cfg, steps_per_epoch=10, max_epochs=27) == pytest.approx(0.1)


def test_warmup_is_linear():
    cfg = {"lr": 1.0, "warmup_frac": 0.1, "schedule": "constant"}
    lrs = [lr_at(s, cfg, steps_per_epoch=10, max_epochs=10) for s in range(12)]
    assert lrs[:10] == pytest.approx([(s + 1) / 10 for s in range(10)])
    assert lrs[10:] == [1.0, 1.0]


def test_cyclic_is_triangular_between_base_and_peak():
    cfg = {"lr": 1.0, "warmup_frac": 0.0, "schedule": "cyclic", "clr_ratio": 4.0,
           "clr_half_cycle": 2}
    lr = [lr_at(s, cfg, steps_per_epoch=5, max_epochs=27) for s in range(41)]
    assert lr[0] == pytest.approx(0.25) and lr[10] == pytest.approx(1.0)
    assert lr[20] == pytest.approx(0.25) and lr[30] == pytest.approx(1.0)
    assert lr[5] == pytest.approx(0.625) and min(lr) >= 0.25 - 1e-12


def test_training_learns_and_evaluates(task, tmp_path):
    results = list(task.train(_cfg(task), epochs=2, seed=0, save_to=tmp_path / "m.pt",
                              device="cpu"))
    assert [r.epoch for r in results] == [1, 2]
    assert results[-1].metrics["val_loss"] < math.log(65), "better than uniform over 65 chars"
    assert results[-1].metrics["val_bpc"] == pytest.approx(results[-1].metrics["val_loss"]
                                                           / math.log(2))
    assert all(r.device_seconds > 0 and r.checkpoint == tmp_path / "m.pt" for r in results)
    test = task.evaluate(tmp_path / "m.pt", device="cpu")
    assert set(test) == {"test_loss", "test_bpc"} and test["test_loss"] < math.log(65)


def test_resume_rejects_another_config_and_exhausted_checkpoint(task, tmp_path):
    list(task.train(_cfg(task), epochs=1, seed=0, save_to=tmp_path / "m.pt", device="cpu"))
    with pytest.raises(CheckpointError, match="another configuration"):
        next(task.train(_cfg(task, lr=0.01), epochs=2, seed=0, resume_from=tmp_path / "m.pt"))
    with pytest.raises(SuiteError, match="already holds 1 epochs"):
        next(task.train(_cfg(task), epochs=1, seed=0, resume_from=tmp_path / "m.pt"))


def test_truncated_checkpoint_is_one_clear_error(task, tmp_path):
    path = tmp_path / "m.pt"
    list(task.train(_cfg(task), epochs=1, seed=0, save_to=path, device="cpu"))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="unreadable"):
        next(task.train(_cfg(task), epochs=2, seed=0, resume_from=path))


@pytest.mark.parametrize("epochs", [0, -1, 28])
def test_epochs_outside_fidelity(task, epochs):
    with pytest.raises(SuiteError, match="outside 1..27"):
        next(task.train(_cfg(task), epochs=epochs, seed=0))


def test_inactive_value_rejected(task):
    with pytest.raises(ConfigError, match="inactive"):
        next(task.train(_cfg(task, momentum=0.9), epochs=1, seed=0))


@pytest.mark.parametrize("scale, batch, steps", [("full", 64, 35), ("full", 128, 17),
                                                 ("tiny", 64, 3), ("tiny", 128, 1)])
def test_an_epoch_is_a_fixed_number_of_characters_at_seeded_random_offsets(scale, batch, steps):
    task = SmallLM(scale)
    n_chars = len(load_corpus(scale).train)
    cfg = {**task.default_config(), "batch_size": batch}
    assert task.steps_per_epoch(batch) == steps, "the scale's epoch_chars in whole batches"
    draws = [LMProgress(task, cfg, seed=7).window_starts(n_chars) for _ in range(2)]
    assert torch.equal(draws[0], draws[1]), "a seed's data order is the same in every process"
    starts = draws[0]
    assert len(starts) == steps * batch
    assert starts.min() >= 0 and starts.max() + task.context <= n_chars - 1, "windows fit"
    other = LMProgress(task, cfg, seed=8).window_starts(n_chars)
    assert not torch.equal(starts, other)
