"""The report writer: options, result, and the `Report` that accumulates markdown and
writes figures (PNG + PDF) and data files (deterministic CSV) under a folder; and
`TaskInputs`, what every section of one task starts from."""

from __future__ import annotations

import gzip
import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from suite.report._objective import Objective
from suite.report._style import FORMATS, figure_title, new_figure, plt, save_figure
from suite.tables import Table

_GZIP_ABOVE = 256 * 1024  # data files larger than this are stored gzipped (mtime 0)


@dataclass(frozen=True)
class ReportOptions:
    """What `suite report` was asked for (see `suite report --help`)."""

    table: Path | None = None
    aggregate: str = "iqm"
    resamples: int = 1000
    test: bool = False
    device: str = "auto"
    top: int = 10
    points: int = 120
    fidelities: tuple[int, ...] | None = None
    table_figures: bool = True
    render: bool = True  # False: data files and report.md only (for checks)
    min_trials: int = 10
    pairs_at: tuple[str, ...] | None = None  # budgets of the pairs table (None: B/2 and B)
    pdf: bool = True  # False: PNG figures only (a PDF's embedded fonts cost more than its PNG)
    # True: each figure read as a reader would (`ReportResult.legibility`), saved only
    # with `render`
    check_figures: bool = False


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass
class ReportResult:
    """What a build wrote and read."""

    out: Path
    figures: list[Path] = field(default_factory=list)
    data: list[Path] = field(default_factory=list)
    inputs: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # what a reader could not read, one line each (`ReportOptions.check_figures`)
    legibility: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)  # the figures read so


@dataclass(frozen=True)
class TaskInputs:
    """One task of a report and the table its sections read (None: no table, or one that
    cannot serve: unreadable or incomplete)."""

    task: str
    table: Table | None = None
    table_path: str | None = None  # as the runs' meta or `--table` name it


class Report:
    """Accumulates markdown and writes figures and data under `out`."""

    def __init__(self, out: Path, options: ReportOptions) -> None:
        self.out, self.options = out, options
        self.lines: list[str] = []
        self.result = ReportResult(out)
        self.tables: dict[str, object] = {}  # path → Table (or None: unreadable), read once
        # what the figures drawn now come from (e.g. "replay, 20 seeds"), for their titles
        self.context = ""
        self.objective = Objective()  # the task's, set per task (`_compose`)

    def text(self, *blocks: str) -> None:
        """Paragraphs, tables or list items; list items stay one list."""
        for block in blocks:
            if block.startswith("- ") and self.lines and self.lines[-1] == "" and \
                    len(self.lines) > 1 and self.lines[-2].startswith("- "):
                self.lines.pop()
            self.lines += [block, ""]

    def note(self, text: str) -> None:
        self.result.notes.append(text)
        self.text(f"> Note: {text}")

    def data(self, name: str, frame: pd.DataFrame) -> Path:
        path = self.out / "data" / f"{file_stem(name)}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        body = frame.to_csv(index=False, float_format="%.10g", lineterminator="\n").encode()
        if len(body) > _GZIP_ABOVE:
            path = path.with_suffix(".csv.gz")
            body = gzip.compress(body, mtime=0)
        path.write_bytes(body)
        self.result.data.append(path)
        return path

    def figure(self, name: str, draw: Callable, caption: str, dpi: int = 150, *,
               title: str | None = None, **size) -> None:
        """Draw with `draw(axes)` on a new figure, save PNG and PDF (unless `pdf` is
        off), link the PNG.

        The figure is titled `title`, by default the caption as "task · what it shows",
        followed by `context` (what it was made from): the PNG alone says what it is.
        """
        name = file_stem(name)
        if self.options.render or self.options.check_figures:
            fig, axes = new_figure(**size)
            draw(axes)
            figure_title(fig, title or figure_title_text(caption, self.context))
            fig.tight_layout()
            if self.options.check_figures:
                from suite.report._legibility import legibility_problems

                self.result.legibility += legibility_problems(fig, name)
                self.result.checked.append(name)
            if self.options.render:
                formats = FORMATS if self.options.pdf else ("png",)
                self.result.figures += save_figure(fig, self.out / "figures" / name,
                                                   formats, dpi=dpi)
            else:
                plt.close(fig)
        self.text(f"![{caption}](figures/{name}.png)", f"*{caption}*")


def file_stem(name: str) -> str:
    """`name` as a file name safe on any file system: characters other than letters, digits,
    `.`, `_` and `-` become `-` (a task named `mymod:MyTask`), and then a short hash of the
    name follows, so two names that differ only there stay two files."""
    safe = _UNSAFE.sub("-", name)
    if safe == name:
        return name
    return f"{safe}-{hashlib.sha256(name.encode()).hexdigest()[:6]}"


def figure_title_text(caption: str, context: str = "") -> str:
    """A figure's title from its caption: "task: what" → "task · what (context)"."""
    task, sep, what = caption.partition(": ")
    text = f"{task} · {what}" if sep else caption
    if not context:
        return text
    return f"{text[:-1]}; {context})" if text.endswith(")") else f"{text} ({context})"


def md_table(frame: pd.DataFrame, digits: int = 4) -> str:
    def cell(v) -> str:
        if isinstance(v, float | np.floating):
            return "" if math.isnan(v) else f"{v:.{digits}g}"
        return str(v)

    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(
        index=False)]
    return "\n".join([head, rule, *body])


def write_report(report: Report) -> None:
    if report.result.notes:
        report.text("## Notes", *[f"- {n}" for n in report.result.notes])
    text = "\n".join(report.lines).rstrip() + "\n"
    path = report.out / "report.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    report.result.data.append(path)
    try:
        from markdown_it import MarkdownIt  # comes with rich
    except ImportError:
        return
    body = MarkdownIt("commonmark").enable("table").render(text)
    html = ("<!doctype html><html><head><meta charset='utf-8'><title>suite report</title>"
            "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
            "img{max-width:100%}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:2px 6px}</style></head><body>\n"
            f"{body}</body></html>\n")
    (report.out / "report.html").write_text(html, encoding="utf-8")
