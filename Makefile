# warren's one gate: `make verify` runs exactly what CI runs (.ci/run calls it), read-only.
#   make verify   format check, clippy, tests, doctests, docs, criterion smoke, kazoo's suite
#                 (one server and three), the Docker compose test
#   make kazoo    kazoo 2.11's own test suite against `warren server` (tests/kazoo/)
#   make kazoo-ensemble    the same suite against a 3-server warren ensemble (kazoo's
#                 default cluster size; its tests that stop and start servers run too)
#   make kazoo-zookeeper   the same suite against Apache ZooKeeper 3.8, our reference
# Prerequisites (kazoo's venv, Debian's zookeeper) are installed by `bash .ci/run`.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c

# One build directory shared by every checkout and CI run, so repeated runs reuse builds.
CARGO_TARGET_DIR ?= $(HOME)/.cache/warren/target
export CARGO_TARGET_DIR
CARGO ?= cargo
WARREN_BIN ?= $(CARGO_TARGET_DIR)/debug/warren
WARREN_IMAGE ?= warren:latest

.PHONY: verify fmt-check clippy test doctest doc bench-smoke kazoo kazoo-ensemble kazoo-zookeeper \
	build image compose-test

verify: fmt-check clippy test doctest doc bench-smoke kazoo kazoo-ensemble compose-test
	@echo "verify: all checks passed"

fmt-check:
	@echo "== cargo fmt --check"
	$(CARGO) fmt --all -- --check

clippy:
	@echo "== cargo clippy"
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

test:
	@echo "== cargo nextest"
	$(CARGO) nextest run --locked --workspace --profile ci

doctest:
	@echo "== cargo test --doc"
	$(CARGO) test --locked --workspace --doc

doc:
	@echo "== cargo doc"
	RUSTDOCFLAGS=-Dwarnings $(CARGO) doc --locked --workspace --no-deps

# Every criterion benchmark once, as a test, so the benches never rot (debug build, shared
# with the tests; timing is for `cargo bench`, never for a test).
bench-smoke:
	@echo "== criterion benches, once each"
	$(CARGO) test --locked --workspace --bench '*'

build:
	$(CARGO) build --locked -p warren

kazoo: build
	@echo "== kazoo against warren ($(WARREN_BIN))"
	WARREN_BIN=$(WARREN_BIN) KAZOO_TARGET=warren tests/kazoo/run.sh

kazoo-ensemble: build
	@echo "== kazoo against a 3-server warren ensemble ($(WARREN_BIN))"
	WARREN_BIN=$(WARREN_BIN) KAZOO_TARGET=warren KAZOO_CLUSTER_SIZE=3 tests/kazoo/run.sh

kazoo-zookeeper:
	@echo "== kazoo against Apache ZooKeeper 3.8"
	KAZOO_TARGET=zookeeper tests/kazoo/run.sh

image:
	docker/build-image.sh $(WARREN_IMAGE)

# The one test that needs Docker (ignored by plain nextest runs, which have no image): it
# builds the image, then runs crates/warren/tests/compose.rs alone. Without a running Docker
# engine and docker-compose (or `docker compose`) it fails under CI=true and is skipped,
# saying so, elsewhere.
compose-test:
	@echo "== warren compose: 3 servers in Docker, the leader's container killed"
	@if ! docker info >/dev/null 2>&1 || ! { command -v docker-compose >/dev/null || \
	        docker compose version >/dev/null 2>&1; }; then \
	    if [ "$${CI:-}" = true ]; then \
	        echo "compose-test: FAILED: no Docker engine answers or no compose tool" >&2; exit 1; \
	    fi; \
	    echo "compose-test: SKIPPED: no Docker engine or compose tool here (CI runs it)" >&2; \
	else \
	    $(MAKE) --no-print-directory image && \
	    WARREN_IMAGE=$(WARREN_IMAGE) $(CARGO) nextest run --locked -p warren --profile ci \
	        --test compose --run-ignored only --success-output final; \
	fi
