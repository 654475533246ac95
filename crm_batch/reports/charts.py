"""The report's charts as SVG ``data:`` URIs (matplotlib, Agg backend, vector output).

Colours are the Okabe-Ito palette (safe for the common colour-vision deficiencies);
labels come from the caller in the report's language; Chinese labels use Noto Sans CJK
SC. Text is converted to paths inside the SVG, so the PDF never depends on a font
being found while the SVG is drawn, and the output is deterministic (fixed hash salt,
no date).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

#: Okabe-Ito colours: blue, orange, bluish green, vermillion, sky blue, reddish purple.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#F0E442")
_FONTS = ["Noto Sans CJK SC", "Noto Sans", "DejaVu Sans"]


def _style() -> dict[str, object]:
    return {
        "font.family": "sans-serif",
        "font.sans-serif": _FONTS,
        "font.size": 8,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
        "svg.fonttype": "path",
        "svg.hashsalt": "crm-batch",
        "axes.unicode_minus": False,
    }


def _data_uri(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(figure)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def pareto_curve(
    revenues: Sequence[float], top_share: float, x_label: str, y_label: str, marker: str
) -> str:
    """Cumulative revenue share against the share of customers ranked by revenue."""
    ranked = sorted((r for r in revenues if r > 0), reverse=True)
    with plt.rc_context(_style()):
        figure, axes = plt.subplots(figsize=(6.2, 2.8))
        total = sum(ranked)
        if ranked and total > 0:
            xs, ys, running = [0.0], [0.0], 0.0
            for index, revenue in enumerate(ranked, start=1):
                running += revenue
                xs.append(index / len(ranked))
                ys.append(running / total)
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
    with plt.rc_context(_style()):
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
    with plt.rc_context(_style()):
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
