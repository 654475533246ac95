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
