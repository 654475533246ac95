#!/usr/bin/env bash
# One command from a fresh clone: set everything up, then build and run the demo.
# Extra arguments go to `run_batch.py demo` (e.g. --customers 100000 --orders 1000000).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/python run_batch.py demo "$@"
