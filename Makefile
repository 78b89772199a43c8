# Network Guardian — the two commands: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Exact versions of every dependency (dev tools included): what `make demo` and `make test`
# install. pyproject.toml keeps lower bounds for library users. Refresh with `make lock`.
LOCK   := requirements.lock

.PHONY: demo test lint format install clean browser lock lab

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found (Python >= 3.11 is required; set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml $(LOCK)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r $(LOCK)
	$(BIN)/python -m pip install --quiet -e . --no-deps
	@touch $(STAMP)

# Re-resolve the lock from pyproject.toml, keeping today's pins where they still fit
# (after adding or changing a dependency); `make lock UPGRADE=1` moves every pin to the
# newest allowed release. Then `make install` and run the tests before committing it.
lock: $(BIN)/python
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 \
	  $(if $(UPGRADE),--upgrade) -o $(LOCK)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/guardian run experiments/baseline.yaml $$(command -v chromium >/dev/null 2>&1 || echo "--set report.screenshots=false")
	@echo "Report: $$(ls -td $(CURDIR)/reports/baseline/*/ | head -1)report.html"

# JupyterLab on the notebooks with the project's kernel: the kernel spec "python3" of this
# .venv (written into the venv, and put first on JUPYTER_PATH so a user-wide "python3"
# spec cannot replace it). Listens on 127.0.0.1 only.
lab: $(STAMP)
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (Network Guardian)" >/dev/null
	JUPYTER_PATH=$(CURDIR)/$(VENV)/share/jupyter $(BIN)/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.root_dir=$(CURDIR) $$( [ "$$(id -u)" = 0 ] && echo --allow-root ) notebooks/

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The browser tests drive Debian's chromium through Playwright (never `playwright install`).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && apt-get install -y -qq chromium; \
	  else \
	    echo "error: chromium not found: the browser tests need Debian's chromium (sudo apt-get install -y chromium)"; exit 1; \
	  fi; }

test: lint browser
	$(BIN)/python -m pytest

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) data/runs reports/*/ .pytest_cache
