"""The suite's real training tasks. Each knows nothing of optimizers or budgets."""
