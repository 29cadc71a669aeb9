# The two commands a newcomer needs: `make` builds the release binary,
# `make test` checks formatting and lints and runs the whole test suite.
CARGO ?= cargo

.PHONY: all build test deps fmt-check clippy unit test-no-avx2 bench

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

# The codec test binaries again, on an emulated x86-64 CPU without AVX2
# (qemu user mode, installed when missing): proves the run-time SIMD choice.
test-no-avx2: unit
	CARGO=$(CARGO) scripts/test-no-avx2.sh

test: fmt-check clippy unit test-no-avx2

# Benchmarks are not tests: run them on a quiet machine and compare figures
# taken in the same run.
bench:
	$(CARGO) bench --bench codecs
	$(CARGO) bench --bench ciphers
	$(CARGO) bench --bench immutable
	$(CARGO) bench --bench pipeline
	$(CARGO) bench --bench grid
