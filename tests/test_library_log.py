"""What the optimizer libraries print, warn or log while a study runs goes to the study's
`library.log`, never to the terminal (`suite.library_log`)."""

import os
import subprocess
import sys

import pytest

from suite.library_log import LIBRARY_LOG
from suite.testing import toy_table

# SMAC3 logs this itself when its acquisition falls back to random configurations
SMAC_NOTICE = "Did not find enough configurations from the acquisition function"


@pytest.mark.slow  # about 20-30 s on 2 busy cores: SMAC's model is fitted at every ask
def test_a_smac_replay_prints_no_chatter_and_its_library_log_holds_it(tmp_path):
    """The real command, PYTHONHASHSEED unset (SMAC needs none)."""
    table = toy_table(tmp_path / "toy.parquet", seeds=1)
    out = tmp_path / "s"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
    proc = subprocess.run([sys.executable, "-m", "suite.cli", "run", "--task", "toy",
                           "--table", str(table), "--optimizer", "smac", "--budget", "10x",
                           "--workers", "2", "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert "smac seed 0" in proc.stdout and "incumbent" in proc.stdout, "the summary stays"
    assert SMAC_NOTICE in (out / LIBRARY_LOG).read_text()


_CHATTER = """
import logging, sys, warnings
from suite.library_log import to_library_log
with to_library_log(sys.argv[1]):
    pass
with to_library_log(sys.argv[2]):
    warnings.warn("a library's warning", stacklevel=1)
    logging.getLogger("some.library").warning("a library's log record")
    print("a library's print", file=sys.stderr)
print("after the block", file=sys.stderr)
"""


def test_warnings_logging_and_prints_go_to_the_file_opened_on_first_write(tmp_path):
    # a fresh process: pytest captures warnings and logging itself
    quiet, path = tmp_path / "quiet.log", tmp_path / LIBRARY_LOG
    proc = subprocess.run([sys.executable, "-c", _CHATTER, str(quiet), str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "after the block\n", proc.stderr
    assert not quiet.exists(), "a quiet study gets no file"
    text = path.read_text()
    for line in ("a library's warning", "a library's log record", "a library's print"):
        assert line in text


def test_only_the_studys_thread_is_redirected_and_stderr_comes_back(tmp_path, capsys):
    import threading

    from suite.library_log import to_library_log

    before = sys.stderr
    inside, written = threading.Event(), threading.Event()

    def study():
        with to_library_log(tmp_path / LIBRARY_LOG):
            print("chatter of the study", file=sys.stderr)
            inside.set()
            assert written.wait(10)  # the other thread writes while the study runs

    worker = threading.Thread(target=study)
    worker.start()
    assert inside.wait(10)
    print("the caller's own line", file=sys.stderr)  # another thread, mid-study
    written.set()
    worker.join()
    assert sys.stderr is before
    assert capsys.readouterr().err == "the caller's own line\n"
    assert (tmp_path / LIBRARY_LOG).read_text() == "chatter of the study\n"
