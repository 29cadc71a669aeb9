#!/usr/bin/env bash
# Capture what Tahoe-LAFS 1.20's gateway answers to the operations started
# by handle (t=start-deep-check, with and without repair=true, and
# t=start-manifest as JSON and text), into tests/data/tahoe-start-*.
# Needs the reference grid: ../shared/bench/tahoe-grid.sh start wait.
# The tree: a directory with a 200 kB CHK file, a LIT file and a
# subdirectory holding the same CHK file again; the deep checks run with
# one of the ten storage nodes (s10) stopped, so that every object is
# unhealthy and the repair has something to do.
set -euo pipefail
BASE=${BASE:-/tmp/tahoe-lafs-grid}
GW=http://127.0.0.1:23300
OUT=${OUT:-$(dirname "$0")/../tests/data}
poll() { # HANDLE OUTPUT FILE
  for _ in $(seq 120); do
    curl -s "$GW/operations/$1?t=status&output=$2" > "$3"
    grep -q '"finished": true\|^finished: yes' "$3" && return 0
    sleep 1
  done
  echo "operation $1 did not finish" >&2; return 1
}
D=$(curl -sf -X POST "$GW/uri?t=mkdir")
head -c 200000 /dev/urandom > /tmp/start-ops-200k
curl -sf -X PUT --data-binary @/tmp/start-ops-200k "$GW/uri/$D/a.bin" >/dev/null
curl -sf -X PUT --data-binary "tiny literal" "$GW/uri/$D/tiny" >/dev/null
curl -sf -X POST "$GW/uri/$D/sub?t=mkdir" >/dev/null
curl -sf -X PUT --data-binary @/tmp/start-ops-200k "$GW/uri/$D/sub/b.bin" >/dev/null
curl -sf -X POST "$GW/uri/$D?t=start-manifest&ophandle=m1&output=JSON" -o /dev/null
poll m1 JSON "$OUT/tahoe-start-manifest.json"
poll m1 text "$OUT/tahoe-start-manifest.txt"
kill "$(cat "$BASE/pids/s10.pid")"
sleep 5
curl -sf -X POST "$GW/uri/$D?t=start-deep-check&ophandle=dc1&output=JSON" -o /dev/null
poll dc1 JSON "$OUT/tahoe-start-deep-check.json"
curl -sf -X POST "$GW/uri/$D?t=start-deep-check&repair=true&ophandle=dc2&output=JSON" -o /dev/null
poll dc2 JSON "$OUT/tahoe-start-deep-check-repair.json"
