"""CI installs exactly as the README says: the two install lines name the same extras."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_INSTALL = re.compile(r"^pip install (?:-q )?-e '\.\[([a-z,-]+)\]'", re.MULTILINE)


def _extras(path: Path) -> list[set[str]]:
    return [set(m.group(1).split(",")) for m in _INSTALL.finditer(path.read_text())]


def test_ci_installs_the_extras_the_readme_names():
    readme, ci = _extras(ROOT / "README.md"), _extras(ROOT / ".ci" / "run")
    assert readme and len(ci) == 1, (readme, ci)
    assert readme[0] == ci[0]
    assert "mlflow" in ci[0]  # the MLflow tests' client


def test_ci_runs_the_readmes_test_command():
    readme = (ROOT / "README.md").read_text()
    command = re.search(r"## Tests\n\n```bash\n(.+)\n```", readme).group(1)
    assert command.startswith("pytest")
    # as written, optionally followed by reporting flags (--durations)
    assert re.search(rf"\n{re.escape(command)}( --durations=\d+)?\n",
                     (ROOT / ".ci" / "run").read_text())
