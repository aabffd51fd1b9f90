# The two commands a newcomer needs: `make demo` and `make test` (see README.md).
SHELL := /bin/bash
LAB := python3 lab/labctl.py

.PHONY: help setup demo test lint unit molecule backup-tests lab-tests lab lab-up lab-down lab-status lab-reset lab-images history ee

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

setup: ## Install the toolchain and make sure a Docker engine runs (idempotent)
	@scripts/setup.sh

demo: setup ## Set everything up, bring up the lab and run the main job against it
	@$(LAB) up
	@scripts/demo.sh

test: setup ## Run every test: lint, unit, molecule, backup scripts, the lab end-to-end suites
	@scripts/test.sh

lint: setup ## ruff, yamllint, ansible-lint (production profile)
	@scripts/test.sh lint

unit: setup ## pytest unit tests
	@scripts/test.sh unit

molecule: setup ## molecule test for every scenario in molecule/
	@scripts/test.sh molecule

backup-tests: setup ## The backup scripts against real PostgreSQL containers
	@scripts/test.sh backup

lab-tests: setup ## Lab up, every lab test (LAB_TESTS=test_deploy,... for some), lab down
	@scripts/test.sh lab

lab lab-up: setup ## Bring the lab up (or bring it back to the wanted state)
	@$(LAB) up

lab-down: ## Remove the lab's containers, network and volumes
	@$(LAB) down

lab-status: ## Show the lab's hosts
	@$(LAB) status

lab-reset: setup ## Remove and recreate the lab
	@$(LAB) reset

lab-images: ## Build the lab images only
	@$(LAB) images

HISTORY_PORT ?= 8000
history: ## Browse the recorded runs: ARA's web UI on http://127.0.0.1:8000 (HISTORY_PORT=...; docs/history.md)
	@ARA_BASE_DIR=$${ARA_BASE_DIR:-$(CURDIR)/.ara/server} .venv/bin/ara-manage runserver 127.0.0.1:$(HISTORY_PORT)

ee: setup ## Build the execution environment image (AWX) and push it to the lab registry
	@scripts/build-ee.sh
