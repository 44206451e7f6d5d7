"""Where a number was measured: hardware, package versions and the git commit."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

__all__ = ["environment", "git_sha"]

PACKAGES = ("hpo-suite", "torch", "numpy", "ConfigSpace", "scikit-learn", "optuna", "smac",
            "hpbandster")


def git_sha() -> str | None:
    """The commit of the working tree (with `-dirty` if it has changes), or None.

    `SUITE_GIT_SHA` overrides it, for copies of the tree without `.git` (a GPU machine)."""
    if os.environ.get("SUITE_GIT_SHA"):
        return os.environ["SUITE_GIT_SHA"]
    root = Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return sha + ("-dirty" if dirty.strip() else "")


def environment() -> dict:
    """A JSON-ready description of this machine and software."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    info = {"python": platform.python_version(), "platform": platform.platform(),
            "cpu": platform.processor() or platform.machine(), "versions": versions,
            "git_sha": git_sha()}
    try:
        import torch

        versions.setdefault("torch", torch.__version__)
        info["cpu_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return info
