"""A user's own training job as a suite task: a small PyTorch MLP on scikit-learn's digits.

The data set ships with scikit-learn (no download). Named `digits:Digits` with this folder
on PYTHONPATH (`suite run --task digits:Digits ...`), or handed to `suite.run` directly.
"""

import time

import torch
from ConfigSpace import ConfigurationSpace, Float, Integer
from sklearn.datasets import load_digits

import suite


class Digits(suite.Task):
    info = suite.TaskInfo("digits", fidelity=suite.Fidelity(1, 9, 3))

    def config_space(self, seed=None):
        return ConfigurationSpace(seed=seed, space=[
            Float("lr", (1e-3, 1.0), log=True, default=0.1),
            Integer("width", (8, 128), log=True, default=32)])

    def train(self, config, *, epochs, seed, resume_from=None, save_to=None, device="auto"):
        torch.manual_seed(seed)
        torch.set_num_threads(1)  # a tiny model: one thread is fastest, and workers share cores
        x, y = load_digits(return_X_y=True)
        x, y = torch.tensor(x / 16, dtype=torch.float32), torch.tensor(y)
        model = torch.nn.Sequential(torch.nn.Linear(64, config["width"]), torch.nn.ReLU(),
                                    torch.nn.Linear(config["width"], 10))
        optimizer = torch.optim.SGD(model.parameters(), lr=config["lr"])
        loss_fn = torch.nn.CrossEntropyLoss()
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            for batch in torch.randperm(1400).split(64):  # the first 1400 images train
                optimizer.zero_grad()
                loss_fn(model(x[batch]), y[batch]).backward()
                optimizer.step()
            with torch.no_grad():  # the other 397 validate
                val_loss = loss_fn(model(x[1400:]), y[1400:]).item()
            yield suite.EpochResult(epoch, {"val_loss": val_loss}, time.perf_counter() - start)
