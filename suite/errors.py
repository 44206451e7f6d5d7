"""User-facing errors: the CLI prints their message as one line and exits with code 2."""

import errno


class SuiteError(Exception):
    """An error caused by the user's input or environment, not by a bug in the suite."""


class ConfigError(SuiteError):
    """A configuration does not fit the task's search space."""


class DataError(SuiteError):
    """A data file is missing, unreachable, corrupt or malformed."""


class CheckpointError(SuiteError):
    """A checkpoint cannot be resumed (missing, corrupt, or from another configuration)."""


class TaskContractError(SuiteError):
    """A task broke the Task API's contract (an epoch without its objective, a value that is
    not a number, a resume that yields other epochs than asked, a checkpoint declared and
    not written): a bug in the task, not a failed trial, so the study stops at the first."""


class NoSpaceError(SuiteError):
    """A write failed because the disk (or the process's file-size limit) is full."""


# ENOSPC: no space left; EFBIG: a file-size limit (RLIMIT_FSIZE) reached; EDQUOT: a quota
_NO_SPACE = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}


def cannot_write(path, exc: OSError) -> SuiteError:
    """The one-line error for a failed write of `path`; `NoSpaceError` when the disk is full,
    so that a command can say how to go on once space is freed."""
    if exc.errno in _NO_SPACE:
        return NoSpaceError(f"cannot write {path}: {exc.strerror} (disk full?)")
    return SuiteError(f"cannot write {path}: {exc.strerror}")
