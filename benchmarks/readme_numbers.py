"""Print the README's result tables from the records committed under results/.

    python benchmarks/readme_numbers.py

The records themselves come from `bash benchmarks/gpu_measurements.sh OUT all` on a GPU
(see that script); this only formats them, so anyone can check the README against them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from suite.log import read_runs  # noqa: E402


def tasks_table() -> None:
    print("| task | hardware | s/epoch | val (27 ep) | test | reference |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in ("text_classifier", "small_lm"):
        record = json.loads((ROOT / "results/foundation" / f"{name}.json").read_text())
        run, gpu = record["runs"]["default"], record["environment"].get("gpu", "cpu")
        final, test = run["final"], run["test"]
        if name == "small_lm":
            val = f"loss {final['val_loss']:.3f} nats/char ({final['val_bpc']:.3f} bpc)"
            tst = f"loss {test['test_loss']:.3f} ({test['test_bpc']:.3f} bpc)"
            ref = "goal ≤ 1.60 nats/char"
        else:
            base = record["baseline"]
            val = f"macro-F1 {final['val_macro_f1']:.3f}, loss {final['val_loss']:.3f}"
            tst = f"macro-F1 {test['test_macro_f1']:.3f}"
            ref = (f"TF-IDF + LR: val {base['val_macro_f1']:.3f}, "
                   f"test {base['test_macro_f1']:.3f}")
        print(f"| {name} default | {gpu} | {run['seconds_per_epoch']:.3f} | {val} | {tst} | "
              f"{ref} |")


def random_configs() -> None:
    record = json.loads((ROOT / "results/foundation/text_classifier.json").read_text())
    baseline = record["baseline"]["val_macro_f1"]
    runs = {k: v for k, v in record["runs"].items() if k.startswith("random-")}
    above = [k for k, v in runs.items() if v["final"]["val_macro_f1"] >= baseline]
    best = max(runs, key=lambda k: runs[k]["final"]["val_macro_f1"])
    b = runs[best]
    print(f"\nclassifier: {len(above)} of {len(runs)} random configurations reach the baseline's "
          f"validation macro-F1 {baseline:.3f}; best {best}: val {b['final']['val_macro_f1']:.3f}"
          f", test {b['test']['test_macro_f1']:.3f}, config {json.dumps(b['config'])}")


def live_comparison(folder: str = "results/runs/text_classifier-live") -> None:
    frame = read_runs(ROOT / folder)
    epochs = frame[frame["event"] == "epoch"]
    ok = epochs[epochs["status"] == "ok"]
    print(f"\n{folder}")
    print("| optimizer | trials | epochs | device-s | incumbent val loss | its val macro-F1 "
          "| its epochs |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, group in frame.groupby("optimizer", sort=False):
        done = ok[ok["optimizer"] == name]
        top = done[done["epoch"] == done["epoch"].max()]
        best = top.loc[top["loss"].idxmin()]
        spent = group[group["event"] == "finish"].iloc[-1]
        print(f"| {name} | {int((group['event'] == 'start').sum())} | "
              f"{int(spent['ledger.epochs'])} | {spent['ledger.device_seconds']:.1f} | "
              f"{best['loss']:.4f} | {best['metrics.val_macro_f1']:.4f} | {int(best['epoch'])} |")


if __name__ == "__main__":
    tasks_table()
    random_configs()
    live_comparison()
