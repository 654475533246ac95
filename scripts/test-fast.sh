#!/usr/bin/env bash
# The inner loop while editing: ruff, the layer contracts and every test that needs no
# database server and is not marked slow (DuckDB and SQLite only), spread over the cores
# with pytest-xdist. 1-2.5 minutes on a 2-core machine; scripts/test.sh (CI) still
# runs everything. Extra arguments go to pytest (e.g. -k kpi, -x, -n 1).
# CRM_BATCH_TEST_WORKERS sets the number of pytest-xdist workers (default: auto, one per
# physical core).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --test
.venv/bin/ruff check .
.venv/bin/lint-imports
# --dist loadscope keeps each test module on one worker, so a module's shared fixture (a
# demo company, a rendered report) is built once instead of once per worker
exec .venv/bin/python -m pytest -m "not slow and not postgres and not mariadb and not spark" \
  -n "${CRM_BATCH_TEST_WORKERS:-auto}" --dist loadscope "$@"
