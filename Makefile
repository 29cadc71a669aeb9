# The two commands a newcomer needs: `make` builds the release binary,
# `make test` checks formatting and lints and runs the whole test suite.
CARGO ?= cargo

.PHONY: all build test deb deb-deps deb-check net-deps deps doc layers browser-deps s3-deps fs-deps fmt-check clippy unit test-no-avx2 bench fuzz fuzz-deps fuzz-smoke

all: build

build:
	$(CARGO) build --release --workspace

# Install what the checks need when missing (the pinned toolchain, a C
# compiler, python3-venv; rustfmt and clippy), or fail at once saying how.
deps:
	@scripts/check-deps.sh
	@$(CARGO) fmt --version >/dev/null 2>&1 || rustup component add rustfmt
	@$(CARGO) clippy --version >/dev/null 2>&1 || rustup component add clippy

fmt-check: deps
	$(CARGO) fmt --all --check
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml --check

clippy: deps
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The API docs build without a broken or private link.
doc: deps
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --workspace

# The browser test (tests/it/web/browser.rs) drives Debian's Chromium
# through chromedriver: installed here when missing (as root, or through
# sudo).
browser-deps:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium chromium-driver; \
	fi

# The S3 backend's tests (plugins/s3, tests/it/grids/backends.rs) run
# against moto's server mode, a local S3 server from PyPI, installed here
# when missing; the S3 gateway's tests (tests/it/frontends/s3.rs) drive
# the gateway with boto3 from the same place.
S3_VENV = target/s3-venv
s3-deps:
	@if [ ! -x $(S3_VENV)/bin/moto_server ]; then \
		python3 -m venv $(S3_VENV) && $(S3_VENV)/bin/pip install -q "moto[server]==5.2.5" "boto3==1.44.18"; \
	fi

# The file-system front ends' tests (tests/it/frontends) use real
# clients: the kernel's FUSE through fusermount3, OpenSSH's sftp and
# ssh-keygen, sshfs, rsync and rclone, and restic for the S3 gateway;
# installed here when missing. A machine without /dev/fuse fails those
# tests by name.
FS_TOOLS = fusermount3 sftp ssh-keygen sshfs rsync rclone restic
fs-deps:
	@missing=""; for t in $(FS_TOOLS); do command -v $$t >/dev/null || missing=1; done; \
	if [ -n "$$missing" ]; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && $$SUDO apt-get install -y -q fuse3 openssh-client sshfs rsync rclone restic; \
	fi

# The multi-host test (tests/it/grids/hosts.rs) makes network namespaces
# joined by a bridge with iproute2 (`ip`, `tc`; as root) and talks to a
# node's gateway inside one with curl: installed here when missing.
net-deps:
	@if ! command -v ip >/dev/null || ! command -v tc >/dev/null || ! command -v curl >/dev/null; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && $$SUDO apt-get install -y -q iproute2 curl; \
	fi

unit: deps browser-deps s3-deps fs-deps net-deps
	$(CARGO) test --workspace

# The codec test binaries again, on an emulated x86-64 CPU without AVX2
# (qemu user mode, installed when missing): proves the run-time SIMD choice.
test-no-avx2: unit
	CARGO=$(CARGO) scripts/test-no-avx2.sh

# Fuzz targets (fuzz/README.md): `make fuzz` runs each for FUZZ_SECONDS;
# `make test` runs each briefly. One stable toolchain here, so no
# sanitizer (-s none): libFuzzer's coverage guidance, with panics, overflow
# checks and aborts as the failures.
FUZZ_TARGETS = cap ueb share_layout announcement rpc_frame mutable_share dirnode
FUZZ_SECONDS ?= 600

fuzz-deps:
	@$(CARGO) fuzz --version >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --version 0.13.2 --locked

fuzz: fuzz-deps
	cd fuzz && for t in $(FUZZ_TARGETS); do \
		mkdir -p corpus/$$t && \
		$(CARGO) fuzz run -s none -a $(FUZZ_BUILD) $$t corpus/$$t -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 || exit 1; \
	done

# The smoke run builds the targets unoptimised (--dev): ten seconds a
# target find crashes on the corpus and near it, where compiling every
# dependency at opt-level 3 would cost minutes more than it gains.
fuzz-smoke:
	$(MAKE) fuzz FUZZ_SECONDS=10 FUZZ_BUILD=--dev

# The layers of tahoe-core and of src/ (scripts/layers.py): no upward
# import, no import between siblings, no cycle.
layers:
	python3 scripts/layers.py

test: fmt-check clippy doc layers unit test-no-avx2 fuzz-smoke deb-check

# The package `make test` checks holds the test build's binary (see deb).
test: DEB_PROFILE = test

# The Debian package (cargo-deb, installed when missing): the release
# binary, the man pages and completions it writes of itself, the example
# configurations and the systemd unit (packaging/debian/). Written to
# target/debian/; tests/it/packaging checks what is in it.
CARGO_DEB_VERSION = 3.8.0
deb-deps:
	@$(CARGO) deb --version >/dev/null 2>&1 || $(CARGO) install cargo-deb --version $(CARGO_DEB_VERSION) --locked

# DEB_PROFILE chooses the binary packaged: `release` (the default, what
# `make deb` ships) compiles it; `test` takes the one `cargo test
# --workspace` already compiled (target/debug/tahoe: optimised, with debug
# assertions), which is what `make test` checks. Decision: deb-check is
# about the package (its files, man pages, completions, unit, install,
# purge), not the optimiser, and a second, release compile of the whole
# tree cost CI about ten minutes of its 45. cargo-deb names the test
# profile's directory target/test, so the binary is copied there.
DEB_PROFILE ?= release
# (A shell test, not make's ifeq: `test`'s target-specific DEB_PROFILE is
# set only when the recipe runs, after make has read the conditionals.)
deb: deb-deps
	if [ "$(DEB_PROFILE)" = test ]; then \
		test -x target/debug/tahoe || { echo "deb: no target/debug/tahoe: run cargo test --workspace first" >&2; exit 1; }; \
		mkdir -p target/test && cp target/debug/tahoe target/test/tahoe; \
	else \
		$(CARGO) build --profile $(DEB_PROFILE) --bin tahoe; \
	fi
	rm -rf target/dist target/debian/tahoe_*.deb
	target/$(DEB_PROFILE)/tahoe debug dist-files target/dist
	$(CARGO) deb --no-build --profile $(DEB_PROFILE) --strip --no-separate-debug-symbols

# What an operator's machine would see of the package: contents, the
# binary run, man pages rendered, lintian, systemd-analyze verify.
deb-check: deb
	scripts/check-deb.sh

# Benchmarks are not tests: run them on a quiet machine and compare figures
# taken in the same run.
bench:
	$(CARGO) bench --bench codecs
	$(CARGO) bench --bench ciphers
	$(CARGO) bench --bench immutable
	$(CARGO) bench --bench pipeline
	$(CARGO) bench --bench grid
	$(CARGO) bench --bench storage
