"""Checkpoints are plain data: each task's solo and fused checkpoints load with
`torch.load(weights_only=True)` and resume bit for bit; older formats are refused in one
line; the solo and fused modules import in one direction only."""

import ast
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from suite.errors import CheckpointError
from suite.types import Member
from tasks.small_lm import SmallLM
from tasks.text_classifier import TextClassifier
from tasks.training import rng_state, set_rng_state

ROOT = Path(__file__).resolve().parents[1]


def _draws() -> tuple:
    """One draw from every global RNG (numpy's Gaussian exercises its cached half-pair)."""
    return (random.random(), random.gauss(0, 1), np.random.standard_normal(),
            np.random.randint(2**31), torch.rand(3).tolist())


def test_rng_state_is_plain_data_and_restores_every_rng(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    random.gauss(0, 1), np.random.standard_normal()  # both now hold a cached Gaussian
    torch.save(rng_state(), tmp_path / "rng.pt")
    want = _draws()
    _draws()  # move every stream on, then rewind it from the file
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    assert _draws() == want


def _configs(task):
    if isinstance(task, TextClassifier):
        base = {"lr_patience": 1, "lr_factor": 0.5, "dropout_p": 0.5, "batch_size": 16}
        return [base, {**base, "lr": 0.02, "dropout_p": 0.3}]
    base = {**task.default_config(), "width": 128, "depth": 2, "batch_size": 128}
    return [base, {**base, "lr": 1e-3, "dropout": 0.0}]


def _assert_same_state(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if key in ("model", "optimizer"):
            continue  # compared tensor by tensor below
        if key == "rng":
            assert a[key]["python"] == b[key]["python"]
            assert torch.equal(a[key]["numpy"].pop("key"), b[key]["numpy"].pop("key"))
            assert a[key]["numpy"] == b[key]["numpy"]
            assert torch.equal(a[key]["torch"], b[key]["torch"])
        elif isinstance(a[key], torch.Tensor):
            assert torch.equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    assert a["optimizer"]["param_groups"] == b["optimizer"]["param_groups"]
    for i, entry in a["optimizer"]["state"].items():
        for key, tensor in entry.items():
            assert torch.equal(tensor, b["optimizer"]["state"][i][key]), (i, key)


@pytest.mark.parametrize("task", [TextClassifier(scale="tiny"), SmallLM(scale="tiny")],
                         ids=["text_classifier", "small_lm"])
def test_solo_and_fused_checkpoints_load_weights_only_and_resume_exactly(task, tmp_path,
                                                                       two_threads):
    configs = _configs(task)
    members = [Member(c, 1, 5 + i, save_to=tmp_path / f"fused{i}.pt")
               for i, c in enumerate(configs)]
    for _ in task.train_fused(members, device="cpu"):
        pass
    list(task.train(configs[0], epochs=1, seed=5, save_to=tmp_path / "solo.pt", device="cpu"))
    straight = [r.metrics for r in task.train(configs[0], epochs=2, seed=5,
                                              save_to=tmp_path / "straight.pt", device="cpu")]
    for start in ("solo.pt", "fused0.pt"):
        state = torch.load(tmp_path / start, weights_only=True)  # plain data, never code
        assert state["epoch"] == 1 and configs[0].items() <= state["config"].items()
        rest = [r.metrics for r in task.train(configs[0], epochs=2, seed=5,
                                              resume_from=tmp_path / start,
                                              save_to=tmp_path / "resumed.pt", device="cpu")]
        assert rest == straight[1:], start
        _assert_same_state(torch.load(tmp_path / "resumed.pt", weights_only=True),
                           torch.load(tmp_path / "straight.pt", weights_only=True))
    torch.load(tmp_path / "fused1.pt", weights_only=True)


def test_an_older_checkpoint_format_is_one_clear_error(tmp_path):
    task = TextClassifier(scale="tiny")
    config = task.default_config()
    torch.save({"format": 1, "task": task.info.name, "rng": {"numpy": np.random.get_state()}},
               tmp_path / "pickled.pt")  # format 1 pickled numpy's RNG state
    torch.save({"format": 1, "task": task.info.name}, tmp_path / "plain.pt")
    for name in ("pickled.pt", "plain.pt"):
        with pytest.raises(CheckpointError, match="older suite checkpoint format"):
            task.train(config, epochs=2, seed=0, resume_from=tmp_path / name, device="cpu")


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth (what a static cycle checker sees)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_fused_modules_build_on_the_solo_ones_and_suite_never_imports_tasks():
    for solo in ("small_lm", "text_classifier"):
        package = ROOT / "tasks" / solo
        assert f"tasks.{solo}.training" in _imports(package / "fused.py")
        assert not {n for n in _imports(package / "training.py") if "fused" in n}
        # the declaration (what replays and plans read) stays free of torch
        heavy = {n for n in _imports(package / "space.py") if n.split(".")[0] in
                 ("torch", "sklearn", "tasks")}
        assert not heavy, heavy
    for path in (ROOT / "suite").rglob("*.py"):
        if path.name != "registry.py":  # names the built-in tasks as strings anyway
            assert not {n for n in _imports(path) if n.split(".")[0] == "tasks"}, path
