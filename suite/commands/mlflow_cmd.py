"""`suite mlflow DIR [--uri URI]`: export a study's logs into MLflow after the fact."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study", metavar="DIR", help="a study folder (finished, replayed or "
                                                     "stopped)")
    parser.add_argument("--uri", help="the tracking URI (default MLFLOW_TRACKING_URI, else "
                                      "MLflow's default)")


def run(args: argparse.Namespace) -> int:
    """Exports (idempotently: what MLflow holds already is not sent again) and says what
    it did in one line."""
    from suite.mlflow_export import export_study
    from suite.study import load_study

    out = Path(args.study)
    stats, uri = export_study(out, load_study(out), args.uri)
    print(f"suite mlflow: {args.study} -> {uri}: {stats.rows} log rows; MLflow runs "
          f"{stats.created} created, {stats.found} already there; metric values "
          f"{stats.sent} sent, {stats.skipped} already there")
    return 0
