"""The short summary in a report's e-mail: a few headline KPIs with their change and the
top findings, as plain text and as HTML, in the report's (= the recipient's) language.

Delivery does not compute anything here: the jobs layer builds a :class:`ReportSummary`
from what the report shows (:mod:`crm_batch.jobs.summaries`) and hands it over on the
:class:`~crm_batch.delivery.plan.ReportFile`; this module only lays it out. Every text
is escaped for HTML, so a team or KPI label cannot inject markup into the mail.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

#: Most headline KPIs and findings a mail shows (the PDF has the rest).
MAX_HEADLINES = 5
MAX_FINDINGS = 3

_TEXTS: dict[str, tuple[str, str]] = {
    "headline": ("主要指标", "Headline figures"),
    "findings": ("主要发现", "Top findings"),
}


@dataclass(frozen=True)
class Headline:
    """One KPI of the summary: its label, value and change, already formatted."""

    label: str
    value: str
    change: str = ""  # e.g. "+3.2 pp", "" when there is nothing to compare with


@dataclass(frozen=True)
class ReportSummary:
    """What a report's mail says about it: headline KPIs (``compared_with`` names what
    the change is measured against, e.g. "2026Q1") and the top findings' sentences."""

    headlines: tuple[Headline, ...]
    findings: tuple[str, ...] = ()
    compared_with: str = ""


def _text(key: str, language: str) -> str:
    zh, en = _TEXTS[key]
    return zh if language == "zh-CN" else en


def _colon(language: str) -> str:
    return "\uff1a" if language == "zh-CN" else ":"


def _heading(summary: ReportSummary, language: str) -> str:
    title = _text("headline", language)
    if not summary.compared_with:
        return title
    if language == "zh-CN":
        return f"{title}(变化对比 {summary.compared_with})"
    return f"{title} (change vs {summary.compared_with})"


def summary_text(summary: ReportSummary, language: str) -> str:
    """The summary as plain text lines (ending with a blank line), or "" when empty."""
    lines: list[str] = []
    headlines = summary.headlines[:MAX_HEADLINES]
    if headlines:
        lines.append(_heading(summary, language) + _colon(language))
        for item in headlines:
            change = f" ({item.change})" if item.change else ""
            lines.append(f"  {item.label}: {item.value}{change}")
        lines.append("")
    findings = summary.findings[:MAX_FINDINGS]
    if findings:
        lines.append(_text("findings", language) + _colon(language))
        lines += [f"  - {finding}" for finding in findings]
        lines.append("")
    return "\n".join(lines) + ("\n" if lines else "")


def summary_html(summary: ReportSummary, language: str) -> str:
    """The summary as an HTML fragment (a table and a list), every text escaped."""
    parts: list[str] = []
    headlines = summary.headlines[:MAX_HEADLINES]
    if headlines:
        parts.append(f"<h3>{html.escape(_heading(summary, language))}</h3>")
        parts.append('<table cellpadding="4" style="border-collapse:collapse">')
        for item in headlines:
            parts.append(
                f"<tr><td>{html.escape(item.label)}</td>"
                f'<td style="text-align:right"><b>{html.escape(item.value)}</b></td>'
                f'<td style="text-align:right">{html.escape(item.change)}</td></tr>'
            )
        parts.append("</table>")
    findings = summary.findings[:MAX_FINDINGS]
    if findings:
        parts.append(f"<h3>{html.escape(_text('findings', language))}</h3><ul>")
        parts += [f"<li>{html.escape(finding)}</li>" for finding in findings]
        parts.append("</ul>")
    return "\n".join(parts)
