# Two commands set everything up on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

FW_VENV ?= .venv-frameworks
FW_PY := $(FW_VENV)/bin/python
FW_STAMP := $(FW_VENV)/.installed
FW_REQS := tests/frameworks/requirements.txt tests/frameworks/constraints.txt

.PHONY: demo test lint typecheck pytest frameworks bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) -m otel_llm.demo

test: lint typecheck pytest frameworks

lint: $(STAMP)
	$(PY) -m ruff check otel_llm tests bench dashboards

typecheck: $(STAMP)
	$(PY) -m mypy

pytest: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# The framework matrix runs in its own environment: the frameworks' pins conflict with ours.
$(FW_STAMP): pyproject.toml $(FW_REQS)
	@test -x $(FW_PY) || $(PYTHON) -m venv $(FW_VENV)
	$(FW_PY) -m pip install -q --upgrade pip
	$(FW_PY) -m pip install -q -e '.[testing]' -r tests/frameworks/requirements.txt \
		-c tests/frameworks/constraints.txt
	@touch $(FW_STAMP)

frameworks: $(FW_STAMP)
	OTEL_LLM_FRAMEWORKS=1 $(FW_PY) -m pytest tests/frameworks $(PYTEST_ARGS)

# Builds bench/.venv (repo + pinned anchors) itself: the anchors never touch .venv.
bench:
	$(PYTHON) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(FW_VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
