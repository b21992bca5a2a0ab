# linreg: `make train` and `make test` do all the set-up on a fresh machine.
#
#   make train                        # .venv, install, run the book's job (ARGS="..." adds train.py flags)
#   make test                         # the same .venv plus the dev extra, then the test suite
#   make train TORCH=torch==2.13.0    # pick the torch build: this project's CPU machines have a local
#                                     # CPU wheel of 2.13.0; elsewhere for CPU only, e.g.
#   make train TORCH="torch --index-url https://download.pytorch.org/whl/cpu"
#
# TORCH is installed first, on its own; the project's range (torch>=2.2) then keeps whatever it got.

PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch
ARGS   ?=
BIN    := $(VENV)/bin

.PHONY: train test lint format benchmark clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

train: $(VENV)/.installed
	$(BIN)/python scripts/train.py $(ARGS)

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest $(ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
