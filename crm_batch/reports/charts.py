"""The report's charts as PNG ``data:`` URIs at print resolution (matplotlib, Agg).

Colours are the Okabe-Ito palette (safe for the common colour-vision deficiencies);
labels come from the caller in the report's language; Chinese labels use Noto Sans CJK
SC, handed to matplotlib by :mod:`crm_batch.reports.chart_fonts`. PNG rather than SVG:
WeasyPrint drew each SVG chart path by path (text converted to glyph outlines), a third
of a report's render time; a 200 dpi image prints as sharp on A4 and embeds in a
fraction of that. The images carry no date or version, so the output is deterministic.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter
from matplotlib.transforms import Bbox
from PIL import Image

from crm_batch.reports.chart_fonts import CJK_FAMILY, glyph_check, register_fonts

#: Okabe-Ito colours: blue, orange, bluish green, vermillion, sky blue, reddish purple.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#F0E442")
_FONTS = [CJK_FAMILY, "Noto Sans", "DejaVu Sans"]


def _style() -> dict[str, object]:
    return {
        "font.family": "sans-serif",
        "font.sans-serif": _FONTS,
        "font.size": 8,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
        "axes.unicode_minus": False,
    }


@contextmanager
def _drawing() -> Iterator[None]:
    """Every chart is drawn inside this: the CJK fonts registered with matplotlib, the
    report style, and missing glyphs or other matplotlib warnings turned into log lines."""
    register_fonts()
    with glyph_check(), plt.rc_context(_style()):
        yield


#: Chart resolution: a 6.2 in wide chart is 1,240 pixels, print quality on A4.
DPI = 200


def _data_uri(figure: Figure, *, crop: bool = True) -> str:
    """The figure as an opaque PNG ``data:`` URI, cropped to its contents with ``crop``.

    One drawing: the crop box is measured before drawing and handed to ``savefig``
    (``bbox_inches="tight"`` draws the figure twice, once to measure), and the raw RGBA
    pixels are encoded once, as RGB without an alpha channel (WeasyPrint would split an
    RGBA image into a colour image and a mask, encoding twice). Compression is light:
    WeasyPrint decodes the image and compresses it again for the PDF.
    """
    figure.set_dpi(DPI)
    width, height = figure.get_size_inches()
    box = Bbox.from_bounds(0, 0, width, height)
    if crop:  # matplotlib's tight box with its default padding, measured without drawing
        box = figure.get_tightbbox(figure.canvas.get_renderer()).padded(CROP_PAD)
    raw = io.BytesIO()
    figure.savefig(raw, format="rgba", dpi=DPI, bbox_inches=box, facecolor="white")
    plt.close(figure)
    pixels = raw.getvalue()
    columns = int(box.width * DPI)
    rows = len(pixels) // (4 * columns)
    if rows * columns * 4 != len(pixels):  # the canvas size rule is matplotlib's: check it
        raise RuntimeError(f"chart of {len(pixels)} bytes is not {columns} pixels wide")
    image = Image.frombuffer("RGBA", (columns, rows), pixels, "raw", "RGBA", 0, 1)
    opaque = io.BytesIO()
    image.convert("RGB").save(opaque, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(opaque.getvalue()).decode("ascii")


#: White margin around a cropped chart, in inches (matplotlib's ``pad_inches`` default).
CROP_PAD = 0.1


#: Most vertices of the Pareto curve (see :func:`pareto_curve`).
PARETO_POINTS = 400


def pareto_curve(
    revenues: Sequence[float], top_share: float, x_label: str, y_label: str, marker: str
) -> str:
    """Cumulative revenue share against the share of customers ranked by revenue.

    The curve is drawn through at most :data:`PARETO_POINTS` points evenly spaced in
    rank (it is concave, so straight segments between them are invisible at this size):
    a million customers would otherwise put a million vertices into the SVG and tens of
    megabytes into the report. The marked share uses every customer.
    """
    ranked = sorted((r for r in revenues if r > 0), reverse=True)
    with _drawing():
        figure, axes = plt.subplots(figsize=(6.2, 2.8))
        total = sum(ranked)
        if ranked and total > 0:
            cumulative = np.concatenate(([0.0], np.cumsum(ranked)))
            ranks = np.unique(np.linspace(0, len(ranked), PARETO_POINTS + 1).round().astype(int))
            xs = ranks / len(ranked)
            ys = cumulative[ranks] / total
            axes.plot(xs, ys, color=PALETTE[0], linewidth=1.6)
            axes.fill_between(xs, ys, color=PALETTE[4], alpha=0.25, linewidth=0)
            cut = max(1, -(-len(ranked) * top_share // 1))
            share = sum(ranked[: int(cut)]) / total
            axes.axvline(top_share, color=PALETTE[3], linestyle="--", linewidth=1)
            axes.axhline(share, color=PALETTE[3], linestyle=":", linewidth=1)
            axes.annotate(
                f"{marker}: {share * 100:.0f}%",
                (top_share, share),
                xytext=(8, -14),
                textcoords="offset points",
                color=PALETTE[3],
            )
        axes.plot([0, 1], [0, 1], color="#999999", linewidth=0.8)
        axes.set_xlim(0, 1)
        axes.set_ylim(0, 1.02)
        axes.xaxis.set_major_formatter(PercentFormatter(1.0))
        axes.yaxis.set_major_formatter(PercentFormatter(1.0))
        axes.set_xlabel(x_label)
        axes.set_ylabel(y_label)
        return _data_uri(figure)


def distribution_bars(
    labels: Sequence[str],
    counts: Sequence[float],
    revenue_shares: Sequence[float],
    count_label: str,
    share_label: str,
) -> str:
    """Customers per group (bars, left) beside each group's revenue share (bars, right)."""
    with _drawing():
        figure, (left, right) = plt.subplots(1, 2, figsize=(6.2, 2.2))
        positions = range(len(labels))
        left.barh(positions, counts, color=PALETTE[0])
        right.barh(positions, revenue_shares, color=PALETTE[1])
        for axes, values, title in ((left, counts, count_label), (right, revenue_shares, "")):
            axes.set_yticks(list(positions), labels)
            axes.invert_yaxis()
            if title:
                axes.set_xlabel(title)
            for position, value in zip(positions, values, strict=True):
                shown = f"{value * 100:.0f}%" if axes is right else f"{value:,.0f}"
                axes.annotate(shown, (value, position), xytext=(3, -3), textcoords="offset points")
        right.set_yticklabels([])
        right.set_xlabel(share_label)
        right.xaxis.set_major_formatter(PercentFormatter(1.0))
        right.set_xlim(0, max([*revenue_shares, 0.01]) * 1.25)
        left.set_xlim(0, max([*counts, 1]) * 1.25)
        return _data_uri(figure)


def funnel(stages: Sequence[str], values: Sequence[float], x_label: str) -> str:
    """A horizontal funnel: one bar per stage with its count and share of the first."""
    with _drawing():
        figure, axes = plt.subplots(figsize=(6.2, 1.9))
        positions = range(len(stages))
        colours = [PALETTE[i % len(PALETTE)] for i in positions]
        axes.barh(positions, values, color=colours)
        axes.set_yticks(list(positions), stages)
        axes.invert_yaxis()
        first = values[0] if values and values[0] else 0
        for position, value in zip(positions, values, strict=True):
            share = f" ({value / first * 100:.0f}%)" if first else ""
            axes.annotate(
                f"{value:,.0f}{share}",
                (value, position),
                xytext=(3, -3),
                textcoords="offset points",
            )
        axes.set_xlim(0, max([*values, 1]) * 1.3)
        axes.set_xlabel(x_label)
        return _data_uri(figure)


def heatmap(
    values: Sequence[Sequence[float | None]],
    row_labels: Sequence[str],
    column_labels: Sequence[str],
    x_label: str,
    y_label: str,
    *,
    percent: bool = False,
    missing: str = "",
) -> str:
    """A grid of cells shaded by value (blue scale) with each value written in its cell.

    ``percent`` writes fractions as whole percentages and fixes the scale at 0..1
    (cohort retention); otherwise cells are counts scaled to the largest (tier
    migration). Missing values (None/NaN: not yet observable) stay blank with
    ``missing`` written in them.
    """
    grid = np.array(
        [[np.nan if v is None else float(v) for v in row] for row in values], dtype="float64"
    ).reshape(len(row_labels), len(column_labels))
    finite = grid[np.isfinite(grid)]
    top = 1.0 if percent else max(float(finite.max()) if finite.size else 1.0, 1.0)
    colours = LinearSegmentedColormap.from_list("blues", ["#f2f5f8", PALETTE[4], PALETTE[0]])
    height = max(1.6, 0.26 * len(row_labels) + 0.9)
    with _drawing():
        figure, axes = plt.subplots(figsize=(6.2, height))
        axes.imshow(np.ma.masked_invalid(grid), cmap=colours, vmin=0, vmax=top, aspect="auto")
        for (row, column), value in np.ndenumerate(grid):
            if np.isfinite(value):
                shown = f"{value * 100:.0f}%" if percent else f"{value:,.0f}"
                dark = value / top > 0.55
                axes.text(
                    column, row, shown, ha="center", va="center", fontsize=6.5,
                    color="white" if dark else "#1f2933",
                )  # fmt: skip
            elif missing:
                axes.text(column, row, missing, ha="center", va="center", color="#999999")
        axes.set_xticks(range(len(column_labels)), column_labels)
        axes.set_yticks(range(len(row_labels)), row_labels)
        axes.tick_params(length=0)
        for side in ("top", "right", "bottom", "left"):
            axes.spines[side].set_visible(False)
        axes.set_xlabel(x_label)
        axes.set_ylabel(y_label)
        return _data_uri(figure)


def small_multiples(
    panels: Sequence[tuple[str, Sequence[float | None], float | None]],
    x_labels: Sequence[str],
    *,
    percent_panels: Sequence[bool] = (),
    columns: int = 4,
) -> str:
    """One small line chart per KPI over the same periods (trend lines).

    ``panels`` holds (title, values, target): a value may be None/NaN (no data: a
    gap in the line); a target, when given, is drawn as a dashed line. Panel *i* shows
    percentages when ``percent_panels[i]`` is true.
    """
    rows = max(1, -(-len(panels) // columns))
    with _drawing():
        figure, grid = plt.subplots(
            rows, columns, figsize=(6.4, 1.9 * rows + 0.2), squeeze=False, sharex=True
        )
        positions = list(range(len(x_labels)))
        short = [label[2:] if len(label) == 6 else label for label in x_labels]  # 26Q2
        grid[0][0].set_xticks(positions, short)  # shared by every panel: set once
        for index, axes in enumerate(grid.flat):
            if index >= len(panels):
                axes.set_visible(False)
                continue
            title, values, target = panels[index]
            ys = [math.nan if v is None else float(v) for v in values]
            axes.plot(positions, ys, color=PALETTE[0], linewidth=1.4, marker="o", markersize=2.5)
            if target is not None and math.isfinite(target):
                axes.axhline(target, color=PALETTE[3], linestyle="--", linewidth=0.9)
            if index < len(percent_panels) and percent_panels[index]:
                axes.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
            else:
                axes.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: _compact(v)))
            axes.set_title(title, fontsize=7, loc="left")
            axes.yaxis.set_major_locator(MaxNLocator(nbins=3))
            # quarters only under the bottom panels
            below = index >= len(panels) - columns
            axes.tick_params(labelsize=6, labelbottom=below)
            axes.tick_params(axis="x", labelrotation=60)
        # fixed margins and spacing (room for the axis numbers, titles and rotated
        # quarters) instead of tight_layout and cropping, which draw it twice more
        height = 1.9 * rows + 0.2
        figure.subplots_adjust(
            left=0.07, right=0.99, top=1 - 0.2 / height, bottom=0.42 / height,
            hspace=0.55 if rows > 1 else 0.2, wspace=0.42,
        )  # fmt: skip
        return _data_uri(figure, crop=False)


def _compact(value: float) -> str:
    """An axis number in few characters: 1.2M, 35k, 820, 4.5."""
    size = abs(value)
    if size >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if size >= 10_000:
        return f"{value / 1_000:.0f}k"
    if size >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.1f}"


def attainment_bars(
    labels: Sequence[str], attainments: Sequence[float | None], x_label: str
) -> str:
    """Target attainment per KPI as horizontal bars with the 100 % line.

    Bars at or above 100 % are bluish green, below it vermillion (distinct for the
    common colour-vision deficiencies, and each bar also carries its number).
    A missing attainment (undefined ratio) draws no bar and a dash.
    """
    shown = [math.nan if a is None else float(a) for a in attainments]
    with _drawing():
        figure, axes = plt.subplots(figsize=(6.2, 0.32 * len(labels) + 0.7))
        positions = range(len(labels))
        widths = [0.0 if math.isnan(a) else a for a in shown]
        colours = [PALETTE[2] if a >= 1 else PALETTE[3] for a in widths]
        axes.barh(positions, widths, color=colours, height=0.6)
        for position, value in zip(positions, shown, strict=True):
            text = "–" if math.isnan(value) else f"{value * 100:.0f}%"
            axes.annotate(
                text,
                (0 if math.isnan(value) else value, position),
                xytext=(3, -3),
                textcoords="offset points",
            )
        axes.axvline(1.0, color="#5f6b76", linestyle="--", linewidth=0.9)
        axes.set_yticks(list(positions), labels)
        axes.invert_yaxis()
        finite = [a for a in shown if not math.isnan(a)]
        axes.set_xlim(0, max([*finite, 1.0]) * 1.2)
        axes.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        axes.set_xlabel(x_label)
        return _data_uri(figure)
