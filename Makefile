# The two set-up commands of the README: `make demo` and `make test`.
# Both create .venv with the project and its development dependencies first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test bench lint types proto clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/python -m devkit.demo

test: $(BIN)/.installed
	bash scripts/ensure-test-tools.sh
	$(BIN)/python scripts/gen_proto.py --check
	$(BIN)/python scripts/gen_monitoring.py --check
	$(BIN)/ruff check provider devkit tests scripts bench
	$(BIN)/ruff format --check provider devkit tests scripts bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo
	$(BIN)/python scripts/check_sizes.py
	$(BIN)/pytest

# Not part of `make test`: figures, not pass/fail. Extra flags: make bench BENCH_ARGS='--quick'
bench: $(BIN)/.installed
	$(BIN)/python -m bench $(BENCH_ARGS)

proto: $(BIN)/.installed
	$(BIN)/python scripts/gen_proto.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
