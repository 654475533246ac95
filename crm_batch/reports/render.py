"""Rendering: the Jinja2 environment, the locked-down URL fetcher and HTML -> PDF.

* Every template is autoescaped and undefined variables raise (StrictUndefined), so a
  typo in a template or a missing context key fails the render instead of printing an
  empty cell.
* WeasyPrint fetches through :class:`LocalOnlyFetcher`: ``data:`` URIs and files under
  the allowed folders (``report_templates/`` and this package) only; anything else,
  another file, http(s) or ftp, is refused and stops the render.
* Output files are written atomically (:func:`crm_batch.files.atomic_output`).
* With a timeout, the PDF renders in a worker process (:mod:`crm_batch.isolation`) that
  is stopped when it runs past it: WeasyPrint has no timeout of its own.
* Every PDF is tagged PDF/UA-1 (:data:`PDF_VARIANT`): a structure tree (headings,
  paragraphs, lists, tables with their header cells, figures with their alt text), the
  document language from ``<html lang>`` and the title shown by viewers, so screen
  readers read the reports in order and in the right language.
* ``<meta>`` names of our own (the report's scope, :data:`crm_batch.files.SCOPE_META_NAME`)
  go into the PDF's document information, where delivery checks them before mailing.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import jinja2
from weasyprint import HTML
from weasyprint.urls import FatalURLFetchingError, URLFetcher

from crm_batch import resources
from crm_batch.errors import DataError
from crm_batch.files import atomic_output
from crm_batch.isolation import TimeLimitedPool
from crm_batch.progress import track

#: The project's report templates (located by :mod:`crm_batch.resources`).
TEMPLATES_DIR = resources.REPORT_TEMPLATES_DIR
PACKAGE_DIR = Path(__file__).resolve().parent


#: WeasyPrint's PDF variant of every report: tagged PDF/UA-1. It draws the same pages
#: (compared as images) and costs about 5 % of a render (README "PDF reports").
PDF_VARIANT = "pdf/ua-1"


class RefusedURL(ValueError):
    """A resource the report may not read (outside the templates, or a network URL)."""


class LocalOnlyFetcher(URLFetcher):
    """A WeasyPrint URL fetcher for ``data:`` URIs and files under ``roots`` only."""

    def __init__(self, roots: Iterable[Path] = (TEMPLATES_DIR, PACKAGE_DIR)) -> None:
        super().__init__(allowed_protocols={"data", "file"}, fail_on_errors=True)
        self.roots = tuple(Path(root).resolve() for root in roots)

    def check(self, url: str) -> None:
        """Raise :class:`RefusedURL` unless ``url`` is a ``data:`` URI or an allowed file."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme == "data":
            return
        if scheme != "file" or parts.netloc not in ("", "localhost"):
            raise RefusedURL(f"refused to fetch {url[:200]!r}: only report templates and data:")
        path = Path(unquote(parts.path)).resolve()
        if not any(path.is_relative_to(root) for root in self.roots):
            raise RefusedURL(f"refused to read {path}: not under the report templates")

    def fetch(self, url: str, headers: Mapping[str, str] | None = None):  # type: ignore[override]
        """Fetch ``url`` after :meth:`check`; a refusal stops the rendering."""
        self.check(url)
        return super().fetch(url, headers)


@functools.cache
def environment(templates_dir: Path = TEMPLATES_DIR) -> jinja2.Environment:
    """The report templates' environment: autoescape on for every template, StrictUndefined.

    One per folder and process: its compiled templates are reused by every report of a
    run (compiling the two report templates costs about 0.08 s; an edited template
    file is still picked up, Jinja checks its modification time)."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(
    template: str, context: Mapping[str, Any], templates_dir: Path = TEMPLATES_DIR
) -> str:
    """The HTML of ``template`` with ``context`` (plain data)."""
    return environment(templates_dir).get_template(template).render(**context)


def content_digest(context: Mapping[str, Any]) -> str:
    """The SHA-256 of the data a report shows: its render ``context`` without the cover
    block (``report``: title, dates, generation time), the texts (``t``) and the SVG
    charts (drawn from the same data as the tables). Equal digests mean equal figures,
    whenever the report was rendered; ``email.only_if_changed`` compares them."""

    def data(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {str(k): data(v) for k, v in value.items() if k not in ("report", "t")}
        if isinstance(value, list | tuple):
            return [data(item) for item in value]
        if isinstance(value, str) and value.lstrip().startswith(("<svg", "<?xml", "data:")):
            return None
        return value

    text = json.dumps(data(context), sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def html_to_pdf(html: str, templates_dir: Path = TEMPLATES_DIR) -> bytes:
    """The PDF of ``html``; relative URLs resolve against ``templates_dir``.

    A resource the fetcher refuses stops the render with a :class:`DataError` (our
    templates fetch nothing but ``data:`` URIs, so a refusal means foreign markup).
    """
    document = HTML(
        string=html, base_url=templates_dir.as_uri() + "/", url_fetcher=LocalOnlyFetcher()
    )
    try:
        return document.write_pdf(custom_metadata=True, pdf_variant=PDF_VARIANT)
    except FatalURLFetchingError as exc:
        reason = exc.__cause__ or exc
        raise DataError(f"report not rendered: {reason}") from None


def _pdf_in_worker(html: str, templates_dir: str) -> bytes:
    """:func:`html_to_pdf` as a picklable call for the render worker process."""
    return html_to_pdf(html, Path(templates_dir))


_render_pool: TimeLimitedPool | None = None


def render_pool() -> TimeLimitedPool:
    """The process's PDF render workers (started on first use, stopped at exit): two on
    a machine with two cores or more, so reports render side by side."""
    global _render_pool
    if _render_pool is None:
        _render_pool = TimeLimitedPool(workers=max(1, min(2, os.cpu_count() or 1)))
        atexit.register(_render_pool.terminate)
    return _render_pool


@dataclass(frozen=True)
class ReportJob:
    """One report to write: its HTML and where the PDF and the HTML go."""

    html: str
    pdf_path: Path
    html_path: Path


def _save(job: ReportJob, pdf: bytes) -> None:
    with atomic_output(job.pdf_path, "wb") as stream:
        stream.write(pdf)
    with atomic_output(job.html_path, "w", encoding="utf-8") as stream:
        stream.write(job.html)


def write_reports(jobs: Iterable[ReportJob], *, timeout_seconds: float) -> None:
    """Render ``jobs`` in the render workers, side by side, and write each report
    atomically as soon as its PDF is ready.

    ``jobs`` may be a generator that builds each report's HTML: every PDF starts
    rendering as soon as its HTML is built, so the workers render while this process
    builds the next report (charts, context) instead of waiting for all of them.
    Each render is stopped after ``timeout_seconds`` of waiting for it
    (:class:`crm_batch.errors.StageTimeoutError`). The first failure stops the batch:
    reports written before it are complete, the failed one and those after it keep
    their previous files.
    """
    pool = render_pool()
    pending = []
    try:
        for job in jobs:
            pending.append((job, pool.start(_pdf_in_worker, job.html, str(TEMPLATES_DIR))))
        for job, call in track(pending, "PDF reports", "report"):
            _save(job, call.result(timeout_seconds, f"rendering {job.pdf_path.name}"))
    except BaseException:
        pool.terminate()  # drop the renders still queued
        raise


def write_report(
    html: str, pdf_path: Path, html_path: Path, *, timeout_seconds: float | None = None
) -> None:
    """Render ``html`` to ``pdf_path`` and save it as ``html_path``, each atomically.

    The PDF is rendered in memory first, so a failed render leaves both files as they
    were. With ``timeout_seconds`` it renders in a worker process that is stopped after
    that long (:class:`crm_batch.errors.StageTimeoutError`).
    """
    job = ReportJob(html, pdf_path, html_path)
    if timeout_seconds is None:
        _save(job, html_to_pdf(html))
    else:
        write_reports([job], timeout_seconds=timeout_seconds)
