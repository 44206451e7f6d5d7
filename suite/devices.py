"""Which training devices `--devices` may name, checked before a study writes anything.

A device that does not exist never trains an epoch: every trial on it fails at once, and
the optimizer asks the next one, forever. So the names are checked when the plan is made
(`check_device_names`: `auto`, `cpu`, `mps`, `cuda` or `cuda:N`) and the devices are checked
against this machine before a study (new or resumed) starts (`check_devices_here`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from suite.errors import SuiteError

__all__ = ["check_device_names", "check_devices_here"]

_NAME = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def check_device_names(devices: Sequence[str]) -> None:
    """SuiteError for a name that is no device (`gpu7`, `banana`, `cuda:-1`)."""
    for device in devices:
        if not _NAME.match(device):
            raise SuiteError(f"--devices {device!r} is not a device: expected auto, cpu, mps, "
                             f"cuda or cuda:N")


def check_devices_here(devices: Sequence[str]) -> None:
    """SuiteError for a device this machine lacks: CUDA without CUDA, `cuda:N` with N at or
    past the CUDA device count, `mps` without MPS. `auto` and `cpu` are always here."""
    wanted = [d for d in devices if d not in ("auto", "cpu")]
    if not wanted:
        return
    import torch  # only here: checking `auto`/`cpu` costs no torch import

    for device in wanted:
        if device == "mps":
            if not torch.backends.mps.is_available():
                raise SuiteError("--devices mps: MPS is not available on this machine "
                                 "(use cpu or auto)")
            continue
        if not torch.cuda.is_available():
            raise SuiteError(f"--devices {device}: no CUDA device is available on this "
                             f"machine (use cpu or auto)")
        count = torch.cuda.device_count()
        index = int(device.partition(":")[2] or 0)
        if index >= count:
            names = "cuda:0" if count == 1 else f"cuda:0..cuda:{count - 1}"
            raise SuiteError(f"--devices {device}: this machine has {count} CUDA "
                             f"device{'s' if count != 1 else ''} ({names})")
