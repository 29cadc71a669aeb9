#!/usr/bin/env bash
# PUT /uri through our gateway against this machine's floor, measured in
# one run: the CPU the hashing Tahoe's formats fix, TLS, AES, erasure
# coding and fresh pages take, spread perfectly over both cores, with the
# arithmetic printed (benches/grid/floor.rs).
# usage: bench-floor.sh [SIZES_MIB...]   (default: 16 128)
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench grid -- --floor "$@"
