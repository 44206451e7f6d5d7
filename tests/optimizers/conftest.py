import importlib.util
import tempfile

import pytest


@pytest.fixture(autouse=True)
def _temp_files_under_tmp_path(monkeypatch, tmp_path):
    """SMAC writes its scenario into a throwaway temporary directory when it is built; keep
    even that under the test's tmp_path."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("TMPDIR", str(tmp_path))


# Optimizers whose every ask refits a model for seconds on 2 cores (Optuna's GPSampler): the
# hundreds of asks of the tests parametrized over every optimizer (contract, recommendation)
# would take the default run past its few minutes, so those run with `-m slow`;
# test_optimizers_<name>.py keeps what is fast.
SLOW_EVERYWHERE = {"gp"}
# Optimizers of the `more-optimizers` extra: without it their contract tests are skipped,
# saying so (the adapters' own tests importorskip the same modules).
NEEDS = {"hyperopt": ("hyperopt",), "dehb": ("dehb", "loguru")}
MISSING = {name for name, modules in NEEDS.items()
           if any(importlib.util.find_spec(m) is None for m in modules)}


@pytest.hookimpl(tryfirst=True)  # before `-m 'not slow'` deselects
def pytest_collection_modifyitems(items):
    for item in items:
        callspec = getattr(item, "callspec", None)
        name = callspec.params.get("name") if callspec is not None else None
        if name in SLOW_EVERYWHERE:
            item.add_marker(pytest.mark.slow)
        if name in MISSING:
            item.add_marker(pytest.mark.skip(
                reason="needs pip install 'hpo-suite[more-optimizers]'"))
