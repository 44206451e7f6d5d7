"""The text classifier task: data checks, split, space, training, exact resume, evaluation.

Data come from $SUITE_DATA_DIR, which conftest.py points at ../shared/data unless set.
"""

import pytest
import torch
from sklearn.metrics import f1_score

from suite.config import validate_config
from suite.errors import CheckpointError, ConfigError, DataError
from suite.types import Task
from tasks.data import fetch
from tasks.text_classifier import TextClassifier, config_space
from tasks.text_classifier.features import DATASET, TAGS, read_examples, split_examples
from tasks.text_classifier.training import macro_f1, tfidf_baseline

METRICS = {"val_loss", "val_accuracy", "val_macro_f1", "train_loss", "lr"}
# Every knob that carries state across epochs is exercised: the plateau counter
# (patience 1), dropout's RNG, AdamW moments, the data order.
CONFIG = {"lr_patience": 1, "lr_factor": 0.5, "dropout_p": 0.5, "batch_size": 16}


@pytest.fixture
def task():
    return TextClassifier(scale="tiny")


def _train(task, epochs, tmp_path, name, resume_from=None, config=CONFIG):
    ckpt = tmp_path / name
    results = list(task.train(config, epochs=epochs, seed=3, resume_from=resume_from,
                              save_to=ckpt, device="cpu"))
    return results, torch.load(ckpt, weights_only=True)


def test_is_a_task_with_a_default_inside_its_space(task):
    assert isinstance(task, Task)
    default = task.default_config()
    assert set(default) == set(config_space().keys())
    assert all(type(v) in (int, float) for v in default.values())  # plain Python
    assert validate_config(config_space(), default) == default
    assert dict(config_space(seed=1).sample_configuration()) == dict(
        config_space(seed=1).sample_configuration())


def test_resume_is_bit_identical(task, tmp_path):
    straight, full = _train(task, 6, tmp_path, "straight.pt")
    first, _ = _train(task, 3, tmp_path, "part.pt")
    rest, resumed = _train(task, 6, tmp_path, "resumed.pt", resume_from=tmp_path / "part.pt")

    assert [r.epoch for r in straight] == [1, 2, 3, 4, 5, 6]
    assert [r.epoch for r in first] == [1, 2, 3]
    assert [r.epoch for r in rest] == [4, 5, 6]  # one result per newly trained epoch
    assert [r.metrics for r in first + rest] == [r.metrics for r in straight]
    assert full["model"].keys() == resumed["model"].keys()
    for name, tensor in full["model"].items():
        assert torch.equal(tensor, resumed["model"][name]), name
    assert full["scheduler"] == resumed["scheduler"]
    assert torch.equal(full["dropout_rng"], resumed["dropout_rng"])


def test_interleaved_runs_do_not_disturb_each_other(task):
    def run(seed):
        return task.train(CONFIG, epochs=3, seed=seed, device="cpu")

    alone = [[r.metrics for r in run(seed)] for seed in (1, 2)]
    first, second = run(1), run(2)
    together = [[], []]
    for a, b in zip(first, second, strict=True):  # epochs of two runs alternate
        together[0].append(a.metrics)
        together[1].append(b.metrics)
    assert together == alone and alone[0] != alone[1]


def test_results_carry_metrics_timing_and_checkpoint(task, tmp_path):
    results, state = _train(task, 2, tmp_path, "run.pt")
    for r in results:
        assert set(r.metrics) == METRICS and r.is_finite
        assert all(type(v) is float for v in r.metrics.values())
        assert r.device_seconds > 0 and r.checkpoint == tmp_path / "run.pt"
    assert state["epoch"] == 2 and state["task"] == "text_classifier"
    assert {"model", "optimizer", "scheduler", "rng", "data_rng", "config"} <= set(state)


@pytest.mark.parametrize("bad", [{"momentum": 0.9}, {"dropout_p": 0.95}, {"lr": 2.0},
                                 {"batch_size": 24}, {"lr_patience": 1.5}])
def test_invalid_config_is_a_config_error(task, bad):
    with pytest.raises(ConfigError):
        task.train(bad, epochs=1, seed=0, device="cpu")


def test_resume_with_another_config_is_refused(task, tmp_path):
    _train(task, 1, tmp_path, "a.pt")
    with pytest.raises(CheckpointError, match="another configuration"):
        task.train({**CONFIG, "lr": 1e-3}, epochs=2, seed=3, resume_from=tmp_path / "a.pt",
                   device="cpu")
    with pytest.raises(CheckpointError):
        TextClassifier(scale="full").evaluate(tmp_path / "a.pt", device="cpu")


def test_evaluate_reports_test_metrics(task, tmp_path):
    _train(task, 2, tmp_path, "a.pt")
    metrics = task.evaluate(tmp_path / "a.pt", device="cpu")
    assert set(metrics) == {"test_loss", "test_accuracy", "test_macro_f1"}
    assert metrics["test_loss"] > 0 and 0 <= metrics["test_accuracy"] <= 1


def test_baseline_reports_validation_and_test_scores():
    scores = tfidf_baseline("tiny")
    assert set(scores) == {"val_macro_f1", "val_accuracy", "test_macro_f1", "test_accuracy"}
    assert all(0 <= v <= 1 for v in scores.values())


def test_macro_f1_matches_scikit_learn():
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        target = torch.randint(4, (30,), generator=gen)
        pred = torch.randint(3, (30,), generator=gen)  # one class never predicted
        expected = f1_score(target, pred, average="macro")
        assert macro_f1(pred, target, 4).item() == pytest.approx(expected)


def test_full_split_is_stratified_611_153():
    train, val = split_examples(read_examples(fetch(DATASET)), scale="full")
    assert (len(train), len(val)) == (611, 153)
    assert set(train["tag"]) == set(val["tag"]) == set(TAGS)
    assert not set(train["id"]) & set(val["id"])
    share = train["tag"].value_counts(normalize=True) - val["tag"].value_counts(normalize=True)
    assert share.abs().max() < 0.01


@pytest.mark.parametrize("text, message", [
    ("", "not a readable CSV"),
    ("id,title,description\n1,a,b\n", "missing column"),
    ("id,title,description,tag\n", "no examples"),
    ("id,title,description,tag\n1,a,b,computer-vision\n2,c,d,robotics\n", "unknown tag"),
])
def test_malformed_csv_is_a_data_error(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=message) as info:
        read_examples(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_edited_data_file_fails_its_checksum(tmp_path, monkeypatch):
    bad = tmp_path / "madewithml" / "dataset.csv"
    bad.parent.mkdir()
    bad.write_text("id,title,description,tag\n1,a,b,other\n")
    monkeypatch.setenv("SUITE_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match="SHA-256"):
        TextClassifier(scale="tiny").train({}, epochs=1, seed=0, device="cpu")
