"""suite: multi-fidelity hyperparameter-optimization benchmarking on real training jobs."""

from suite._version import __version__

__all__ = ["__version__"]
