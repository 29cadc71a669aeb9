#!/usr/bin/env bash
# Run the codec and SHA-256 lane test binaries on an emulated x86-64 CPU
# without AVX2 or the SHA extensions (qemu user mode), reusing the binaries `cargo test --workspace` built, so
# nothing is compiled again. Proves the run-time SIMD choice: a binary built
# here must not die with an illegal instruction on an older CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
QEMU=${QEMU_X86:-qemu-x86_64}
if [ "$(uname -m)" != x86_64 ]; then
    echo "test-no-avx2: not an x86-64 host, nothing to emulate"
    exit 0
fi
if ! command -v "$QEMU" >/dev/null 2>&1; then
    echo "installing qemu-user for the no-AVX2 codec tests"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user) >/dev/null \
        || { echo "error: qemu-user is needed for test-no-avx2 and could not be installed" >&2; exit 1; }
fi
mapfile -t exes < <("$CARGO" test --workspace --no-run --message-format=json 2>/dev/null | python3 -c '
import json, sys
want = {"tahoe-gf256", "tahoe-codec-crs", "tahoe-codec-reed-solomon", "tahoe-sha256x"}
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") != "compiler-artifact" or not m.get("executable"):
        continue
    # package_id: "path+file:///dir#name@version" (or "...dir#version"
    # when the name is the directory name).
    where, _, rest = m["package_id"].partition("#")
    name = rest.split("@")[0] if "@" in rest else where.rstrip("/").rsplit("/", 1)[-1]
    if name in want:
        print(m["executable"])
')
if [ "${#exes[@]}" -lt 4 ]; then
    echo "error: expected the gf256, crs, reed-solomon and sha256x test binaries, found ${#exes[@]}" >&2
    exit 1
fi
for exe in "${exes[@]}"; do
    echo "== $(basename "$exe") on an emulated CPU without AVX2 or SHA-NI"
    TAHOE_EXPECT_NO_SIMD=1 "$QEMU" -cpu Nehalem "$exe"
done
