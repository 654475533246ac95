"""Files: atomic output (write beside the target, then move into place) and the one
rule that turns a team name into a file name.

A failed or killed run never leaves a half-written file where a user expects a
complete one: the old file stays until the new one is complete and flushed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
import tempfile
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import IO

#: A team name longer than this many characters is not used as a file name as it is.
_STEM_MAX = 80
#: ... nor one whose UTF-8 form is longer than this many bytes: file systems take 255
#: bytes a name (ext4, APFS, NTFS in UTF-16 units), and the longest name made from a
#: stem adds about 60 (``quarterly_`` ... ``_2026-Q3_zh-CN.html`` inside
#: :func:`atomic_output`'s temporary name), so 60 Chinese characters still fit.
_STEM_MAX_BYTES = 180
_DIGEST_PART = 9  # "-" and 8 hex digits
_WINDOWS_RESERVED = re.compile(r"(CON|PRN|AUX|NUL|COM[0-9¹²³]|LPT[0-9¹²³])(\..*)?", re.IGNORECASE)
_UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')


def _umask() -> int:
    """The process's file creation mask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: Permission bits of a new output file: what ``open()`` would give it (0644 under the
#: usual umask 022), so reports, CSV files and workbooks get the same, readable by the
#: people the folder is shared with. A temporary file alone would be 0600.
NEW_FILE_MODE = 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_output(path: Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success it replaces ``path``.

    On an exception the temporary file is removed and ``path`` is untouched. The new file
    keeps the permission bits of the file it replaces, else gets :data:`NEW_FILE_MODE`.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        permissions = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        permissions = NEW_FILE_MODE
    os.chmod(temporary, permissions)
    binary = "b" in mode
    try:
        with os.fdopen(
            handle, mode, encoding=None if binary else encoding, newline=None if binary else ""
        ) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def atomic_write_text(path: Path, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_output(path, "w", encoding) as stream:
        stream.write(text)


def _safe_stem(team: str) -> bool:
    return (
        0 < len(team) <= _STEM_MAX
        and len(team.encode("utf-8")) <= _STEM_MAX_BYTES
        and team == team.strip()
        and not team.endswith(".")
        and not team.startswith((".", "~"))
        and _UNSAFE.search(team) is None
        and _WINDOWS_RESERVED.fullmatch(team) is None
        and unicodedata.normalize("NFC", team) == team
    )


def file_stem(team: str) -> str:
    """The file-name stem of a team's workbook and reports, safe on every OS: the one rule
    for turning a team name into a file name.

    The team name itself when it is a safe file name (``Shanghai``, ``华东一组``), else
    a slug of it plus 8 hex digits of its sha256 (``team-a-b-3f2a9c1d`` for ``Team A/B``),
    so two teams never share a file.
    """
    if _safe_stem(team):
        return team
    text = unicodedata.normalize("NFKC", team).strip().lower()
    slug = re.sub(r"[^\w-]+", "-", text, flags=re.UNICODE).strip("-_")[:60]
    slug = cut_to_bytes(slug, _STEM_MAX_BYTES - _DIGEST_PART).strip("-_")
    digest = hashlib.sha256(team.encode("utf-8")).hexdigest()[:8]
    return f"{slug}-{digest}" if slug else f"team-{digest}"


def cut_to_bytes(text: str, limit: int) -> str:
    """The longest start of ``text`` whose UTF-8 form has at most ``limit`` bytes (never
    half a character)."""
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore")


#: The ``<meta>`` name under which a rendered report records whom it is for; WeasyPrint
#: copies it into the PDF's document information as :data:`SCOPE_PDF_KEY`, where
#: delivery checks it before a file is mailed.
SCOPE_META_NAME = "crm-batch-scope"
SCOPE_PDF_KEY = "/crmbatchscope"


def report_scope(team: str | None) -> str:
    """What a report records about its scope: ``company``, or ``team:`` and the exact
    team name (so look-alike names such as ``Team A/B`` and ``Team A-B`` differ)."""
    return "company" if team is None else f"team:{team}"
