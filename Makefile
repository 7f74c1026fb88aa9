# transfer-runner — `make demo` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_DIR ?= demo
# The suite runs on every core (pytest-xdist: each worker starts its own S3 server on
# loopback); PYTEST_ARGS="-p no:xdist" runs it in one process, in file order.
PYTEST_ARGS ?= -n auto

.PHONY: install lock demo test test-unit test-soak lint check bench-export bench-bulk clean bench-live bench-refresh bench-validate bench-waves bench-http-export bench-html-report bench-startup

# Every dependency comes from the lock, hash-checked (requirements/dev.txt: the runtime, the
# [sandbox] and [test] extras, setuptools); the package itself from this checkout, built with
# the locked setuptools. `make lock` regenerates the locks after setup.cfg changes.
$(VENV)/.installed: setup.cfg pyproject.toml requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes --no-deps -r requirements/dev.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

install: $(VENV)/.installed ## create the venv and install the package with test extras, from the lock

# The runtime lock's wheels, for tests that install the package offline (the pre-commit hook).
WHEELHOUSE ?= build/wheelhouse
$(WHEELHOUSE)/.downloaded: requirements/runtime.txt | $(VENV)/.installed
	$(PY) -m pip download --quiet --require-hashes --no-deps -r requirements/runtime.txt -d $(WHEELHOUSE)
	touch $@

LOCK := $(VENV)/bin/uv pip compile setup.cfg requirements/build.in --universal --python-version 3.11 --generate-hashes --quiet
lock: install ## regenerate requirements/*.txt from setup.cfg (uv; keeps pins that still satisfy it; add --upgrade to LOCK for the newest)
	$(PY) -m pip install --quiet uv
	$(LOCK) -o requirements/runtime.txt
	$(LOCK) --extra sandbox --extra test -o requirements/dev.txt

demo: install ## start S3 on loopback, create the sandbox, apply examples/transfers twice
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" DEMO_DIR="$(DEMO_DIR)" bash tools/demo.sh

# Screenshots the browser and terminal tests take (the HTML report, the live view) land here.
TEST_ARTIFACTS ?= build/test-artifacts

test: install $(WHEELHOUSE)/.downloaded ## the whole suite (unit, functional, integration, end to end; Chromium for the HTML report)
	bash tools/ensure_chromium.sh
	TRANSFER_RUNNER_TEST_ARTIFACTS="$(CURDIR)/$(TEST_ARTIFACTS)" $(PY) -m pytest -q $(PYTEST_ARGS)

test-unit: install
	$(PY) -m pytest -q tests/unit $(PYTEST_ARGS)

test-soak: install ## the long runs: many more fault schedules and hostile inputs (see RELIABILITY.md)
	TRANSFER_RUNNER_SOAK=1 $(PY) -m pytest -q tests/functional/test_fault_schedules.py \
		tests/unit/test_hostile_manifests.py tests/integration/test_crash_matrix.py \
		tests/integration/test_live_mailbox_property.py $(PYTEST_ARGS)

lint: install ## ruff: lint and format check
	$(VENV)/bin/ruff check transfer_runner tests tools bench
	$(VENV)/bin/ruff format --check transfer_runner tests tools bench

check: lint ## lint, format and mypy --strict on the package (what .ci/run runs before the tests)
	$(VENV)/bin/mypy

bench-export: install ## export benchmark against SeaweedFS on loopback (see bench/RESULTS.md)
	$(PY) -m pip install --quiet awscli
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) bench/bench_export.py $(BENCH_ARGS)

bench-validate: install ## validate of 10,000 generated manifests against a C-loader parse of them (bench/RESULTS.md)
	$(PY) bench/bench_validate.py $(BENCH_ARGS)

bench-live: install ## live mailbox: one apply while mail flows vs a frozen one; a pre-staged cut-over (bench/RESULTS.md)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) bench/bench_live.py $(BENCH_ARGS)

bench-bulk: install ## 1,000 transfers at forks 1/8/32 vs ansible-core's overhead (bench/RESULTS.md)
	$(PY) -m pip install --quiet ansible-core
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) bench/bench_bulk.py $(BENCH_ARGS)

bench-waves: install ## a wave over sandbox serve at forks 32: SQLite vs S3 state, --procs (bench/RESULTS.md)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) bench/bench_waves.py $(BENCH_ARGS)

bench-startup: install ## --help and validate FILE beside importing click (and yaml, jsonschema) alone
	$(PY) bench/bench_startup.py $(BENCH_ARGS)

bench-html-report: install ## report --format html of 2,000 transfers opened in headless Chromium (bench/RESULTS.md)
	bash tools/ensure_chromium.sh
	$(PY) bench/bench_html_report.py $(BENCH_ARGS)

bench-http-export: install ## a store of 16,000 messages exported over HTTP with 0/5/30% faults: one message a request vs pages
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) bench/bench_http_export.py $(BENCH_ARGS)

bench-refresh: install ## a refreshing plan of 1,000 completed transfers over sandbox serve; preflight failures
	$(PY) bench/bench_refresh.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(DEMO_DIR) $(WHEELHOUSE) .transfer-runner .pytest_cache *.egg-info
