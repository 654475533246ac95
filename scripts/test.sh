#!/usr/bin/env bash
# One command from a fresh clone: set up test needs, lint, run the whole test suite.
# Extra arguments go to pytest (e.g. -k config, -x). CI runs exactly this script.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --test
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
