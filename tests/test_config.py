import json

import pytest
from ConfigSpace import Categorical, ConfigurationSpace, EqualsCondition, Float, Integer

from suite.config import describe_space, load_config_arg, to_plain, validate_config
from suite.errors import ConfigError


@pytest.fixture
def space():
    cs = ConfigurationSpace(seed=0)
    schedule = Categorical("schedule", ["constant", "cyclic"], default="constant")
    ratio = Float("ratio", (2.0, 20.0), log=True, default=4.0)
    cs.add([Float("lr", (1e-4, 1e-1), log=True, default=1e-3), Integer("n", (1, 10), default=3),
            schedule, ratio])
    cs.add(EqualsCondition(ratio, schedule, "cyclic"))
    return cs


def test_missing_keys_come_from_fill_then_hyperparameter_default(space):
    got = validate_config(space, {"schedule": "cyclic"}, fill_from={"lr": 0.01, "n": 5})
    assert got == {"lr": 0.01, "n": 5, "schedule": "cyclic", "ratio": 4.0}


def test_filled_value_that_became_inactive_is_dropped(space):
    fill = {"lr": 0.01, "n": 5, "schedule": "cyclic", "ratio": 8.0}
    assert "ratio" not in validate_config(space, {"schedule": "constant"}, fill_from=fill)


def test_values_are_plain_python(space):
    got = validate_config(space, dict(space.sample_configuration()))
    assert all(type(v) in (int, float, str) for v in got.values())
    assert json.loads(json.dumps(got)) == got


@pytest.mark.parametrize("config, message", [
    ({"batch": 3}, "unknown hyperparameter"),
    ({"lr": 5.0}, "out of range"),
    ({"lr": "fast"}, "expected a number"),
    ({"n": 2.5}, "expected an integer"),
    ({"n": True}, "expected a number"),
    ({"schedule": "cosine"}, "not one of"),
    ({"schedule": "constant", "ratio": 3.0}, "inactive"),
])
def test_invalid_configurations_raise_one_line(space, config, message):
    with pytest.raises(ConfigError, match=message) as info:
        validate_config(space, config)
    assert "\n" not in str(info.value)


def test_load_config_arg_forms(tmp_path):
    assert load_config_arg("default", {"a": 1}) == {"a": 1}
    assert load_config_arg('{"lr": 0.1}', {}) == {"lr": 0.1}
    path = tmp_path / "c.json"
    path.write_text('{"lr": 0.2}')
    assert load_config_arg(str(path), {}) == {"lr": 0.2}
    for bad in ("{nope", str(tmp_path / "missing.json"), "[1, 2]"):
        with pytest.raises(ConfigError):
            load_config_arg(bad, {})


def test_describe_space_names_conditions(space):
    rows = {name: (domain, cond) for name, domain, cond in describe_space(space)}
    assert rows["lr"][0].endswith("log")
    assert "cyclic" in rows["ratio"][1] and rows["lr"][1] == ""


def test_to_plain_converts_numpy_scalars():
    import numpy as np

    assert to_plain({"a": np.int64(3), "b": np.str_("x")}) == {"a": 3, "b": "x"}
    assert type(to_plain(np.float64(1.5))) is float
