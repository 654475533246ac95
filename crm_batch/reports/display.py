"""Database text made fit for a report's table cell (the one rule every section uses)."""

from __future__ import annotations

import math

import pandas as pd

from crm_batch.i18n import numbers as fmt
from crm_batch.i18n.characters import normalize_characters

#: Longest customer/owner name shown in a table cell; longer ones end with an ellipsis.
MAX_NAME_CHARS = 60


def display_text(value: object, limit: int = MAX_NAME_CHARS) -> str:
    """Database text for a table cell: one line, at most ``limit`` characters.

    The workbook's character rules apply (:mod:`crm_batch.i18n.characters`: no NUL, ESC
    or other control characters, no bidirectional overrides, lone surrogates as U+FFFD);
    line breaks and tabs become spaces (a name must not break a row's layout), a missing
    value becomes a dash, and a longer text is cut with an ellipsis. Escaping is left to
    the template engine.
    """
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return fmt.DASH
    text = " ".join(normalize_characters(str(value)).split())
    if not text:
        return fmt.DASH
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
