"""Logging set-up: plain lines on stderr, with secrets masked in every record.

Whatever a driver or a library puts into a message, a password inside a URL
(``scheme://user:secret@host``) is replaced by ``***`` before it is written.
"""

from __future__ import annotations

import logging
import re
import sys

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


def setup_logging(verbosity: int = 0) -> None:
    """Configure the root logger once: INFO by default, DEBUG with -v, WARNING with -q."""
    level = (
        logging.INFO if verbosity == 0 else (logging.DEBUG if verbosity > 0 else logging.WARNING)
    )
    handler = logging.StreamHandler(sys.stderr)
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
