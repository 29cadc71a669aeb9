#!/usr/bin/env bash
# The S3 gateway's overhead, in one run on one grid (tahoe demo: ten
# storage nodes, node0 the gateway). First request against request from
# one Python process (scripts/bench_s3.py: boto3 beside http.client to the
# web API): PUT and GET of 1, 16 and 128 MiB and 1,000 small objects four
# at a time. Then the tools as people run them: `aws s3 cp` beside `curl`
# (the AWS CLI's start, a Python interpreter loading botocore, is printed
# apart), and `rclone copy` of 1,000 small objects. Each figure is the
# median of $RUNS; ratio = S3 / web API (1.10 means 10% slower through S3).
# Last, node0's peak resident memory over the whole run.
#
# usage: scripts/bench-s3.sh   (RUNS=3 SIZES="1 16 128" FILES=1000)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-3}
SIZES=${SIZES:-"1 16 128"}
FILES=${FILES:-1000}
W=$(mktemp -d /tmp/bench-s3.XXXXXX)
DEMO_PID=
cleanup() {
  [ -n "$DEMO_PID" ] && kill -INT "$DEMO_PID" 2>/dev/null && sleep 3 || true
  rm -rf "$W"
}
trap cleanup EXIT

cd "$here"
cargo build -q --release --bin tahoe
T=$here/target/release/tahoe
VENV=$here/target/bench-venv
if [ ! -x "$VENV/bin/aws" ] || ! "$VENV/bin/python" -c "import boto3" 2>/dev/null; then
  echo "installing the AWS CLI and boto3 into $VENV..." >&2
  python3 -m venv "$VENV" && "$VENV/bin/pip" install -q "awscli==1.46.3" boto3
fi
command -v rclone >/dev/null || { echo "rclone is missing: make fs-deps" >&2; exit 1; }

echo "starting ours (tahoe demo: 10 storage nodes, node0 the gateway)..." >&2
"$T" demo --dir "$W/grid" --clients 10 >"$W/demo.log" 2>&1 &
DEMO_PID=$!
for _ in $(seq 1 300); do grep -q "Press Ctrl-C" "$W/demo.log" 2>/dev/null && break; sleep 0.2; done
N0=$W/grid/node0
S3_PORT=$(sed -n '/^\[s3\]/,/^\[/s/^port = //p' "$N0/tahoe.toml")
WEB=$(grep -oE 'http://127\.0\.0\.1:[0-9]+/' "$W/demo.log" | head -1)
read -r KEY SECRET ROOT < <(grep -v '^#' "$N0/private/s3-credentials" | head -1)
export AWS_ACCESS_KEY_ID=$KEY AWS_SECRET_ACCESS_KEY=$SECRET AWS_DEFAULT_REGION=us-east-1
S3=http://127.0.0.1:$S3_PORT
aws() { "$VENV/bin/aws" --endpoint-url "$S3" "$@"; }
aws s3 mb s3://bench >/dev/null
# The web API writes under the same root: ROOT/webbench.
curl -sf -X POST "${WEB}uri/$ROOT?t=mkdir&name=webbench" >/dev/null

now() { date +%s.%N; }
secs() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.3f}')" "$1" "$2"; }
median() { python3 -c "import sys, statistics; print(f'{statistics.median(map(float, sys.argv[1:])):.3f}')" "$@"; }
ratio() { python3 -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]):.2f}')" "$1" "$2"; }
timed() { local a b; a=$(now); "$@" >/dev/null; b=$(now); secs "$a" "$b"; }

# 1. The S3 layer's overhead, request against request, from one process.
"$VENV/bin/python" "$here/scripts/bench_s3.py" "$S3" "$KEY" "$SECRET" "$WEB" "$ROOT" "$SIZES" "$RUNS" "$FILES"

# 2. The tools as people run them: the AWS CLI (a process per copy; 8 MiB
# multipart parts from 8 MiB) beside curl, and rclone copy beside the
# web API.
echo
start=()
for r in $(seq 1 "$RUNS"); do start+=("$(timed "$VENV/bin/aws" --version)"); done
echo "the AWS CLI's own start (aws --version): $(median "${start[@]}") s"
printf '%-26s %10s %10s %7s\n' "operation (tools)" "aws (s)" "curl (s)" "ratio"
for mib in $SIZES; do
  f=$W/f$mib
  head -c $((mib << 20)) /dev/urandom >"$f"
  ps=() pw=() gs=() gw=()
  for r in $(seq 1 "$RUNS"); do
    # Fresh bytes each run: no upload is deduplicated by its convergent key.
    head -c 16 /dev/urandom | dd of="$f" bs=16 count=1 conv=notrunc 2>/dev/null
    ps+=("$(timed aws s3 cp --quiet "$f" "s3://bench/f$mib-$r")")
    head -c 16 /dev/urandom | dd of="$f" bs=16 count=1 conv=notrunc 2>/dev/null
    pw+=("$(timed curl -sf -T "$f" "${WEB}uri/$ROOT/webbench/f$mib-$r")")
    gs+=("$(timed aws s3 cp --quiet "s3://bench/f$mib-$r" "$W/out")")
    gw+=("$(timed curl -sf -o "$W/out" "${WEB}uri/$ROOT/webbench/f$mib-$r")")
  done
  a=$(median "${ps[@]}") b=$(median "${pw[@]}")
  printf '%-26s %10s %10s %7s\n' "PUT $mib MiB" "$a" "$b" "$(ratio "$a" "$b")"
  a=$(median "${gs[@]}") b=$(median "${gw[@]}")
  printf '%-26s %10s %10s %7s\n' "GET $mib MiB" "$a" "$b" "$(ratio "$a" "$b")"
done
small=$W/small
mkdir -p "$small"
python3 - "$small" "$FILES" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with open(os.path.join(d, f"s{i:04d}"), "wb") as f:
        f.write(os.urandom(1000 + (i * 7919) % 9000))
PY
rs=()
remote=":s3,provider=Other,env_auth=true,endpoint='$S3',force_path_style=true"
for r in $(seq 1 "$RUNS"); do
  for f in "$small"/*; do head -c 16 /dev/urandom | dd of="$f" bs=16 count=1 conv=notrunc 2>/dev/null; done
  rs+=("$(timed rclone --config /dev/null -q --transfers 4 copy "$small" "$remote:bench/small-$r")")
done
echo "rclone copy of $FILES small objects (4 transfers): $(median "${rs[@]}") s"
echo "node0's peak resident memory (VmHWM): $(awk '/VmHWM/ {print $2 " " $3}' "/proc/$(python3 -c "import json; print(json.load(open('$N0/status.json'))['pid'])")/status")"
