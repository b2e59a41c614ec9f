"""What text a figure shows, and the room it needs: names shortened to fit beside an axis
(`short_names`), a colour bar's numbers (`scale_labels`, which lay a heatmap out), and room at
a panel's left for wider value-axis numbers than its layout's (`LeftRoom`). Long column names,
category labels and colouring columns from users' tables ran off the figures' edges (an
80-character name lost its start; 18 store names cut at 22 characters read alike)."""

import collections
import textwrap

import numpy as np

NAME_CHARS = 36  # a column's name beside an axis, at most (an 80-character one ran off it)


def label_text(v) -> str:
    """A label value as a legend names it: 3, not 3.0; a missing number (NaN) '(missing)'."""
    return ("(missing)" if v != v else f"{v:g}") if isinstance(v, float) else str(v)


def literal(text: str) -> str:
    """`text` for matplotlib to draw as written: it reads text between two "$" as mathematics
    (a column named "net $ (a_b_c) $" failed its drawing, "Double subscript", and so its run,
    on every rerun: a probe). An escaped "\\$" is drawn as "$"."""
    return text.replace("$", r"\$")


def fill(text: str, width: int) -> str:
    """`textwrap.fill(text, width)`, but a closing parenthesis that would be split goes whole
    onto a line of its own ("accuracy of the reconstruction (validation" / "rows)" read as if
    the rows were a second thing measured)."""
    lines = textwrap.wrap(text, width) or [""]
    head, sep, tail = text.rpartition(" (")
    if lines[-1].endswith("(" + tail) or not (sep and tail.endswith(")") and len(tail) < width):
        return "\n".join(lines)  # (whole, or no such parenthesis)
    return textwrap.fill(head, width) + "\n(" + tail


def short_names(names, most: int = NAME_CHARS) -> list[str]:
    """`names` as a figure shows them, each at most `most` characters: a longer one keeps its
    start and its end, "…" between (names often differ only at their ends: "…, Store 12";
    cut at the end, 18 store names read alike); names that would still read alike keep their
    end alone, and any still alike get " (2)", " (3)", ... in order. Each drawn as written
    (`literal`)."""
    keep = most - 1  # characters beside the "…"

    def middle(text: str) -> str:
        head = (keep + 1) // 2
        return text if len(text) <= most else text[:head] + "\u2026" + text[head - keep :]

    out = [middle(str(n)) for n in names]
    alike = collections.Counter(out)
    out = [
        "\u2026" + str(n)[-keep:] if alike[o] > 1 and len(str(n)) > most else o
        for n, o in zip(names, out, strict=True)
    ]
    alike, seen = collections.Counter(out), collections.Counter[str]()
    for i, o in enumerate(out):
        seen[o] += 1
        if alike[o] > 1 and seen[o] > 1:
            out[i] = f"{o} ({seen[o]})"
    return [literal(o) for o in out]


def scale_labels(bar) -> tuple:
    """The numbers a colour bar shows (its ticks within its limits, as its formatter writes
    them, and the formatter's offset, "1e6"): what its width in a laid-out figure follows."""
    axis = bar.ax.yaxis if bar.orientation == "vertical" else bar.ax.xaxis
    lo, hi = sorted(axis.get_view_interval())
    ticks = np.asarray(axis.get_major_locator()(), float)
    tol = 1e-10 * max(hi - lo, abs(hi), 1e-300)
    shown = ticks[(ticks >= lo - tol) & (ticks <= hi + tol)]
    formatter = axis.get_major_formatter()
    return tuple(formatter.format_ticks(shown)), formatter.get_offset()


class LeftRoom:
    """Room at a laid-out panel's left for its value axis's numbers and label, however wide
    the numbers of a later run: `fit` moves the axes' left edge right by what wider numbers
    than the layout's would push the label past `MARGIN` of the figure's edge (a learning
    curve's, laid out once for no numbers, had "objective per example" cut off by "−0.00075").
    Measured with the renderer's text metrics, each number's width once (a sweep's runs share
    most: measured anew, 1 ms of each panel's drawing), not by a drawing."""

    MARGIN = 4.0  # points

    def __init__(self, ax):
        fig, self.ax = ax.figure, ax
        renderer = fig.canvas.get_renderer()
        ax.get_tightbbox(renderer)  # ticks and label placed for the layout
        self.left = fig.subplotpars.left
        self.font = ax.yaxis.get_major_ticks()[0].label1.get_fontproperties()
        self._widths: dict[str, float] = {}  # a number as written -> its width, pixels
        lo, hi = sorted(ax.get_ylim())
        shown = [t for t in ax.get_yticks() if lo <= t <= hi]
        self.width = self._widest(ax.yaxis.get_major_formatter().format_ticks(shown))
        self.spare = ax.yaxis.label.get_window_extent(renderer).x0 - self.MARGIN * fig.dpi / 72

    def _widest(self, labels) -> float:
        renderer = self.ax.figure.canvas.get_renderer()
        for s in labels:
            if s not in self._widths:
                self._widths[s] = renderer.get_text_width_height_descent(s, self.font, False)[0]
        return max((self._widths[s] for s in labels), default=0.0)  # pixels

    def fit(self, ticks) -> float:
        """Sets and returns the left edge (figure fraction) for value-axis `ticks`."""
        fig = self.ax.figure
        widest = self._widest(self.ax.yaxis.get_major_formatter().format_ticks(ticks))
        left = self.left + max(0.0, widest - self.width - self.spare) / fig.bbox.width
        if left != fig.subplotpars.left:
            fig.subplots_adjust(left=left)
        return left
