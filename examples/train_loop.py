"""Made With ML style: a `train_loop(config)` that trains and reports each epoch, as a
Ray Tune `train_loop_per_worker` would, plugged in with `suite.task_from_function`.

Where Ray Tune's loop calls `train.report(metrics)`, this one calls `suite.report_epoch`;
the adapter seeds torch, NumPy and `random` with the trial's seed and times each epoch.
"""

import torch
from sklearn.datasets import load_digits

import suite


def train_loop(config):
    torch.set_num_threads(1)  # a tiny model: one thread is fastest, and workers share cores
    x, y = load_digits(return_X_y=True)
    x, y = torch.tensor(x / 16, dtype=torch.float32), torch.tensor(y)
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(),
                                torch.nn.Dropout(config["dropout_p"]), torch.nn.Linear(64, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    loss_fn = torch.nn.CrossEntropyLoss()
    for _epoch in range(config["num_epochs"]):
        model.train()
        for batch in torch.randperm(1400).split(config["batch_size"]):
            optimizer.zero_grad()
            loss_fn(model(x[batch]), y[batch]).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            logits = model(x[1400:])
        accuracy = (logits.argmax(1) == y[1400:]).float().mean().item()
        suite.report_epoch(val_loss=loss_fn(logits, y[1400:]).item(), val_accuracy=accuracy)


task = suite.task_from_function(
    train_loop, {"lr": (1e-4, 1e-1, "log"), "dropout_p": (0.0, 0.5), "batch_size": [32, 64]},
    name="digits-loop", fidelity=9, epochs_key="num_epochs")
