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

$(VENV): pyproject.toml
	python3 -m venv .venv
	$(PY) -m pip install --quiet --upgrade pip "maturin>=1.7,<2"
	$(PY) -m pip install --quiet "redis>=5.0.1" "psutil>=5.9" "setproctitle>=1.3" \
		"pytest>=8" "rq==3.0.*" "mypy>=1.10" "ruff>=0.6" "types-psutil" "matplotlib>=3.8" \
		"dramatiq[redis]>=2.2,<3" "prometheus-client>=0.20" "rq-dashboard==0.9.*" "six"
	touch $(VENV)

setup: $(VENV) build          ## venv, dependencies, and a debug build of the extension

build: $(VENV)                ## debug build of jobpool._native into the venv (fast to compile)
	maturin develop --quiet --extras test

build-release: $(VENV)        ## optimised build, for benchmarks
	maturin develop --quiet --release --extras test

test: setup test-rust stubtest lint test-python   ## everything CI runs

test-rust:
	cargo test --quiet

stubtest:                     ## the hand-written _native.pyi against the built module
	$(PY) -m mypy.stubtest jobpool._native --ignore-missing-stub

test-python:
	$(PY) -m pytest -q

lint: $(VENV)
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
	$(PY) bench/suite.py --profile full

bench-quick: $(VENV) build-release  ## a small run of the same suite (< 1 min), into bench/results/<date>-quick.*
	$(PY) bench/suite.py --profile quick

soak: $(VENV)                 ## an idle pool's memory over an hour, at low priority, on the installed build (make build-release first): bench/results/<date>-soak.{json,md}
	nice -n 10 $(PY) bench/soak.py --seconds $(or $(SOAK_SECONDS),3600)

clean:
	rm -rf .venv target
