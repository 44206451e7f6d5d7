"""What a reader sees of a figure, checked: no two texts drawn over each other, no text
cut off by the canvas, no legend over the data, no text too small once the figure is
shrunk to a paper column. Read from the rendered figure (matplotlib's own bounding boxes
in display pixels), so it sees what the PNG shows, whatever drew it."""

from __future__ import annotations

import itertools

import numpy as np
from matplotlib.collections import Collection
from matplotlib.lines import Line2D
from matplotlib.text import Text

__all__ = ["legibility_problems", "COLUMN_INCHES", "MIN_POINTS"]

COLUMN_INCHES = 3.5  # a paper column
MIN_POINTS = 4.5  # smallest text still read at that width (a figure's footnote size)
_SLACK = 1.0  # pixels two boxes may share (antialiased edges touch)


def legibility_problems(fig, name: str = "figure") -> list[str]:
    """Every problem a reader would see in `fig` as saved (`bbox_inches="tight"`: the
    canvas is the figure's tight box), each one line naming the texts."""
    fig.draw_without_rendering()  # lays every text out as a save would, no pixels
    renderer = fig.canvas.get_renderer()
    texts = [(t, t.get_window_extent(renderer)) for t in _texts(fig)]
    problems = []
    for (a, box_a), (b, box_b) in itertools.combinations(texts, 2):
        if _overlap(box_a, box_b) > _SLACK ** 2:
            problems.append(f"{name}: {_say(a)} overlaps {_say(b)}")
    tight = fig.get_tightbbox(renderer)  # inches, what the saved file shows
    canvas = tight.transformed(fig.dpi_scale_trans)
    for text, box in texts:
        if (box.x0 < canvas.x0 - _SLACK or box.y0 < canvas.y0 - _SLACK
                or box.x1 > canvas.x1 + _SLACK or box.y1 > canvas.y1 + _SLACK):
            problems.append(f"{name}: {_say(text)} is cut off by the canvas")
    scale = COLUMN_INCHES / tight.width
    for text, _ in texts:
        if text.get_fontsize() * min(scale, 1.0) < MIN_POINTS:
            problems.append(f"{name}: {_say(text)} is {text.get_fontsize() * scale:.1f} pt "
                            f"at {COLUMN_INCHES} in wide")
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None or not legend.get_visible():
            continue
        box = legend.get_window_extent(renderer)
        hidden = sum(_covered(artist, box) for artist in ax.get_children()
                     if isinstance(artist, Line2D | Collection))
        if hidden:
            problems.append(f"{name}: the legend of '{ax.get_title() or ax.get_ylabel()}' "
                            f"hides {hidden} data point(s)")
    return problems


def _texts(fig) -> list[Text]:
    """The texts drawn: tick labels only of the ticks an axis draws (it keeps labels of
    ticks outside its view, never drawn), nothing invisible or empty."""
    undrawn = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            # the ticks within the view (matplotlib's own choice); none where the axis is off
            drawn = set(axis._update_ticks()) if ax.axison and axis.get_visible() else set()
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if tick not in drawn:
                    undrawn.update((tick.label1, tick.label2))
    out = []
    for text in fig.findobj(Text):
        if text in undrawn or not text.get_visible() or not text.get_text().strip():
            continue
        if text.get_alpha() == 0 or (text.axes is not None and not text.axes.get_visible()):
            continue
        out.append(text)
    return out


def _overlap(a, b) -> float:
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    return width * height if width > 0 and height > 0 else 0.0


def _covered(artist, box) -> int:
    """How many of the artist's data points the legend's box covers (display pixels)."""
    if not artist.get_visible():
        return 0
    try:
        if isinstance(artist, Line2D):
            points = artist.get_transform().transform(artist.get_xydata())
        else:
            offsets = artist.get_offsets()
            if len(offsets) == 0:
                return 0
            points = artist.get_offset_transform().transform(offsets)
    except (ValueError, TypeError):
        return 0
    points = points[np.isfinite(points).all(axis=1)]
    inside = ((points[:, 0] > box.x0) & (points[:, 0] < box.x1)
              & (points[:, 1] > box.y0) & (points[:, 1] < box.y1))
    return int(inside.sum())


def _say(text: Text) -> str:
    words = " ".join(text.get_text().split())
    return repr(words if len(words) <= 40 else words[:37] + "...")
