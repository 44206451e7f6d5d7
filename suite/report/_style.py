"""Figure style and deterministic saving: Agg backend, fixed fonts, no timestamps.

PNG and PDF files written by `save_figure` carry no software version or creation date, so
the same data and the same matplotlib give byte-identical files.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path


def _writable_config_dir() -> None:
    """Matplotlib warns on stderr, and rebuilds its font cache at every start, when its
    folder (~/.config/matplotlib) cannot be written: a read-only HOME, or one that is not
    a folder in a container. Then it gets a stable one in the temporary folder."""
    if os.environ.get("MPLCONFIGDIR"):
        return  # the user's choice; matplotlib reports on it itself
    default = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "matplotlib"
    try:
        default.mkdir(parents=True, exist_ok=True)
        if os.access(default, os.W_OK):
            return
    except OSError:
        pass
    fallback = Path(tempfile.gettempdir()) / f"suite-matplotlib-{os.getuid()}"
    try:
        fallback.mkdir(mode=0o700, exist_ok=True)
    except OSError:
        return  # no better place: matplotlib makes its own temporary one, and says so
    if os.access(fallback, os.W_OK):
        os.environ["MPLCONFIGDIR"] = str(fallback)  # before matplotlib is imported


_writable_config_dir()

import matplotlib  # noqa: E402

matplotlib.use("Agg")  # before pyplot: never an interactive backend

import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["save_figure", "new_figure", "optimizer_colors", "figure_title", "RC", "FORMATS"]

FORMATS = ("png", "pdf")
# Metadata keys matplotlib would otherwise fill with its version and the current time.
_METADATA = {"png": {"Software": None},
             "pdf": {"Creator": None, "Producer": None, "CreationDate": None}}
RC = {"font.family": "DejaVu Sans", "font.size": 9, "axes.titlesize": 10,
      "axes.labelsize": 9, "legend.fontsize": 8, "figure.dpi": 100, "savefig.dpi": 150,
      "axes.spines.top": False, "axes.spines.right": False, "pdf.fonttype": 42,
      "svg.hashsalt": "suite", "path.simplify": True}
# Canonical order: the same optimizer gets the same colour in every figure. A variant of a
# method takes the lighter tone of its family's colour (tab20's pairs): ray-asha beside asha,
# smac-hyperband beside smac, the pruned TPEs beside tpe, dehb beside bohb.
_KNOWN = ("grid", "random", "tpe", "hyperband", "bohb", "smac", "asha",
          "tpe-median", "tpe-hyperband", "smac-hyperband", "ray-asha", "dehb", "hyperopt", "gp")
_PALETTE = ("#7f7f7f", "#1f77b4", "#2ca02c", "#ff7f0e", "#d62728", "#9467bd", "#8c564b",
            "#98df8a", "#bcbd22", "#c5b0d5", "#c49c94", "#ff9896", "#17becf", "#e377c2",
            # names the suite does not know (a plugin's optimizers), in sorted order
            "#aec7e8", "#ffbb78", "#dbdb8d", "#9edae5", "#f7b6d2", "#393b79")


def optimizer_colors(names: Iterable[str]) -> dict[str, str]:
    """A fixed colour per optimizer: known names keep theirs, others follow in sorted order."""
    names = sorted(set(names), key=lambda n: (_KNOWN.index(n) if n in _KNOWN else 99, n))
    extra = iter(_PALETTE[len(_KNOWN):] * 10)
    return {n: _PALETTE[_KNOWN.index(n)] if n in _KNOWN else next(extra) for n in names}


def new_figure(ncols: int = 1, nrows: int = 1, *, width: float = 4.2, height: float = 3.0,
               **kwargs):
    """A figure and its axes under the suite's style."""
    with plt.rc_context(RC):
        return plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows),
                            squeeze=False, **kwargs)


def figure_title(fig, text: str) -> None:
    """Title the whole figure (not one of its axes), wrapped to the figure's width: a PNG
    pasted alone into a slide or an issue still says what it shows."""
    import textwrap

    chars = max(40, int(fig.get_figwidth() * 11))  # about 11 characters an inch at 10 pt
    with plt.rc_context(RC):
        fig.suptitle(textwrap.fill(text, chars), fontsize=RC["axes.titlesize"],
                     fontweight="bold")


def save_figure(fig, stem: Path, formats: Iterable[str] = FORMATS,
                dpi: int | None = None) -> list[Path]:
    """Write `stem.png` and `stem.pdf` without timestamps, close the figure, return the paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    with plt.rc_context(RC):
        for fmt in formats:
            path = stem.with_suffix(f".{fmt}")
            fig.savefig(path, format=fmt, metadata=_METADATA[fmt], bbox_inches="tight",
                        dpi=dpi or RC["savefig.dpi"])
            paths.append(path)
    plt.close(fig)
    return paths
