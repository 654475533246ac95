"""Logging set-up: plain lines (or JSON lines) on stderr, with secrets masked.

Whatever a driver or a library puts into a message, a password inside a URL
(``scheme://user:secret@host``) is replaced by ``***`` before it is written.
``--log-format json`` (or ``CRM_BATCH_LOG_FORMAT=json``) writes one JSON object per line
(time, level, logger, message, and the exception text when there is one) for log
shippers; the default is plain lines for people and the journal.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][\w+.-]*://[^:/@\s]*:)[^@\s]+@")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def mask_secrets(text: str) -> str:
    """Replace the password of any URL in ``text`` with ``***``."""
    return _URL_PASSWORD.sub(r"\g<head>***@", text)


class SecretMaskingFilter(logging.Filter):
    """Rewrites each record's final message with :func:`mask_secrets`."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_secrets(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per record: ``time`` (UTC, ISO 8601), ``level``, ``logger``,
    ``message`` and, for errors with a traceback, ``exception``."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask_secrets(record.getMessage()),
        }
        if record.exc_info:
            entry["exception"] = mask_secrets(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


class ConsoleHandler(logging.StreamHandler):
    """A stderr handler that prints above a progress bar when one is on screen."""

    def emit(self, record: logging.LogRecord) -> None:
        from crm_batch import progress

        if not progress.bar_active():
            super().emit(record)
            return
        from tqdm import tqdm

        try:
            tqdm.write(self.format(record), file=self.stream)
        except Exception:
            self.handleError(record)


_json_lines = False


def json_lines() -> bool:
    """Whether the log is JSON lines (then every stderr line must be JSON)."""
    return _json_lines


def setup_logging(verbosity: int = 0, log_format: str = "text") -> None:
    """Configure the root logger once: INFO by default, DEBUG with -v, WARNING with -q;
    ``log_format`` ``text`` (plain lines) or ``json`` (JSON lines)."""
    global _json_lines
    _json_lines = log_format == "json"
    level = (
        logging.INFO if verbosity == 0 else (logging.DEBUG if verbosity > 0 else logging.WARNING)
    )
    handler = ConsoleHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonLinesFormatter())
    else:
        handler.setFormatter(logging.Formatter(LOG_FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
    handler.addFilter(SecretMaskingFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # third-party chatter stays at WARNING unless we debug
    for noisy in ("fontTools", "weasyprint", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING if level > logging.DEBUG else level)
