"""Everything a reader sees in their language: the supported languages, message
catalogues (:mod:`crm_batch.i18n.catalog`), numbers, money and dates
(:mod:`crm_batch.i18n.numbers`).

Two languages are supported, zh-CN and English; every catalogue has each key in both.
"""

from __future__ import annotations

from typing import Literal

Language = Literal["zh-CN", "en"]
#: Supported languages, in catalogue order (index 0 = zh-CN, 1 = en).
LANGUAGES: tuple[Language, ...] = ("zh-CN", "en")


def language_index(language: str) -> int:
    """0 for zh-CN, 1 for English (any other value reads as English)."""
    return 0 if language == "zh-CN" else 1
