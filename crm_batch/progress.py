"""Progress bars for long stages on a terminal; nothing extra anywhere else.

A person running ``nightly`` or ``demo`` in a terminal sees a bar per long stage (teams,
dates, workbooks, reports); under cron, systemd or ``serve`` (stderr is not a terminal,
or ``serve`` turned bars off) only the usual log lines are written, one per stage with
counts and seconds. While a bar is on screen, log lines are printed above it
(:class:`crm_batch.logs.ConsoleHandler`), so neither garbles the other.
``CRM_BATCH_PROGRESS=0`` turns bars off, ``=1`` forces them on.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_forced: bool | None = None  # set by set_enabled(); None = decide from the environment
_active_bars = 0


def set_enabled(value: bool | None) -> None:
    """Force bars on or off (``serve`` turns them off); ``None`` = automatic."""
    global _forced
    _forced = value


def enabled() -> bool:
    """Whether bars are shown: forced, else ``CRM_BATCH_PROGRESS``, else a terminal."""
    if _forced is not None:
        return _forced
    setting = os.environ.get("CRM_BATCH_PROGRESS", "").strip()
    if setting in {"0", "1"}:
        return setting == "1"
    return sys.stderr.isatty() and os.environ.get("TERM") != "dumb"


def bar_active() -> bool:
    """Whether a bar is on screen now (log lines must then go above it)."""
    return _active_bars > 0


@contextlib.contextmanager
def progress_bar(total: int | None, description: str, unit: str) -> Iterator[Callable[[int], None]]:
    """A bar of ``total`` ``unit``; yields ``advance(n)``. A no-op when bars are off."""
    if not enabled():
        yield lambda _n=1: None
        return
    from tqdm import tqdm

    global _active_bars
    with tqdm(
        total=total, desc=description, unit=unit, leave=False, file=sys.stderr, dynamic_ncols=True
    ) as bar:
        _active_bars += 1
        try:
            yield bar.update
        finally:
            _active_bars -= 1


def track(items: Iterable[T], description: str, unit: str, total: int | None = None) -> Iterator[T]:
    """Iterate ``items`` with a bar (``total`` defaults to ``len(items)`` when it has one)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with progress_bar(total, description, unit) as advance:
        for item in items:
            yield item
            advance(1)
