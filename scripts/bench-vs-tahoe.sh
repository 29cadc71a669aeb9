#!/usr/bin/env bash
# The grid bench side by side with Tahoe-LAFS 1.20 on this machine: starts
# the reference grid with ../shared/bench/tahoe-grid.sh (or $REFERENCE_GRID),
# runs `cargo bench --bench grid -- MODE --tahoe BASE` (our grid and
# theirs measured in turns, each frozen while the other runs), and stops
# the reference grid again. Prints a table of medians and ratios.
# usage: bench-vs-tahoe.sh --mutable|--dirs|--web [more bench arguments]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
TG=${REFERENCE_GRID:-$here/../shared/bench/tahoe-grid.sh}
export BASE=${BASE:-${TMPDIR:-/tmp}/tahoe-lafs-grid}
"$TG" install setup start wait >/dev/null
trap '"$TG" stop >/dev/null 2>&1' EXIT
cd "$here"
cargo bench --bench grid -- "$@" --tahoe "$BASE"
