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

# The codecs again, on an emulated x86-64 CPU without AVX2 (qemu user mode):
# proves the run-time SIMD choice keeps a binary built here from dying with an
# illegal instruction on older CPUs. Installs qemu-user when missing.
QEMU_X86 ?= qemu-x86_64
test-no-avx2:
ifeq ($(shell uname -m),x86_64)
	@command -v $(QEMU_X86) >/dev/null 2>&1 || { \
		echo "installing qemu-user for the no-AVX2 codec tests"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user) >/dev/null \
		|| { echo "error: qemu-user is needed for test-no-avx2 and could not be installed" >&2; exit 1; }; }
	TAHOE_EXPECT_NO_SIMD=1 CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="$(QEMU_X86) -cpu Nehalem" \
		$(CARGO) test -p tahoe-gf256 -p tahoe-codec-crs -p tahoe-codec-reed-solomon
else
	@echo "test-no-avx2: not an x86-64 host, nothing to emulate"
endif

test: fmt-check clippy unit test-no-avx2

# Benchmarks are not tests: run them on a quiet machine and compare figures
# taken in the same run.
bench:
	$(CARGO) bench --bench codecs
	$(CARGO) bench --bench ciphers
	$(CARGO) bench --bench immutable
	$(CARGO) bench --bench pipeline
	$(CARGO) bench --bench grid
