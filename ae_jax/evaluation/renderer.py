"""Draws the figures of `figures.py`, reusing one matplotlib figure per layout.

Building a figure's axes, ticks and labels costs most of its drawing time, and a sweep draws the
same few layouts for every run: a `Renderer` keeps each layout it has built (keyed by what fixes
the axes: the loss terms, the columns, the label categories, the image shape) and swaps the data
for the next run. Object API only (no pyplot); one Renderer belongs to one thread.
"""

import textwrap

import numpy as np

from ae_jax.evaluation import canvas, curves, figure_text

# A bar chart's mark of a value it cannot draw as a bar: kind -> (marker, it as axis-label text)
_CUT_MARKERS = {"value below the axis": ("<", "\u25c0"), "not a number": ("x", "\u00d7")}
_FONT = canvas.FONT


class Renderer:
    """Draws figures to PNG files; see the module docstring."""

    def __init__(self):
        self._templates: dict[tuple, tuple] = {}  # layout key -> what its build() returned

    def warm_up(self) -> None:
        """Imports matplotlib now (a worker does, before its first job)."""
        canvas.figure((1, 1))

    def _template(self, key: tuple, build):
        if key not in self._templates:
            self._templates[key] = build()
        return self._templates[key]

    # ---- line plots ----

    def learning_curves(self, path: str, history: list[dict], units: dict[str, str]) -> None:
        """`curves.draw`: one panel per loss term, train and eval against epoch."""
        curves.draw(self._template, path, history, units)

    # ---- scatter ----

    def codes_2d(
        self,
        path: str,
        points: np.ndarray,
        axis_names,
        labels,
        title: str,
        max_categories: int,
        colour_name: str = "label",
    ) -> None:
        """Scatter of 2-D points coloured by `labels` (named `colour_name`): categories get a
        legend, numbers a colour bar (a missing number, NaN, a grey point, and the bar says so)."""
        labels = None if labels is None else np.asarray(labels)
        values = () if labels is None else tuple(np.unique(labels).tolist())
        continuous = (
            labels is not None and labels.dtype.kind in "iuf" and len(values) > max_categories
        )
        rest = [v for v in values if str(v).startswith("other (")]  # figures.rare_grouped's
        # Every value a colour (text labels come grouped to max_categories); "other" last, grey.
        groups = (
            () if labels is None or continuous else tuple(sorted(values, key=rest.__contains__))
        )
        # Shortened (`figure_text.short_names`): a legend's (title and names) beside the axes, a
        # colour bar's along its height.
        names = figure_text.short_names([figure_text.label_text(v) for v in groups], 22)
        colour_name = figure_text.short_names([colour_name], 28 if continuous else 22)[0]
        if continuous and np.isnan(labels.astype(float)).any():  # drawn grey, and said
            colour_name = f"{colour_name} (grey: missing)"

        def build():
            from matplotlib import colormaps, ticker

            # A legend beside the axes never covers points (its place is fixed before any).
            wide = bool(groups) and (len(groups) > 10 or max(map(len, [*names, colour_name])) > 12)
            fig, axes = canvas.figure((7.4 if wide else 6.3 if groups else 5.2, 4.4))
            ax = axes[0][0]
            kw = {"s": 6, "alpha": 0.7, "linewidths": 0}
            extra = []  # dynamic besides the points: the colour bar or the legend
            if labels is None:
                sets = [ax.scatter([], [], **kw)]
            elif continuous:
                bad = colormaps["viridis"].with_extremes(bad="0.6")
                sets = [ax.scatter([0.0], [0.0], c=[0.0], cmap=bad, plotnonfinite=True, **kw)]
                extra.append(fig.colorbar(sets[0], ax=ax, label=colour_name).ax)
            else:
                sets = [
                    ax.scatter([], [], color=c, label=name, **kw)
                    for name, c in zip(names, canvas.group_colours(groups, rest), strict=True)
                ]
                legend = ax.legend(
                    fontsize=_FONT,
                    markerscale=2,
                    title=colour_name,
                    title_fontsize=_FONT,
                    loc="center left",
                    bbox_to_anchor=(1.02, 0.5),
                )
                extra.append(legend)
            ax.set_xlabel(axis_names[0])
            ax.set_ylabel(axis_names[1])
            # At most 5 x ticks: "-0.0075" or "-100000" at matplotlib's default 9 ran together.
            ax.xaxis.set_major_locator(ticker.MaxNLocator(5, steps=canvas.Y_STEPS))
            ax.set_axisbelow(True)  # the axes are static: drawn before (under) the points
            right = 0.66 if wide else 0.76 if groups else 0.93 if not continuous else 0.88
            fig.subplots_adjust(right=right, bottom=0.12, top=0.92)  # left: per y range, below
            dynamic = [*sets, *extra, *canvas.spines(ax)]
            return canvas.Template(fig, dynamic, keyed=[ax.xaxis, ax.yaxis]), ax, sets

        template, ax, sets = self._template(
            ("codes", groups, continuous, tuple(axis_names), colour_name), build
        )
        if labels is None:
            sets[0].set_offsets(points)
        elif continuous:
            sets[0].set_offsets(points)
            sets[0].set_array(labels.astype(float))
            sets[0].set_clim(float(np.nanmin(labels)), float(np.nanmax(labels)))
        else:
            for collection, v in zip(sets, groups, strict=True):
                collection.set_offsets(points[np.isnan(labels) if v != v else labels == v])
        x, y = (canvas.data_limits(points[:, j]) for j in (0, 1))
        ax.set_xlim(*canvas.snapped(ax.xaxis.get_major_locator(), *x))
        ax.set_ylim(*canvas.snapped(ax.yaxis.get_major_locator(), *y))
        # Room for the widest y tick label, then the axis label ("code PC2" was cut off).
        chars = max(map(len, ax.yaxis.get_major_formatter().format_ticks(ax.get_yticks())))
        template.fig.subplots_adjust(left=(0.45 + 0.085 * chars) / template.fig.get_figwidth())
        ax.set_title(figure_text.literal(title), fontsize=_FONT + 1)
        # The axes' place and the title fix the rest of the static layer.
        canvas.save(template, path, (ax.get_xlim(), ax.get_ylim()), base=(chars, title))

    # ---- bars ----

    def per_feature_bars(
        self,
        path: str,
        columns: list[str],
        model: np.ndarray,
        baseline: np.ndarray | None,
        value_label: str,
        title: str,
        log: bool = True,
        baseline_label: str = "PCA",
    ) -> None:
        """Horizontal bars per column (names readable on the y axis) of the model and, beside
        them, a baseline, on a log or a [0, 1] value axis. A value the axis cannot show as a
        bar (below its left end, or NaN) is marked there, and the axis label says how."""
        names = tuple(figure_text.short_names(columns))
        # (its 66 characters ran off the right)
        value_label = figure_text.literal(figure_text.fill(value_label, 46))

        def build():
            from matplotlib.collections import PolyCollection

            d = len(names)
            pos = np.arange(d)
            width = 0.4 if baseline is not None else 0.8
            fig, axes = canvas.figure((6.4, max(2.6, 0.24 * d + 1.4)), layout="constrained")
            ax = axes[0][0]
            shift = width / 2 if baseline is not None else 0
            labels = ["model"] + ([baseline_label] if baseline is not None else [])
            rows = [pos - shift, pos + shift][: len(labels)]  # each series' bar centres
            # A series' bars: one artist per run, not per bar (36 bars: 7.0 -> 5.5 ms a chart).
            bars = [
                ax.add_collection(
                    PolyCollection(
                        [], facecolors=f"C{i}", edgecolors="none", linewidths=0, label=label
                    )
                )
                for i, label in enumerate(labels)
            ]
            # A value below the log axis's floor (or not a number) gets a marker at the floor
            # in its bar's colour: with no bar at all it would read as a missing value.
            style = {"s": 30, "clip_on": False, "zorder": 3}
            marks = [  # per series, kind -> its markers
                {
                    kind: ax.scatter([], [], marker=shape, color=c.get_facecolor()[0], **style)
                    for kind, (shape, _) in _CUT_MARKERS.items()
                }
                for c in bars
            ]
            if log:
                from matplotlib import ticker

                ax.set_xscale("log")
                ax.xaxis.set_major_locator(ticker.LogLocator(numticks=6))
                ax.xaxis.set_minor_formatter(ticker.NullFormatter())
            else:
                ax.set_xlim(0.0, 1.05)
            ax.set_yticks(pos)
            ax.set_yticklabels(names, fontsize=_FONT)
            ax.set_ylim(d - 0.5, -0.5)  # the first column at the top
            ax.tick_params(axis="x", labelsize=_FONT)
            every = ", ".join(f"{m} {k}" for k, (_, m) in _CUT_MARKERS.items())  # room for all
            ax.set_xlabel(f"{value_label}\n{every}", fontsize=_FONT)
            fig.suptitle(figure_text.literal(figure_text.fill(title, 80)), fontsize=_FONT + 1)
            ax.legend(
                fontsize=_FONT, ncols=2, loc="lower left", bbox_to_anchor=(0.0, 1.0), frameon=False
            )
            ax.grid(axis="x", alpha=0.3)
            ax.set_axisbelow(True)  # the axes and grid are static: drawn under the bars
            # Static: names, title, legend (above the axes), value axis (`static` below).
            dynamic = [*bars, *(m for k in marks for m in k.values()), *canvas.spines(ax)]
            return canvas.Template(fig, dynamic, relayout=True), ax, bars, marks, rows, width

        template, ax, bars, marks, rows, width = self._template(
            ("bars", names, baseline is not None, value_label, title, log, baseline_label), build
        )
        widths = [np.asarray(model, float)] + (
            [np.asarray(baseline, float)] if baseline is not None else []
        )
        floor = 0.0
        if log:  # at most 6 decades below the largest bar; smaller ones (exact 0s) sit there
            every = np.concatenate([np.ravel(w) for w in widths])
            floor, right = canvas.log_limits(ax.xaxis.get_major_locator(), every)
            ax.set_xlim(floor, right)
        cut = {kind: False for kind in _CUT_MARKERS}
        for collection, by_kind, row, w in zip(bars, marks, rows, widths, strict=True):
            # A bar from the axis's left end (0, or the log axis's floor) to its value.
            right = np.maximum(np.nan_to_num(w), floor)
            lo, hi = row - width / 2, row + width / 2
            left = np.full_like(right, floor)
            collection.set_verts(
                np.stack(
                    [np.stack([left, right, right, left], 1), np.stack([lo, lo, hi, hi], 1)], 2
                )
            )
            for kind, points in by_kind.items():
                where = np.isnan(w) if kind == "not a number" else w < floor  # (NaN < x: False)
                cut[kind] |= bool(where.any())
                points.set_offsets(np.stack([np.full(where.sum(), floor), row[where]], axis=1))
        notes = [f"{_CUT_MARKERS[k][1]} {k}" for k, present in cut.items() if present]
        ax.set_xlabel(value_label + (f"\n{', '.join(notes)}" if notes else ""), fontsize=_FONT)
        canvas.save(template, path, static=(ax.get_xlim(), ax.get_xlabel()))

    # ---- images ----

    def heatmap(
        self,
        path: str,
        values: np.ndarray,
        columns: list[str],
        row_names: list[str],
        title: str,
        cmap: str,
        symmetric: bool,
        bar_label: str,
        x_label: str = "",
    ) -> None:
        """values (R, D) as a heatmap: the D named columns down y, the R named rows along x."""
        columns, title = figure_text.short_names(columns), figure_text.literal(title)
        names = (tuple(columns), tuple(row_names))
        key = ("heat", values.shape, names, title, cmap, symmetric, x_label)

        def build():
            d, r = len(columns), len(row_names)
            fig, axes = canvas.figure(
                (max(4.2, 0.42 * r + 3.4), max(2.6, 0.24 * d + 1.4)), layout="constrained"
            )
            ax = axes[0][0]
            im = ax.imshow(np.zeros((d, r)), aspect="auto", cmap=cmap, interpolation="nearest")
            ax.set_yticks(range(d), columns, fontsize=_FONT)
            ax.set_xticks(range(r), row_names, fontsize=_FONT, rotation=90 if r > 12 else 0)
            ax.set_xlabel(x_label, fontsize=_FONT)
            # Over the figure, not the axes, which long names push right (off went its end).
            chars = int(fig.get_figwidth() * 72 / ((_FONT + 1) * 0.6))
            fig.suptitle(textwrap.fill(title, max(30, chars)), fontsize=_FONT + 1)
            bar = fig.colorbar(im, ax=ax, shrink=min(1.0, 6.0 / max(0.24 * d + 1.4, 1.0)))
            bar.set_label(bar_label, fontsize=_FONT)
            bar.ax.tick_params(labelsize=_FONT)
            # Static: the names on both axes and the title; the colours and their scale change,
            # and with them the width of the scale's numbers, which lays the figure out.
            dynamic = [im, bar.ax, *canvas.spines(ax)]  # the spines are drawn over the image
            return canvas.Template(fig, dynamic, relayout=True), im, bar

        template, im, bar = self._template(key, build)
        im.set_data(np.asarray(values).T)
        finite = values[np.isfinite(values)]
        if symmetric:
            lim = float(np.max(np.abs(finite))) if finite.size else 1.0
            im.set_clim(-(lim or 1.0), lim or 1.0)
        elif finite.size:
            lo, hi = float(finite.min()), float(finite.max())
            im.set_clim(lo, hi if hi > lo else lo + 1.0)
        canvas.save(template, path, figure_text.scale_labels(bar))

    def mosaic(
        self, path: str, image: np.ndarray, title: str, extent=None, axis_names=None
    ) -> None:
        """One grey or RGB image (a tiled mosaic, values in [0, 1]) with a title."""
        key = ("mosaic", image.shape, title, extent is not None, tuple(axis_names or ()))
        h, w = image.shape[:2]

        def build():
            # The axes box is the image's own size and shape (in inches, margins fixed), so no
            # band of empty figure is left above or below it; a wide title widens the figure.
            px = min(8.0, 640.0 / w, 640.0 / h)  # screen pixels per image pixel: <= 6.4 in
            img_w, img_h = w * px / canvas.DPI, h * px / canvas.DPI
            left, bottom, right = (0.7, 0.55, 0.2) if axis_names else (0.1, 0.1, 0.1)
            lines = title.split("\n")
            top = 0.4 + 0.2 * (len(lines) - 1)  # the title's lines
            fig_w = max(img_w + left + right, 0.085 * max(map(len, lines)) + 0.4, 3.0)
            fig_h = img_h + bottom + top
            fig, axes = canvas.figure((fig_w, fig_h))
            ax = axes[0][0]
            x0 = left + (fig_w - left - right - img_w) / 2
            ax.set_position((x0 / fig_w, bottom / fig_h, img_w / fig_w, img_h / fig_h))
            im = ax.imshow(
                np.zeros(image.shape),
                cmap="gray",
                vmin=0,
                vmax=1,
                interpolation="nearest",
                aspect="auto",
                extent=extent,
            )
            if axis_names:
                ax.set_xlabel(axis_names[0])
                ax.set_ylabel(axis_names[1])
            else:
                ax.set_axis_off()
            ax.set_title(figure_text.literal(title), fontsize=_FONT + 1)
            # Static: the title; the axes follow `extent` (a latent grid's span) when drawn.
            dynamic = [im, ax.xaxis, ax.yaxis, *canvas.spines(ax)] if axis_names else [im]
            return canvas.Template(fig, dynamic), im

        template, im = self._template(key, build)
        im.set_data(np.clip(image, 0, 1))
        if extent is not None:
            im.set_extent(extent)
        canvas.save(template, path)
