"""Benchmark the Made With ML style `train_loop` (train_loop.py) with random search and BOHB.

    PYTHONPATH=examples python examples/benchmark_train_loop.py [OUT]
"""

import sys

from train_loop import task

import suite

if __name__ == "__main__":  # the workers are new processes: they must not start a study
    study = suite.run(task=task, optimizers="random,bohb", budget="3x",
                      out=sys.argv[1] if len(sys.argv) > 1 else None)
    for run in study.incumbents().to_dict("records"):
        print(f"{run['optimizer']}: val_loss {run['loss']:.4f} after {run['epoch']} epochs, "
              f"{run['ledger.epochs']:.0f} epochs charged")
