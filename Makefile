# Everyday targets; each is a thin alias for a script or a tool in .venv.
.PHONY: demo test test-fast lint format bench
demo:   ## set up and run the demo
	scripts/demo.sh
test:   ## set up and run lint, layer contracts and every test (what CI runs)
	scripts/test.sh
test-fast:  ## the inner loop: lint, layer contracts, DuckDB/SQLite tests without slow ones, in parallel
	scripts/test-fast.sh
lint:
	.venv/bin/ruff check .
format:
	.venv/bin/ruff format . && .venv/bin/ruff check --fix .
bench:  ## performance figures (not part of the tests)
	.venv/bin/python benchmarks/demo_load.py
