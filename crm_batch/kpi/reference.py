"""The README's KPI reference table, generated from the registry.

``python -m crm_batch.kpi.reference`` prints it; a test checks that the README holds
exactly this table, so the documentation cannot drift from the code.
"""

from __future__ import annotations

from crm_batch.kpi.definitions import OPTIONAL_TABLES, KpiDefinition, registry
from crm_batch.kpi.playbook import ACTIONS, GROUP_ACTIONS, label

START_MARKER = "<!-- kpi-reference:start (generated: python -m crm_batch.kpi.reference) -->"
END_MARKER = "<!-- kpi-reference:end -->"

_DIRECTION = {"up": "higher", "down": "lower", "neutral": "—"}


def _needs(kpi: KpiDefinition) -> str:
    """The optional tables a KPI reads: needed ones plain, ones it can do without in
    parentheses; a dash when it reads customers and orders only."""
    needed = [t for t in OPTIONAL_TABLES if t in kpi.needs]
    optional = [f"({t})" for t in OPTIONAL_TABLES if t in kpi.partial_without]
    return ", ".join(needed + optional) or "—"


def markdown_reference() -> str:
    """One Markdown table row per KPI: name, labels, unit, which way is good, the
    optional tables it needs, definition."""
    lines = [
        START_MARKER,
        "| KPI (JSON key) | en | zh-CN | unit | good | needs | definition |",
        "|---|---|---|---|---|---|---|",
    ]
    for kpi in registry().values():
        definition = kpi.definition_en.replace("|", "\\|")
        lines.append(
            f"| `{kpi.name}` | {kpi.label_en} | {kpi.label_zh} | {kpi.unit} | "
            f"{_DIRECTION[kpi.direction]} | {_needs(kpi)} | {definition} |"
        )
    lines += [
        "",
        "Playbook: the next best action of each value x lifecycle group (seeds' 8 groups).",
        "",
        "| group | action (en) | 行动 (zh-CN) |",
        "|---|---|---|",
    ]
    for group, key in GROUP_ACTIONS.items():
        action = ACTIONS[key]
        lines.append(
            f"| {label(group, 'en')} (`{group}`) | **{action.title_en}**: {action.detail_en} | "
            f"**{action.title_zh}**:{action.detail_zh} |"
        )
    lines.append(END_MARKER)
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_reference())
