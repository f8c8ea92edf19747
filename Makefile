# The whole developer workflow. Everything runs inside .venv, made by `make setup`.
PY      := .venv/bin/python
VENV    := .venv/.installed
export PATH := $(CURDIR)/.venv/bin:$(PATH)
# pip quiet, wherever it runs (maturin develop runs it too), and without its upgrade notice.
export PIP_QUIET := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# The demo's Redis: `make demo URL=redis://...`, or REDIS_URL in the environment; else a private one.
DEMO_URL = $(or $(URL),$(REDIS_URL))

.PHONY: setup build build-release test test-rust test-python stubtest lint fmt demo redis-server bench bench-quick soak clean

# The venv holds only the build tools; `maturin develop --extras test` (the build) installs jobpool's
# dependencies and its test extras from pyproject.toml, the one list of them.
$(VENV): pyproject.toml
	python3 -m venv .venv
	$(PY) -m pip install --quiet --upgrade pip "maturin>=1.7,<2"
	touch $(VENV)

setup: $(VENV) build          ## venv, a debug build of the extension, and the dependencies (pyproject's, with the test extras)

build: $(VENV)                ## debug build of jobpool._native into the venv (fast to compile)
	maturin develop --quiet --extras test

build-release: $(VENV)        ## optimised build, for benchmarks
	maturin develop --quiet --release --extras test

test: setup test-rust stubtest lint test-python   ## everything CI runs

test-rust:
	cargo test --quiet

stubtest:                     ## the hand-written _native.pyi against the built module
	$(PY) -m mypy.stubtest jobpool._native --allowlist stubtest-allowlist.txt

test-python:
	$(PY) -m pytest -q

lint: setup                   ## cargo fmt and clippy, ruff, mypy (the tools come with the test extras)
	cargo fmt --check
	cargo clippy --all-targets --features python -- -D warnings
	ruff check python tests bench examples
	ruff format --check python tests bench examples
	$(PY) -m mypy

fmt:
	cargo fmt
	ruff format python tests bench examples
	ruff check --fix python tests bench examples

demo: $(if $(DEMO_URL),,redis-server) setup  ## jobs enqueued with jobpool, run on a pool, and read back, on a private redis-server (or URL=redis://...)
	$(PY) examples/demo.py $(if $(DEMO_URL),--url '$(DEMO_URL)')

redis-server:                 ## redis-server on the PATH: installed if missing (root, on Debian), else one line saying how
	@python3 examples/ensure_redis_server.py

bench: $(VENV) build-release  ## the benchmark suite against RQ (< 15 min): bench/results/<date>.{json,md}, docs/img/*.png
	$(PY) -m bench --profile full

bench-quick: $(VENV) build-release  ## a small run of the same suite (< 1 min), into bench/results/<date>-quick.*
	$(PY) -m bench --profile quick

soak: $(VENV)                 ## an idle pool's memory over an hour, at low priority, on the installed build (make build-release first): bench/results/<date>-soak.{json,md}
	nice -n 10 $(PY) -m bench.soak --seconds $(or $(SOAK_SECONDS),3600)

clean:
	rm -rf .venv target
