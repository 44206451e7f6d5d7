"""The README's picture of MLflow's UI: a study's trials in its compare view.

Not part of the suite: it needs a browser. Made on the 2-core development machine with
Debian's `chromium` and `pip install playwright` in an environment of its own (it imports
nothing of the suite's and talks to MLflow over its REST API), against a tracking server
holding a replay exported with `--mlflow`:

    mlflow server --backend-store-uri sqlite:///$TMP/mlflow.db --host 127.0.0.1 --port 5055 &
    suite run --task text_classifier --table --optimizer random,hyperband,bohb --seeds 0 \\
        --budget 5x --include-default --out $TMP/study --mlflow http://127.0.0.1:5055
    python docs/mlflow_screenshot.py --uri http://127.0.0.1:5055 --out docs/img/mlflow-compare.png

It opens MLflow's compare view of the study's trials that trained at least `--min-epochs`
epochs, sets the parallel-coordinates plot to every hyperparameter and the validation loss,
and saves the plot's part of the page.
"""

from __future__ import annotations

import argparse
import json
import urllib.parse
import urllib.request

PARAMS = ("weight_decay", "width", "lr_factor", "lr_patience")  # beside MLflow's first three


def _post(uri: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(f"{uri}/api/2.0/mlflow/{path}", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def trial_runs(uri: str, experiment: str, min_epochs: int) -> tuple[str, list[str]]:
    """The experiment's id and its trial runs (runs tagged with a trial id) that trained at
    least `min_epochs` epochs."""
    found = _post(uri, "experiments/search", {"max_results": 100, "filter":
                                             f"name = '{experiment}'"})
    experiment_id = found["experiments"][0]["experiment_id"]
    runs = _post(uri, "runs/search", {"experiment_ids": [experiment_id],
                                      "max_results": 1000}).get("runs", [])
    ids = []
    for run in runs:
        tags = {t["key"]: t["value"] for t in run["data"].get("tags", [])}
        if "suite.trial_id" in tags and int(tags["suite.target_epochs"]) >= min_epochs:
            ids.append(run["info"]["run_id"])
    return experiment_id, ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", default="http://127.0.0.1:5055")
    parser.add_argument("--experiment", default="suite-text_classifier")
    parser.add_argument("--min-epochs", type=int, default=9)
    parser.add_argument("--browser", default="/usr/bin/chromium")
    parser.add_argument("--out", default="docs/img/mlflow-compare.png")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    experiment_id, ids = trial_runs(args.uri, args.experiment, args.min_epochs)
    url = (f"{args.uri}/#/compare-runs?runs={urllib.parse.quote(json.dumps(ids))}"
           f"&experiments={urllib.parse.quote(json.dumps([experiment_id]))}")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.browser, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1500, "height": 760})
        page.goto(url)
        page.wait_for_timeout(6000)  # the single-page app fetches and draws
        params, metrics = (page.locator(".du-bois-light-select-selector").nth(i)
                           for i in (0, 1))
        metrics.locator(".du-bois-light-select-selection-item-remove").first.click()
        for select, names in ((metrics, ("val_loss",)), (params, PARAMS)):
            for name in names:
                select.click()
                page.keyboard.type(name)
                page.wait_for_timeout(400)
                page.keyboard.press("Enter")
                page.keyboard.press("Escape")
        page.wait_for_timeout(2500)
        page.screenshot(path=args.out, clip={"x": 0, "y": 0, "width": 1110, "height": 640})
        browser.close()
    print(f"{len(ids)} trials of experiment {experiment_id}: {args.out}")


if __name__ == "__main__":
    main()
