"""Reading a .sql file (a query of sql/ or a mapping file) as text, with an error that
names the file and the line of the first byte that is not UTF-8."""

from __future__ import annotations

from pathlib import Path

from crm_batch.errors import SqlContractError


def read_sql_text(path: Path) -> str:
    """A .sql file's text; an unreadable or non-UTF-8 file is a :class:`SqlContractError`
    naming the file (and the line of the first bad byte)."""
    try:
        # utf-8-sig: editors on Windows may start the file with a byte order mark
        return path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise SqlContractError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise SqlContractError(
            f"{path}:{line}: not UTF-8 text; save the file as UTF-8 (it may be GBK or Latin-1)"
        ) from None
