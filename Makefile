# Two commands work on a fresh machine with Python 3.11 and git: `make demo`, `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo tour fintech healthcare test test-fast lint typecheck bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The stamp files re-run the install whenever pyproject.toml changes.
$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e . --config-settings editable_mode=compat
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]' --config-settings editable_mode=compat
	touch $@ $(VENV)/.installed-run

$(VENV)/.installed-examples: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[examples]' --config-settings editable_mode=compat
	touch $@ $(VENV)/.installed-run

# The two-minute story (examples/quickstart); `make tour` walks every command family.
demo: $(VENV)/.installed-examples
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python examples/quickstart/quickstart.py

# Scenarios: a monitor rolls a holiday fraud model back; a domain expert picks a version.
fintech: $(VENV)/.installed-examples
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python examples/fintech/fintech.py

healthcare: $(VENV)/.installed-examples
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python examples/healthcare/healthcare.py

tour: $(VENV)/.installed-examples
	PATH="$(CURDIR)/$(BIN):$$PATH" bash examples/tour.sh

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/deptry .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

PYTEST := PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/pytest -q
# The floor is the in-process total measured when the gate was set (84.0%), less a point or two
# for noise: raise it as tests are added. Commands run as subprocesses are not counted (coverage
# in every child changed what the full-disk tests saw on stderr).
COVERAGE := --cov=mvctl --cov-report=term-missing:skip-covered --cov-fail-under=82

test: lint typecheck
	$(PYTEST) $(COVERAGE)

# Minutes rather than the full run: no end-to-end races, kill loops or real servers.
test-fast: lint
	$(PYTEST) -m "not slow"

bench: $(VENV)/.installed-dev
	for b in benchmarks/bench_*.py; do PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .coverage .coverage.*
