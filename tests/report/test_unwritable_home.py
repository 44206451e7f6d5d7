"""`suite report` and `suite figures` with a HOME that cannot hold matplotlib's folder (one
below a regular file: permissions prove nothing when CI runs as root) print nothing on
stderr: the suite points MPLCONFIGDIR at a folder of its own first
(`suite.report._style`)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from synthetic import write_synthetic_study, write_synthetic_table

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("command", [pytest.param("report", marks=pytest.mark.slow), "figures"])
def test_a_home_below_a_file_gives_no_warnings(tmp_path, command):
    write_synthetic_table(tmp_path / "toy.parquet")
    write_synthetic_study(tmp_path / "runs", optimizers=("good", "bad"), seeds=[0, 1])
    (tmp_path / "file").write_text("not a folder")
    env = {k: v for k, v in os.environ.items()
           if k not in ("MPLCONFIGDIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME")}
    env.update(HOME=str(tmp_path / "file" / "home"), PYTHONPATH=str(ROOT))
    if command == "report":
        args = ["report", "runs", "--table", "toy.parquet", "--bootstrap", "100",
                "--no-table-figures", "--out", "report"]
    else:
        (tmp_path / "manifest.json").write_text(
            '{"about": "test", "renderer": {}, "figures": [{"name": "toy-table", "report": '
            '{"roots": [], "out": "figs", "options": {"table": "toy.parquet", '
            '"resamples": 100}}}]}')
        args = ["figures", "--manifest", "manifest.json"]
    proc = subprocess.run([sys.executable, "-m", "suite.cli", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert list(tmp_path.glob("*/*.png")) or list(tmp_path.glob("*/figures/*.png"))
