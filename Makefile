# Two commands do all the set-up on a fresh machine:
#   make demo   install, then plan + apply examples/backfills against the bundled Mage emulator
#   make test   install, then ruff, mypy, the default test suite and the real-Mage conformance suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test lint typecheck test-default test-real-mage clean sync-schemas bench bench-real-mage

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: install
	PATH="$(CURDIR)/$(BIN):$$PATH" scripts/demo.sh

test: lint typecheck test-default test-real-mage

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

test-default: install
	$(BIN)/pytest

# The conformance suite against a throw-away real Mage 0.9.80 (installs it once, ~1.4 GB).
test-real-mage: install
	PYTEST=$(BIN)/pytest scripts/real-mage.sh

# Every benchmark in bench/ (bench/*_bench.py), one after another; each prints its figures as ratios
# to baselines measured in the same run.
bench: install
	@for module in $(sort $(basename $(notdir $(wildcard bench/*_bench.py)))); do \
		echo "== python -m bench.$$module"; $(BIN)/python -m bench.$$module || exit 1; \
	done

# apply against a throw-away real Mage 0.9.80, started as for test-real-mage: 100 of 200 backfills
# updated, against Mage's own time for the 100 PUTs.
bench-real-mage: install
	BFS_REAL_MAGE_RUN="$(BIN)/python -m bench.real_mage" scripts/real-mage.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info

# schemas/ is the published copy (editors); the package ships the same bytes (tests/test_schema.py checks).
sync-schemas:
	cp schemas/backfill-manifest.schema.json backfill_sync/schemas/backfill-manifest.schema.json
