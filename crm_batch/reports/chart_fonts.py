"""The charts' fonts: the CJK font files handed to matplotlib, and missing glyphs counted.

Matplotlib keeps a font list cache (``~/.cache/matplotlib/fontlist-*.json``, shared by
every environment with the same matplotlib). Built before Noto Sans CJK was installed,
it never learns of the font and every Chinese chart label is drawn as empty boxes,
with one Python warning per glyph. So the font files are located here (fontconfig's
``fc-list``, else the usual install paths) and registered with matplotlib's font
manager explicitly, whatever its cache holds. Text a chart cannot draw is counted and
reported as one log line per process, never as a warning per glyph.
"""

from __future__ import annotations

import functools
import logging
import re
import shutil
import subprocess
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from matplotlib import font_manager

log = logging.getLogger(__name__)

#: The family that carries Chinese in the charts (and in the PDFs' text).
CJK_FAMILY = "Noto Sans CJK SC"
#: Where distributions install Noto Sans CJK (Debian/Ubuntu fonts-noto-cjk, Fedora,
#: Arch, Alpine), for machines without ``fc-list``.
KNOWN_CJK_FILES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Bold.ttc",
)
_GLYPH_MISSING = re.compile(r"Glyph (\d+) \(.*\) missing from font")

#: Characters the charts could not draw in this process, with how often.
missing_glyphs: Counter[str] = Counter()


def cjk_font_files() -> list[Path]:
    """The installed Noto Sans CJK font files: fontconfig's list, else the known paths."""
    found: list[Path] = []
    fc_list = shutil.which("fc-list")
    if fc_list:
        try:
            listed = subprocess.run(
                [fc_list, f":family={CJK_FAMILY}", "file"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            ).stdout
        except (OSError, subprocess.SubprocessError):
            listed = ""
        found += [Path(line.strip().rstrip(":")) for line in listed.splitlines() if line.strip()]
    found += [Path(path) for path in KNOWN_CJK_FILES]
    unique = dict.fromkeys(path for path in found if path.is_file())
    return sorted(unique)


@functools.cache
def register_fonts() -> tuple[Path, ...]:
    """Hand the CJK font files to matplotlib (once per process); the files registered.

    Files the font manager already lists (a cache built after the font was installed)
    are not added twice. Without any file, one warning says Chinese chart text will
    not draw.
    """
    files = tuple(cjk_font_files())
    known = {Path(entry.fname) for entry in font_manager.fontManager.ttflist}
    for path in files:
        if path not in known:
            font_manager.fontManager.addfont(str(path))
    if not files:
        log.warning(
            "font %s not found (Debian/Ubuntu: apt install fonts-noto-cjk): "
            "Chinese text in the report charts cannot be drawn",
            CJK_FAMILY,
        )
    return files


@contextmanager
def glyph_check() -> Iterator[None]:
    """Draw a chart inside this: missing glyphs are counted in :data:`missing_glyphs`
    (the first time in a process with one log line giving the count), and any other
    warning matplotlib raises becomes a log line, so a run's output holds log lines only.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    missing = Counter(
        chr(int(match.group(1)))
        for warning in caught
        if (match := _GLYPH_MISSING.search(str(warning.message)))
    )
    for warning in caught:
        if not _GLYPH_MISSING.search(str(warning.message)):
            log.warning("chart: %s", warning.message)
    if missing:
        first = not missing_glyphs
        missing_glyphs.update(missing)
        if first:
            log.warning(
                "charts: %d glyph(s) of %d character(s) missing from the chart fonts (%s): "
                "they show as boxes; install fonts-noto-cjk (logged once per process)",
                sum(missing.values()),
                len(missing),
                " ".join(sorted(missing)[:8]),
            )
