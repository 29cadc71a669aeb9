#!/usr/bin/env bash
# Make the base directories tests/it/grids/upgrade.rs starts today's tahoe
# on: a grid made and used by the tahoe of an earlier commit (the last
# release; 2f295a6 by default, the tree of 2026-12-05), committed under
# tests/data/upgrade/COMMIT/. Run again, with the next release's commit,
# when a release ships.
#
#   scripts/make-upgrade-fixtures.sh [COMMIT]     (as root: it makes a
#                                                  network namespace)
#
# It builds COMMIT's `tahoe` in a worktree (sharing this target/ for the
# dependencies; its binary is kept as target/upgrade-from/tahoe-COMMIT),
# then, in a network namespace of its own (so that the fixed ports below
# are free), makes a queen and four storage clients (2-of-4, happy 3),
# uploads a LIT, a CHK, an SDMF and an MDMF file, a directory, an alias
# and a kept file, lets the lease crawler and maintenance write their
# state, stops the grid, and writes expected.json: each file's grid path,
# cap, size and SHA-256 (of the input, by sha256sum: not by tahoe).
set -euo pipefail
cd "$(dirname "$0")/.."
commit=$(git rev-parse --short=7 "${1:-2f295a6}")
out=tests/data/upgrade/$commit
[ "$(id -u)" = 0 ] || { echo "run as root (network namespace)" >&2; exit 1; }

work=$(mktemp -d)
ns="fixture$$"
cleanup() {
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
    git worktree remove --force "$work/src" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# The old binary.
bin=target/upgrade-from/tahoe-$commit
if [ ! -x "$bin" ]; then
    git worktree add --detach "$work/src" "$commit" >/dev/null
    CARGO_TARGET_DIR="$(pwd)/target" cargo build --release --bin tahoe \
        --manifest-path "$work/src/Cargo.toml"
    mkdir -p target/upgrade-from
    cp target/release/tahoe "$bin"
    # target/release/tahoe is this tree's again at its next build.
    rm -f target/release/tahoe
fi
bin=$(realpath "$bin")
"$bin" --version

ip netns add "$ns"
ip -n "$ns" link set lo up
t() { ip netns exec "$ns" "$bin" "$@"; }

grid=$work/grid
mkdir -p "$grid"
encoding=$'\n[encoding]\nk = 2\nhappy = 3\nn = 4\n\n[storage.crawler]\ncycle_interval = "2s"\n'
t create-queen --basedir "$grid/queen" --listen 127.0.0.1:3456
printf '%s' "$encoding" | sed '/storage.crawler/,$d' >> "$grid/queen/tahoe.toml"
t start --basedir "$grid/queen"
url=$(cat "$grid/queen/introducer.url")
vdrive=$(cat "$grid/queen/vdrive.cap")
for i in 1 2 3 4; do
    c=$grid/client$i
    t create-client --basedir "$c" --introducer "$url" --vdrive "$vdrive" --nickname "client$i"
    printf '\n[transport]\nlisten = "127.0.0.1:%s"\n%s' "$((3456 + i))" "$encoding" >> "$c/tahoe.toml"
    t start --basedir "$c"
done
C=$grid/client1
for _ in $(seq 100); do t ls -d "$C" tahoe: >/dev/null 2>&1 && break; sleep 0.3; done
t ls -d "$C" tahoe: >/dev/null

# The files: made by python's seeded generator, hashed by sha256sum.
files=$work/files
mkdir -p "$files"
python3 - "$files" <<'PY'
import random, sys
d = sys.argv[1]
r = random.Random(20261205)
for name, size in [("lit.txt", 40), ("chk.bin", 120_000), ("sdmf.txt", 9_000),
                   ("mdmf.bin", 150_000), ("aliased.bin", 5_000), ("kept.bin", 3_000)]:
    open(f"{d}/{name}", "wb").write(bytes(r.getrandbits(8) for _ in range(size)))
PY
entries=()
# Each put on a line of its own: set -e does not see a command
# substitution fail inside another command's arguments.
add() { # PATH-ON-GRID CAP FILE
    local size sum
    [ -n "$2" ] || { echo "no cap for $3" >&2; exit 1; }
    size=$(stat -c %s "$3")
    sum=$(sha256sum "$3" | cut -d' ' -f1)
    entries+=("$(printf '{"path": "%s", "cap": "%s", "size": %s, "sha256": "%s"}' "$1" "$2" "$size" "$sum")")
}
cap=$(t put -d "$C" "$files/lit.txt" tahoe:lit.txt)
add "tahoe:lit.txt" "$cap" "$files/lit.txt"
t mkdir -d "$C" tahoe:docs >/dev/null
cap=$(t put -d "$C" "$files/chk.bin" tahoe:docs/chk.bin)
add "tahoe:docs/chk.bin" "$cap" "$files/chk.bin"
cap=$(t put -d "$C" --mutable "$files/sdmf.txt" tahoe:sdmf.txt)
add "tahoe:sdmf.txt" "$cap" "$files/sdmf.txt"
cap=$(t put -d "$C" --format mdmf "$files/mdmf.bin" tahoe:mdmf.bin)
add "tahoe:mdmf.bin" "$cap" "$files/mdmf.bin"
t create-alias -d "$C" backup
cap=$(t put -d "$C" "$files/aliased.bin" backup:aliased.bin)
add "backup:aliased.bin" "$cap" "$files/aliased.bin"
cap=$(t put -d "$C" --keep "$files/kept.bin")
add "" "$cap" "$files/kept.bin"

# The crawler's and maintenance's state on disk (the crawler cycles every
# 2 s here; maintenance runs a first cycle soon after start).
for _ in $(seq 100); do
    [ -f "$C/crawler/state.json" ] && [ -f "$C/maintenance/state.json" ] \
        && python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["history"] else 1)' "$C/crawler/state.json" \
        && break
    sleep 0.5
done
python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["history"] else 1)' "$C/crawler/state.json" \
    || { echo "the crawler finished no cycle" >&2; exit 1; }
for f in crawler/state.json maintenance/state.json servers.json private/aliases private/keep storage/shares; do
    [ -e "$C/$f" ] || { echo "no $f in $C" >&2; exit 1; }
done

for i in 4 3 2 1; do t stop --basedir "$grid/client$i"; done
t stop --basedir "$grid/queen"
# What a node writes while it runs, or only for people: not fixtures.
find "$grid" \( -name logs -o -name tmp -o -name incoming -o -name 's3-spool' \) -prune -exec rm -rf {} +
find "$grid" \( -type s -o -name node.pid -o -name node.lock -o -name status.json -o -name '*.tmp' \) -delete

rm -rf "$out"
mkdir -p "$(dirname "$out")"
cp -a "$grid" "$out"
{
    printf '{\n  "commit": "%s",\n  "version": "%s",\n  "files": [\n' "$commit" "$("$bin" --version)"
    for i in "${!entries[@]}"; do
        sep=$([ "$i" -lt $((${#entries[@]} - 1)) ] && echo , || true)
        printf '    %s%s\n' "${entries[$i]}" "$sep"
    done
    printf '  ]\n}\n'
} > "$out/expected.json"
python3 -m json.tool "$out/expected.json" >/dev/null
du -sh "$out"
echo "fixtures in $out"
