"""A message catalogue: fixed texts by key, each in zh-CN and English.

The report's words, the workbook harvest's problems and the button messages are three
catalogues of this one kind, so a text is looked up and filled in one way everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping

from crm_batch.i18n import language_index


class Catalog:
    """Texts by key as ``(zh-CN, en)`` pairs; templates use ``str.format`` fields."""

    def __init__(self, texts: Mapping[str, tuple[str, str]]) -> None:
        self._texts = dict(texts)

    def __contains__(self, key: object) -> bool:
        return key in self._texts

    def keys(self) -> list[str]:
        """Every key, in definition order."""
        return list(self._texts)

    def text(self, key: str, language: str, **values: object) -> str:
        """The text of ``key`` in ``language`` with ``values`` filled in (KeyError if
        unknown); without values the text is returned as written (braces and all)."""
        text = self._texts[key][language_index(language)]
        return text.format(**values) if values else text

    def all(self, language: str) -> dict[str, str]:
        """Every text of ``language`` by key (report templates receive this as ``t``)."""
        index = language_index(language)
        return {key: pair[index] for key, pair in self._texts.items()}
