"""The README documents what the code does (tests that check the docs)."""

from pathlib import Path

from crm_batch.kpi.reference import END_MARKER, START_MARKER, markdown_reference

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_kpi_reference_matches_the_registry() -> None:
    text = README.read_text(encoding="utf-8")
    start, end = text.index(START_MARKER), text.index(END_MARKER) + len(END_MARKER)
    assert text[start:end] == markdown_reference(), (
        "README's KPI reference is stale: paste `python -m crm_batch.kpi.reference`"
    )


def test_readme_documents_every_command_and_exit_code() -> None:
    from crm_batch.cli import main
    from crm_batch.errors import ExitCode

    text = README.read_text(encoding="utf-8")
    for name in main.commands:
        assert f"run_batch.py {name}" in text, name
    for code in ExitCode:
        assert f"| {int(code)} |" in text, code.name


def test_readme_test_command_is_what_ci_runs() -> None:
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    text = README.read_text(encoding="utf-8")
    assert "scripts/test.sh" in text
    assert "exec scripts/test.sh" in ci


def test_readme_data_checks_table_matches_the_check_files() -> None:
    from crm_batch.resources import SQL_DIR
    from crm_batch.source.quality import rules_markdown

    text = README.read_text(encoding="utf-8")
    start = text.index("<!-- quality-checks:start")
    start = text.index("\n", start) + 1
    end = text.index("<!-- quality-checks:end -->")
    assert text[start:end].strip() == rules_markdown(SQL_DIR / "checks").strip()


def test_readme_mapping_table_matches_the_canonical_columns() -> None:
    from crm_batch.source.mapping import columns_markdown

    text = README.read_text(encoding="utf-8")
    start = text.index("<!-- mapping-columns:start")
    start = text.index("\n", start) + 1
    end = text.index("<!-- mapping-columns:end -->")
    assert text[start:end].strip() == columns_markdown().strip(), (
        "README's mapping table is stale: paste `python -m crm_batch.source.mapping`"
    )
