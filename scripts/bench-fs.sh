#!/usr/bin/env bash
# The file-system front ends side by side with Tahoe-LAFS 1.20's SFTP
# server, in one run: upload and download of 1, 16 and 128 MiB through
# OpenSSH's sftp and through sshfs with cp, and a tree of 1,000 small
# files with rsync -a; ours also through `tahoe mount`, beside `tahoe put`
# and `tahoe get` of the same files. Each figure is the median of $RUNS;
# reads start from a dropped page cache (run as root).
#
# Tahoe's SFTP server keeps a batch session open after the last command,
# so each sftp transfer is timed inside the batch (`!date` before and
# after it), never as the sftp process.
#
# usage: scripts/bench-fs.sh   (RUNS=3 SIZES="1 16 128" FILES=1000 REF_FILES=100)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
TG=${REFERENCE_GRID:-$here/../shared/bench/tahoe-grid.sh}
export BASE=${BASE:-${TMPDIR:-/tmp}/tahoe-lafs-grid}
RUNS=${RUNS:-3}
SIZES=${SIZES:-"1 16 128"}
FILES=${FILES:-1000}
W=$(mktemp -d /tmp/bench-fs.XXXXXX)
MOUNTS=()
DEMO_PID=
MOUNT_PID=
cleanup() {
  for m in "${MOUNTS[@]}"; do fusermount3 -u "$m" 2>/dev/null || true; done
  [ -n "$MOUNT_PID" ] && kill -INT "$MOUNT_PID" 2>/dev/null || true
  [ -n "$DEMO_PID" ] && kill -INT "$DEMO_PID" 2>/dev/null && sleep 3 || true
  "$TG" stop >/dev/null 2>&1 || true
  rm -rf "$W"
}
trap cleanup EXIT

cd "$here"
cargo build -q --release --bin tahoe
T=$here/target/release/tahoe

echo "starting Tahoe-LAFS 1.20 (10 storage nodes + gateway) and its SFTP server..." >&2
"$TG" install setup start wait sftp >/dev/null 2>&1
echo "starting ours (tahoe demo: 10 storage nodes, node0 the gateway)..." >&2
"$T" demo --dir "$W/grid" --clients 10 >"$W/demo.log" 2>&1 &
DEMO_PID=$!
for _ in $(seq 1 300); do grep -q "Press Ctrl-C" "$W/demo.log" 2>/dev/null && break; sleep 0.2; done
N0=$W/grid/node0
OUR_PORT=$(sed -n '/^\[sftp\]/,/^\[/s/^port = //p' "$N0/tahoe.toml")

SSH_OPTS=(-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes -o LogLevel=ERROR)
# who: ours | tahoe -> "port key user"
endpoint() {
  case $1 in
    ours) echo "$OUR_PORT $N0/private/sftp-demo-key demo" ;;
    tahoe) echo "${SFTP_PORT:-23302} $BASE/sftp/id_ed25519 bench" ;;
  esac
}

now() { date +%s.%N; }
secs() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.3f}')" "$1" "$2"; }
median() { python3 -c "import sys, statistics; print(f'{statistics.median(map(float, sys.argv[1:])):.3f}')" "$@"; }
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }

# One sftp transfer ("put LOCAL REMOTE" or "get REMOTE LOCAL") timed
# inside the batch.
sftp_time() {
  local who=$1 cmd=$2 port key user
  read -r port key user <<<"$(endpoint "$who")"
  # Tahoe's server keeps the session open after the batch's last
  # command: the sftp is stopped once the second time is out.
  local log=$W/sftp.log pid out
  printf '!date +%%s.%%N\n%s\n!date +%%s.%%N\n' "$cmd" >"$W/batch"
  sftp -b "$W/batch" -P "$port" -i "$key" "${SSH_OPTS[@]}" "$user@127.0.0.1" >"$log" 2>/dev/null &
  pid=$!
  for _ in $(seq 1 6000); do
    [ "$(grep -cE '^[0-9]+\.[0-9]+$' "$log")" -ge 2 ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  out=$(grep -E '^[0-9]+\.[0-9]+$' "$log" || true)
  local a b
  a=$(echo "$out" | sed -n 1p)
  b=$(echo "$out" | sed -n 2p)
  [ -n "$a" ] && [ -n "$b" ] || { echo "sftp $who: $cmd failed" >&2; echo nan; return; }
  secs "$a" "$b"
}

sshfs_mount() {
  local who=$1 at=$2 port key user
  read -r port key user <<<"$(endpoint "$who")"
  mkdir -p "$at"
  sshfs -o "IdentityFile=$key,port=$port,StrictHostKeyChecking=no,UserKnownHostsFile=/dev/null,IdentitiesOnly=yes" \
    "$user@127.0.0.1:/" "$at"
  MOUNTS+=("$at")
}

timed() { local a b; a=$(now); "$@" >/dev/null; b=$(now); secs "$a" "$b"; }

# sshfs closes a file's SFTP handle after cp's close(2) returns, so cp's
# time leaves the upload out: an sshfs copy in is timed until the grid's
# directory (read through each side's web API) lists the file whole.
OUR_WEB=http://127.0.0.1:$(cat "$N0/webport" 2>/dev/null || sed -n '/^\[web\]/,/^\[/s/^port = //p' "$N0/tahoe.toml")
OUR_ROOT=$(cat "$N0/vdrive.cap")
TAHOE_WEB=http://127.0.0.1:23300
TAHOE_ROOT=$(awk '{print $4}' "$BASE/sftp/accounts")
landed() { # WHO NAME SIZE
  local web root
  case $1 in ours) web=$OUR_WEB root=$OUR_ROOT ;; tahoe) web=$TAHOE_WEB root=$TAHOE_ROOT ;; esac
  for _ in $(seq 1 60000); do
    curl -sf "$web/uri/$root/$2?t=json" 2>/dev/null | grep -q "\"size\": *$3\b" && return 0
    sleep 0.01
  done
  echo "$1: $2 never landed" >&2
}
timed_in() { # WHO SRC NAME
  local a b
  a=$(now)
  cp "$2" "$W/m-$1/$3"
  landed "$1" "$3" "$(stat -c %s "$2")"
  b=$(now)
  secs "$a" "$b"
}

printf '%-34s %10s %10s %8s\n' "operation (median of $RUNS, s)" ours tahoe ratio
row() { # name ours tahoe
  local r
  r=$(python3 -c "import sys; o, t = float(sys.argv[1]), float(sys.argv[2]); print(f'{t / o:.1f}x' if o > 0 else '-')" "$2" "$3")
  printf '%-34s %10s %10s %8s\n' "$1" "$2" "$3" "$r"
}
row1() { printf '%-34s %10s %10s %8s\n' "$1" "$2" "-" "-"; }

sshfs_mount ours "$W/m-ours"
sshfs_mount tahoe "$W/m-tahoe"
mkdir -p "$W/m-mount"
"$T" -d "$N0" mount "$W/m-mount" >"$W/mount.log" 2>&1 &
MOUNT_PID=$!
for _ in $(seq 1 100); do mountpoint -q "$W/m-mount" && break; sleep 0.1; done
MOUNTS+=("$W/m-mount")

for size in $SIZES; do
  f=$W/data-$size
  head -c $((size << 20)) /dev/urandom >"$f"
  declare -A t=()
  for run in $(seq 1 "$RUNS"); do
    for who in ours tahoe; do
      t[sftp-put-$who]+=" $(sftp_time "$who" "put $f f$size-$run")"
      drop_caches
      t[sftp-get-$who]+=" $(sftp_time "$who" "get f$size-$run $W/back")"
      cmp -s "$f" "$W/back" || echo "sftp $who get: wrong bytes" >&2
      t[sshfs-put-$who]+=" $(timed_in "$who" "$f" "s$size-$run")"
      drop_caches
      t[sshfs-get-$who]+=" $(timed cp "$W/m-$who/s$size-$run" "$W/back")"
      cmp -s "$f" "$W/back" || echo "sshfs $who cp: wrong bytes" >&2
    done
    t[mount-put]+=" $(timed cp "$f" "$W/m-mount/m$size-$run")"
    drop_caches
    t[mount-get]+=" $(timed cp "$W/m-mount/m$size-$run" "$W/back")"
    cmp -s "$f" "$W/back" || echo "mount cp: wrong bytes" >&2
    a=$(now); cap=$("$T" -d "$N0" put "$f"); b=$(now)
    t[cli-put]+=" $(secs "$a" "$b")"
    drop_caches
    t[cli-get]+=" $(timed "$T" -d "$N0" get "$cap" "$W/back")"
  done
  # shellcheck disable=SC2086
  {
    row "sftp put ${size} MiB" "$(median ${t[sftp-put-ours]})" "$(median ${t[sftp-put-tahoe]})"
    row "sftp get ${size} MiB" "$(median ${t[sftp-get-ours]})" "$(median ${t[sftp-get-tahoe]})"
    row "sshfs cp in ${size} MiB (landed)" "$(median ${t[sshfs-put-ours]})" "$(median ${t[sshfs-put-tahoe]})"
    row "sshfs cp out ${size} MiB" "$(median ${t[sshfs-get-ours]})" "$(median ${t[sshfs-get-tahoe]})"
    mp=$(median ${t[mount-put]}) mg=$(median ${t[mount-get]})
    cp_=$(median ${t[cli-put]}) cg=$(median ${t[cli-get]})
    row1 "tahoe mount cp in ${size} MiB" "$mp"
    row1 "tahoe put ${size} MiB" "$cp_"
    row1 "tahoe mount cp out ${size} MiB" "$mg"
    row1 "tahoe get ${size} MiB" "$cg"
    python3 -c "import sys; p, q, g, h = map(float, sys.argv[1:]); print(f'  mount/CLI: write {p / q:.2f}, read {g / h:.2f}')" "$mp" "$cp_" "$mg" "$cg"
  }
  unset t
done

# Trees of small files with rsync -a, once each: Tahoe's SFTP server
# takes some 2.4 s a file (87 files in 210 s measured here), so the
# side-by-side tree has $REF_FILES files and ours also takes $FILES.
small_tree() { # DIR COUNT
  local i d
  for i in $(seq 1 "$2"); do
    d=$1/d$((i % 20))
    mkdir -p "$d"
    head -c $((i * 37 % 4096)) /dev/urandom >"$d/f$i"
  done
}
REF_FILES=${REF_FILES:-100}
small_tree "$W/small" "$REF_FILES"
small_tree "$W/tree" "$FILES"
row "sshfs rsync -a $REF_FILES files" \
  "$(timed rsync -a --modify-window=1 "$W/small/" "$W/m-ours/small/")" \
  "$(timed rsync -a --modify-window=1 "$W/small/" "$W/m-tahoe/small/")"
row1 "sshfs rsync -a $FILES files" "$(timed rsync -a --modify-window=1 "$W/tree/" "$W/m-ours/tree/")"
# (Into another folder: the mount and our sshfs share one root.)
row1 "tahoe mount rsync -a $FILES files" "$(timed rsync -a "$W/tree/" "$W/m-mount/tree-2/")"
