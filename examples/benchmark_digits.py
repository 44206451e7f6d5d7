"""Benchmark five optimizers on your own training job (digits.py), one budget ledger for all.

    PYTHONPATH=examples python examples/benchmark_digits.py [OUT]
"""

import sys

from digits import Digits

import suite

if __name__ == "__main__":  # the workers are new processes: they must not start a study
    study = suite.run(task=Digits, optimizers=["grid", "random", "tpe", "hyperband", "bohb"],
                      budget="6x", seeds=[0], out=sys.argv[1] if len(sys.argv) > 1 else None)
    best = study.incumbents()
    print(best[["optimizer", "loss", "epoch", "config.lr", "config.width"]].to_string(index=False))
    print(f"report: {study.report(resamples=100).out}")
