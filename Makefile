# The template repository's commands. `make demo` and `make test` each set up everything first.
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
TEMPLATE := {{cookiecutter.project_slug}}
# every platform, every Python from 3.11, each file with its hashes
UV_COMPILE := $(BIN)/uv pip compile --quiet --universal --generate-hashes --no-annotate --python-version 3.11
# the generated project's locks name the command that re-creates them there (Renovate reads it)
PROJECT_COMPILE := uv pip compile --universal --generate-hashes --no-annotate

export PATH := $(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1
export DO_NOT_TRACK := 1

.DEFAULT_GOAL := help
.PHONY: help setup demo test test-fast lint render lock clean

help: ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-9s %s\n", $$1, $$2}'

setup: $(VENV)/.installed ## virtual environment from the locks, root instance installed, its data restored and reproduced
	$(BIN)/python -m tools.render_root --restore-missing
	$(BIN)/dvc repro --quiet

$(VENV)/.installed: requirements-dev.lock requirements-template.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-dev.lock -r requirements-template.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

demo: setup ## bake a project with the default answers into build/ and run its whole pipeline
	$(BIN)/python -m tools.demo

test: setup lint ## the template's test suite (bakes and runs projects for real), after lint
	$(BIN)/python -m pytest -n 2 --dist loadfile

test-fast: setup lint ## the inner loop: every test that runs no DVC pipeline (bakes, hooks, root instance), in about a minute
	$(BIN)/python -m pytest -n 2 --dist loadfile -m "not slow"

lint: ## ruff's checks and formatting, and mypy's type checks, of the template repository's code
	$(BIN)/ruff check tools tests src benchmarks
	$(BIN)/ruff format --check tools tests src benchmarks
	$(BIN)/mypy tools tests src benchmarks

render: $(VENV)/.installed ## write the template's default rendering over the root instance
	$(BIN)/python -m tools.render_root

lock: $(VENV)/.installed ## re-resolve and pin every dependency (every platform, with hashes), then re-render the root instance
	$(BIN)/python -m tools.render_root
	$(UV_COMPILE) --custom-compile-command "$(PROJECT_COMPILE) -o requirements.lock pyproject.toml" \
		-o "$(TEMPLATE)/requirements.lock" pyproject.toml
	$(UV_COMPILE) --custom-compile-command \
		"$(PROJECT_COMPILE) --extra dev -c requirements.lock -o requirements-dev.lock pyproject.toml" \
		--extra dev -c "$(TEMPLATE)/requirements.lock" -o "$(TEMPLATE)/requirements-dev.lock" pyproject.toml
	$(BIN)/python -m tools.render_root
	$(UV_COMPILE) --custom-compile-command \
		"$(PROJECT_COMPILE) -c requirements.lock -o requirements-gitlab.lock requirements-gitlab.in" \
		-c "$(TEMPLATE)/requirements.lock" -o "$(TEMPLATE)/requirements-gitlab.lock" "$(TEMPLATE)/requirements-gitlab.in"
	$(UV_COMPILE) -o requirements-template.lock requirements-template.in

clean: ## remove build/ and pytest's cache
	rm -rf build .pytest_cache
