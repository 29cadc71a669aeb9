#!/usr/bin/env bash
# The S3 gateway's overhead, in one run on one grid (tahoe demo: ten
# storage nodes, node0 the gateway): PUT and GET of 1, 16 and 128 MiB with
# the AWS CLI (`aws s3 cp`) beside the web API (`curl -T` to /uri/DIR/NAME,
# `curl` GET), and 1,000 small objects with `rclone copy` (4 transfers)
# beside the same files PUT to the web API by 4 workers on kept-alive
# connections. Each figure is the median of $RUNS; ratio = S3 / web API
# (1.10 means 10% slower through S3).
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
if [ ! -x "$VENV/bin/aws" ]; then
  echo "installing the AWS CLI into $VENV..." >&2
  python3 -m venv "$VENV" && "$VENV/bin/pip" install -q "awscli==1.42.18"
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

printf '%-26s %10s %10s %7s\n' "operation" "s3 (s)" "web (s)" "ratio"
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
python3 - "$small" "$FILES" <<'EOF'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with open(os.path.join(d, f"s{i:04d}"), "wb") as f:
        f.write(os.urandom(1000 + (i * 7919) % 9000))
EOF
web_small() {
  python3 - "$small" "$1" <<'EOF'
import http.client, os, sys, threading, urllib.parse
src, url = sys.argv[1], urllib.parse.urlparse(sys.argv[2])
names = sorted(os.listdir(src))
def worker(part):
    c = http.client.HTTPConnection(url.hostname, url.port)
    for n in part:
        with open(os.path.join(src, n), "rb") as f:
            c.request("PUT", f"{url.path}/{n}", body=f.read())
        r = c.getresponse(); r.read()
        assert r.status in (200, 201), r.status
ts = [threading.Thread(target=worker, args=(names[i::4],)) for i in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
EOF
}
rs=() rw=()
remote=":s3,provider=Other,env_auth=true,endpoint='$S3',force_path_style=true"
for r in $(seq 1 "$RUNS"); do
  rs+=("$(timed rclone --config /dev/null -q --transfers 4 copy "$small" "$remote:bench/small-$r")")
  curl -sf -X POST "${WEB}uri/$ROOT?t=mkdir&name=small-$r" >/dev/null
  rw+=("$(timed web_small "${WEB}uri/$ROOT/small-$r")")
done
a=$(median "${rs[@]}") b=$(median "${rw[@]}")
printf '%-26s %10s %10s %7s\n' "$FILES small objects" "$a" "$b" "$(ratio "$a" "$b")"
