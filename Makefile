# The two commands of the README: `make test` and `make demo`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: test demo lint system-deps clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

system-deps:
	bash scripts/install_system_deps.sh

test: lint system-deps
	$(PY) -m pytest -q

demo: $(STAMP) system-deps
	$(PY) scripts/demo.py

lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks scripts
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
