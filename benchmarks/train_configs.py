"""Train configurations to the maximum fidelity and record what the README reports.

Run from the repository root, on the device the numbers are for:

    python benchmarks/train_configs.py --task small_lm --device cuda \
        --out results/foundation/small_lm.json
    python benchmarks/train_configs.py --task text_classifier --device cuda --random 40 \
        --out results/foundation/text_classifier.json

Records, for the default configuration (and any `--config` or `--random N` samples from the
space), the per-epoch validation metrics and device-seconds, the held-out test metrics of
the final model and, for the classifier, the TF-IDF + logistic-regression baseline.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from suite.config import to_plain, validate_config  # noqa: E402
from suite.env import environment  # noqa: E402
from suite.registry import get_task  # noqa: E402


def train_one(task, config: dict, *, epochs: int, seed: int, device: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "model.pt"
        curve = [{"epoch": r.epoch, "device_seconds": r.device_seconds, **r.metrics}
                 for r in task.train(config, epochs=epochs, seed=seed, save_to=ckpt,
                                     device=device)]
        test = task.evaluate(ckpt, device=device)
    # The first epoch includes one-off warm-up (CUDA context, kernel selection).
    steady = [c["device_seconds"] for c in curve[1:]] or [curve[0]["device_seconds"]]
    return {"config": config, "seed": seed, "final": curve[-1], "test": test,
            "seconds_per_epoch": sum(steady) / len(steady),
            "first_epoch_seconds": curve[0]["device_seconds"], "curve": curve}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--scale", default="full")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", action="append", default=[], help="extra JSON configs")
    parser.add_argument("--random", type=int, default=0, help="also N random configurations")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    task = get_task(args.task, scale=args.scale)
    epochs = args.epochs or task.info.fidelity.max_epochs
    space = task.config_space(seed=args.seed)
    configs = [("default", task.default_config())]
    configs += [(f"given-{i}", validate_config(space, json.loads(c),
                                               fill_from=task.default_config()))
                for i, c in enumerate(args.config)]
    configs += [(f"random-{i}", to_plain(dict(space.sample_configuration())))
                for i in range(args.random)]
    record = {"task": args.task, "scale": args.scale, "epochs": epochs,
              "environment": environment(), "runs": {}}
    if args.task == "text_classifier":
        from tasks.text_classifier.training import tfidf_baseline

        record["baseline"] = tfidf_baseline(scale=args.scale)
        print("baseline", json.dumps(record["baseline"]), flush=True)
    for name, config in configs:
        run = train_one(task, config, epochs=epochs, seed=args.seed, device=args.device)
        record["runs"][name] = run
        summary = {k: round(v, 4) for k, v in {**run["final"], **run["test"]}.items()}
        print(name, f"{run['seconds_per_epoch']:.3f}s/epoch", json.dumps(summary), flush=True)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
