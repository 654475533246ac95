#!/usr/bin/env bash
# One command from a fresh clone: set up test needs, lint, check the layer contracts
# (pyproject.toml [tool.importlinter]), run the whole test suite: every marker, all four
# databases and Spark (a local Spark Connect server the test session starts and stops).
# Extra arguments go to pytest (e.g. -k config, -x). CI runs exactly this
# script; scripts/test-fast.sh is the quicker inner loop.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --test
.venv/bin/ruff check .
.venv/bin/lint-imports
exec .venv/bin/python -m pytest "$@"
