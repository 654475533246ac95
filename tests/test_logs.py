"""Secrets never reach the log."""

import logging

import pytest

from crm_batch.logs import SecretMaskingFilter, mask_secrets


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "cannot connect to postgresql+psycopg://crm:s3cr%40t@db:5432/sales",
            "cannot connect to postgresql+psycopg://crm:***@db:5432/sales",
        ),
        ("mysql://root:pw@127.0.0.1/test and more", "mysql://root:***@127.0.0.1/test and more"),
        ("duckdb:///var/demo.duckdb", "duckdb:///var/demo.duckdb"),
        ("postgresql://crm@db/sales", "postgresql://crm@db/sales"),
    ],
)
def test_mask_secrets(text: str, expected: str) -> None:
    assert mask_secrets(text) == expected


def test_filter_masks_formatted_arguments(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("crm_batch.test_logs")
    logger.addFilter(SecretMaskingFilter())
    with caplog.at_level(logging.INFO, logger="crm_batch.test_logs"):
        logger.info("using %s", "postgresql://u:hunter2@h/db")
    assert "hunter2" not in caplog.text
    assert "postgresql://u:***@h/db" in caplog.text


def test_json_lines_carry_level_logger_and_masked_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json

    from crm_batch.logs import setup_logging

    setup_logging(0, "json")
    try:
        logging.getLogger("crm_batch.jobs.pipeline").warning(
            "cannot connect to %s", "postgresql://crm:hunter2@db/sales"
        )
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("crm_batch.cli").exception("failed with mysql://r:pw@h/db")
    finally:
        setup_logging(0)
    lines = capsys.readouterr().err.strip().splitlines()
    first, second = (json.loads(line) for line in lines)
    assert first["level"] == "WARNING"
    assert first["logger"] == "crm_batch.jobs.pipeline"
    assert first["message"] == "cannot connect to postgresql://crm:***@db/sales"
    assert first["time"].endswith("+00:00")
    assert second["message"] == "failed with mysql://r:***@h/db"
    assert "ValueError: boom" in second["exception"]
    assert "hunter2" not in "\n".join(lines)


def test_progress_bars_follow_the_terminal_and_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from crm_batch import progress

    monkeypatch.setenv("CRM_BATCH_PROGRESS", "1")
    assert progress.enabled()
    monkeypatch.setenv("CRM_BATCH_PROGRESS", "0")
    assert not progress.enabled()
    monkeypatch.delenv("CRM_BATCH_PROGRESS")
    monkeypatch.setattr("sys.stderr.isatty", lambda: False, raising=False)
    assert not progress.enabled()  # cron, systemd, a pipe: log lines only
    progress.set_enabled(True)
    try:
        assert progress.enabled()
    finally:
        progress.set_enabled(None)


def test_log_lines_go_above_an_active_bar(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from crm_batch import progress
    from crm_batch.logs import setup_logging

    setup_logging(0)
    progress.set_enabled(True)
    try:
        for team in progress.track(["Shanghai", "Beijing"], "KPIs by team", "team"):
            assert progress.bar_active()
            logging.getLogger("crm_batch.app.kpis").info("team %s done", team)
        assert not progress.bar_active()
    finally:
        progress.set_enabled(None)
        setup_logging(0)
    err = capsys.readouterr().err
    assert "KPIs by team" in err  # the bar was drawn
    assert "team Shanghai done" in err
    assert "team Beijing done" in err
    # each log line is whole, on its own line (not glued to the bar's carriage returns)
    assert any(line.endswith("crm_batch.app.kpis: team Beijing done") for line in err.splitlines())


def test_without_a_terminal_nothing_but_log_lines(capsys: pytest.CaptureFixture[str]) -> None:
    from crm_batch import progress

    progress.set_enabled(False)
    try:
        assert list(progress.track(range(3), "x", "item")) == [0, 1, 2]
    finally:
        progress.set_enabled(None)
    assert capsys.readouterr().err == ""
