# The two commands a newcomer needs: `make` builds the release binary,
# `make test` checks formatting and lints and runs the whole test suite.
CARGO ?= cargo

.PHONY: all build test deps fmt-check clippy unit bench

all: build

build:
	$(CARGO) build --release --workspace

# Install what the checks need (rustfmt, clippy) when the toolchain lacks it.
deps:
	@$(CARGO) fmt --version >/dev/null 2>&1 || rustup component add rustfmt
	@$(CARGO) clippy --version >/dev/null 2>&1 || rustup component add clippy

fmt-check: deps
	$(CARGO) fmt --all --check

clippy: deps
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test --workspace

test: fmt-check clippy unit

# Benchmarks are not tests: run them on a quiet machine and compare figures
# taken in the same run.
bench:
	$(CARGO) bench --bench codecs
	$(CARGO) bench --bench ciphers
