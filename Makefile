PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
# Branch coverage of the shipped packages; protocol/ is expected to stay near 100 %.
COV_ARGS ?= --cov=protocol --cov=globe_io --cov=hub --cov=globe_node --cov-branch \
	--cov-report=term-missing:skip-covered --cov-fail-under=95

.PHONY: venv test lint fmt demo bench clean

# Re-created whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV) && $(BIN)/pip install -q --upgrade pip && $(BIN)/pip install -q -e '.[dev]' && touch $(VENV)/.installed

venv: $(VENV)/.installed

# pytest exits 5 when it collects nothing: that is a failure, not a pass.
test: venv
	@status=0; $(BIN)/python -m pytest -q $(COV_ARGS) $(PYTEST_ARGS) || status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: FAIL: no tests were collected" >&2; exit 1; fi; \
	exit $$status

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

demo: venv
	$(BIN)/python -m demo

bench: venv
	$(BIN)/python bench/bench_protocol.py --quick
	$(BIN)/python bench/bench_directory.py --quick
	$(BIN)/python bench/bench_hub.py --quick
	$(BIN)/python bench/bench_node.py --quick

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis build dist htmlcov .coverage *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
