"""Committed figures at the two widths a reader meets them: a paper column (3.5 in at
150 dpi, 525 px) and the README's column on GitHub (830 px), from any git revision, for a
before/after look at a figure change.

    python benchmarks/figure_sizes.py --rev f644b7a --tag before
    python benchmarks/figure_sizes.py --rev HEAD --tag after

writes docs/img/legibility/NAME-TAG-column.png and NAME-TAG-readme.png (a figure narrower
than a width keeps its own size: only shrunk, never enlarged)."""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
from pathlib import Path

from PIL import Image

FOLDER = "results/figures/text_classifier-replay/figures"
WIDTHS = {"column": 525, "readme": 830}
NAMES = ("text_classifier-final", "text_classifier-ranks", "text_classifier-regret",
         "text_classifier-iqm")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rev", default="HEAD")
    parser.add_argument("--tag", required=True)
    parser.add_argument("--out", type=Path, default=Path("docs/img/legibility"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in NAMES:
        shown = subprocess.run(["git", "show", f"{args.rev}:{FOLDER}/{name}.png"],
                               capture_output=True, check=False)
        if shown.returncode:
            print(f"{name}: not at {args.rev}", file=sys.stderr)
            continue
        image = Image.open(io.BytesIO(shown.stdout)).convert("RGB")
        for size, width in WIDTHS.items():
            scaled = image if image.width <= width else image.resize(
                (width, round(image.height * width / image.width)), Image.LANCZOS)
            path = args.out / f"{name}-{args.tag}-{size}.png"
            scaled.save(path, optimize=True)
            print(f"{path}: {scaled.width}×{scaled.height} px")
    return 0


if __name__ == "__main__":
    sys.exit(main())
