# Network Guardian — the two commands: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Exact versions of every dependency (dev tools included): what `make demo` and `make test`
# install. pyproject.toml keeps lower bounds for library users. Refresh with `make lock`.
LOCK   := requirements.lock

.PHONY: demo test lint format install clean browser system lock lab

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

# Debian packages the tests drive for real: chromium (browser tests through Playwright, never
# `playwright install`), PostgreSQL (own-data import from an operator's database) and
# Alertmanager (alert forwarding). Missing ones are installed when running as root with apt-get;
# otherwise the target names the command to run.
DEBIAN_PACKAGES := chromium postgresql prometheus-alertmanager

system:
	@missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "error: missing Debian packages:$$missing (sudo apt-get install -y$$missing)"; exit 1; \
	  fi; fi

# Kept for muscle memory: the browser used to be the only system package.
browser: system

# The suite runs on pytest-xdist workers, one per core (at most TEST_WORKERS_MAX), each
# test file's tests stolen by idle workers; `make test TEST_WORKERS=0` runs it in one process.
TEST_WORKERS     ?= auto
TEST_WORKERS_MAX ?= 4

test: lint system
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --maxprocesses $(TEST_WORKERS_MAX) --dist worksteal

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) data/runs reports/*/ .pytest_cache
