"""Where a number was measured: hardware, package versions and the git commit."""

from __future__ import annotations

import functools
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

__all__ = ["environment", "git_sha", "cpu_model", "cpu_isa", "machine_line", "worker_threads",
           "training_provenance"]

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


# the ISA extensions that decide which CPU kernels torch picks (and so its rounding)
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx_vnni", "avx512f", "avx512bw", "avx512_vnni",
             "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8", "asimd", "sve")


@functools.cache  # read once: cpu_model and cpu_isa both ask
def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    fields = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def cpu_model() -> str:
    """The CPU's marketing name, e.g. 'Intel(R) Xeon(R) Processor'."""
    info = _cpuinfo()
    return info.get("model name") or platform.processor() or platform.machine()


def cpu_isa() -> list[str]:
    """Which of `ISA_FLAGS` this CPU has, in that order."""
    info = _cpuinfo()
    flags = set((info.get("flags") or info.get("Features") or "").split())
    return [f for f in ISA_FLAGS if f in flags]


def worker_threads(executor: str | None, workers: int) -> int:
    """torch's threads in each worker: the local executor's subprocesses share the cores;
    in this process, torch's own count (the cores, until it is imported)."""
    if executor in (None, "local"):
        return max(1, (os.cpu_count() or 1) // workers)
    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else os.cpu_count() or 1


def training_provenance(executor: str | None, workers: int) -> dict:
    """What decides the rounding of a training on the CPU, and so whether two trainings
    of one configuration and seed are bit-equal: the CPU, its ISA, torch's version and
    each worker's threads (a table records it; `suite run --space table` compares it)."""
    try:
        torch = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch = None
    return {"cpu_model": cpu_model(), "cpu_isa": cpu_isa(), "torch": torch,
            "threads_per_worker": worker_threads(executor, workers)}


def machine_line() -> str:
    """One line tying a measurement to a machine: CPU, cores, ISA, torch and its threads."""
    line = f"{cpu_model()}, {os.cpu_count()} cores, ISA {' '.join(cpu_isa()) or 'unknown'}"
    try:
        import torch
    except ImportError:
        return line
    return f"{line}; torch {torch.__version__}, {torch.get_num_threads()} threads"


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
    # torch's threads and GPU as this process trains with them; a process that has not
    # imported torch (a replay of a task that does not need it, a replay worker) trains
    # nothing, and importing it only to record them would cost seconds per process
    torch = sys.modules.get("torch")
    if torch is not None:
        versions.setdefault("torch", torch.__version__)
        info["cpu_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    return info


if __name__ == "__main__":  # `python -m suite.env`: CI's first lines
    import torch

    print(f"machine: {machine_line()}")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(torch.__config__.parallel_info().rstrip())
