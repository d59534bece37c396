# The template repository's commands. `make demo` and `make test` each set up everything first.
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
TEMPLATE := {{cookiecutter.project_slug}}
PIP_COMPILE := $(BIN)/pip-compile --quiet --allow-unsafe --no-annotate --no-header --strip-extras \
	--no-emit-index-url --no-emit-find-links

export PATH := $(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1
export DO_NOT_TRACK := 1

.PHONY: setup demo test lint render lock clean

## setup: virtual environment from the locks, root instance installed, its data restored and reproduced
setup: $(VENV)/.installed
	$(BIN)/python -m tools.render_root --restore-missing
	$(BIN)/dvc repro --quiet

$(VENV)/.installed: requirements.lock requirements-template.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock -r requirements-template.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

## demo: bake a project with the default answers into build/ and run its whole pipeline
demo: setup
	$(BIN)/python -m tools.demo

## test: the template's test suite (bakes and runs projects for real), after lint
test: setup lint
	$(BIN)/python -m pytest -n 2 --dist loadfile

lint:
	$(BIN)/ruff check tools tests src benchmarks
	$(BIN)/ruff format --check tools tests src benchmarks

## render: write the template's default rendering over the root instance
render: $(VENV)/.installed
	$(BIN)/python -m tools.render_root

## lock: re-resolve and pin every dependency, then re-render the root instance
lock: $(VENV)/.installed
	$(PIP_COMPILE) --extra dev -o "$(TEMPLATE)/requirements.lock" pyproject.toml
	$(BIN)/python -m tools.render_root
	$(PIP_COMPILE) -o requirements-template.lock requirements-template.in

clean:
	rm -rf build .pytest_cache
