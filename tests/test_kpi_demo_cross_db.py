"""The same KPI JSON on DuckDB, SQLite, PostgreSQL and MariaDB for the demo data.

A small demo company (integer keys on two databases, text keys on the others) is
loaded into each database; ``kpis --by-team --targets --format json`` computed from
each must be the same document, number for number.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import URL

from crm_batch.app.kpis import run_kpis, target_tables
from crm_batch.config import load_settings
from crm_batch.exports.kpis import as_json
from crm_batch.periods import parse_period
from crm_batch.source.db import make_engine
from crm_batch.source.demo import generate_demo, load_demo

AS_OF = date(2026, 6, 30)
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo_data():
    return generate_demo(customers=600, orders=6_000, seed=7, end_date=AS_OF)


def _kpi_document(url: URL, demo: Any, id_type: str, tmp_path: Path) -> dict[str, Any]:
    engine = make_engine(url, connect_timeout=5, statement_timeout=300)
    try:
        load_demo(engine, demo, id_type=id_type)
        settings = load_settings(
            REPO / "crm_batch.toml", database_url=str(url), environ={}, cwd=tmp_path
        )
        run = run_kpis(settings, engine, AS_OF, parse_period("2026Q2"), all_teams=True)
        return json.loads(as_json(run, target_tables(settings, engine, run)))
    finally:
        engine.dispose()


def _assert_same(left: Any, right: Any, where: str = "") -> None:
    if isinstance(left, dict):
        assert list(left) == list(right), where
        for key in left:
            _assert_same(left[key], right[key], f"{where}.{key}")
    elif isinstance(left, list):
        assert len(left) == len(right), where
        for index, (a, b) in enumerate(zip(left, right, strict=True)):
            _assert_same(a, b, f"{where}[{index}]")
    elif isinstance(left, float) or isinstance(right, float):
        assert right is not None, where
        assert math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-9), f"{where}: {left} != {right}"
    else:
        assert left == right, where


@pytest.fixture(scope="module")
def reference(demo_data: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("reference")
    url = URL.create("duckdb", database=str(folder / "reference.duckdb"))
    return _kpi_document(url, demo_data, "int", folder)


@pytest.mark.parametrize(
    ("backend", "id_type"),
    [
        ("sqlite", "text"),
        pytest.param("postgres", "int", marks=pytest.mark.postgres),
        pytest.param("mariadb", "text", marks=pytest.mark.mariadb),
        ("duckdb", "text"),
    ],
)
def test_same_kpi_json_on_every_database(
    backend: str,
    id_type: str,
    demo_data: Any,
    reference: dict[str, Any],
    db_url_factory: Callable[[str], URL],
    tmp_path: Path,
) -> None:
    document = _kpi_document(db_url_factory(backend), demo_data, id_type, tmp_path)
    assert len(reference["results"]) == 9  # the company and 8 teams
    assert all(value is not None for value in reference["results"][0]["kpis"].values())
    _assert_same(reference, document)
