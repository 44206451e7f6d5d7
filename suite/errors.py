"""User-facing errors: the CLI prints their message as one line and exits with code 2."""


class SuiteError(Exception):
    """An error caused by the user's input or environment, not by a bug in the suite."""


class ConfigError(SuiteError):
    """A configuration does not fit the task's search space."""


class DataError(SuiteError):
    """A data file is missing, unreachable, corrupt or malformed."""


class CheckpointError(SuiteError):
    """A checkpoint cannot be resumed (missing, corrupt, or from another configuration)."""
