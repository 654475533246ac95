# Everyday targets; each is a thin alias for a script or a tool in .venv.
.PHONY: demo test lint format bench
demo:   ## set up and run the demo
	scripts/demo.sh
test:   ## set up and run lint + tests (what CI runs)
	scripts/test.sh
lint:
	.venv/bin/ruff check .
format:
	.venv/bin/ruff format . && .venv/bin/ruff check --fix .
bench:  ## performance figures (not part of the tests)
	.venv/bin/python benchmarks/demo_load.py
