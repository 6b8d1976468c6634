# Two commands do all set-up on a fresh machine:
#   make run    create .venv, install ternkit, run the main job on the built-in model
#   make test   create .venv, install ternkit + test deps, run the test suite
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: run test install clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/ternkit run

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -rs

clean:
	rm -rf $(VENV) build *.egg-info
