"""The S3 layer's own overhead: the same requests through the S3 gateway
(boto3, unsigned payload: no client-side hashing) and through the web API
(http.client), from one Python process on kept-alive connections, so
that neither side pays for a client's start. Used by scripts/bench-s3.sh.

usage: bench_s3.py S3_ENDPOINT KEY SECRET WEB_URL ROOT_CAP SIZES RUNS FILES
"""
import http.client
import os
import statistics
import sys
import threading
import time
import urllib.parse

import boto3
from botocore.config import Config

s3_url, key, secret, web, root, sizes, runs, files = sys.argv[1:]
runs, files = int(runs), int(files)
s3 = boto3.client(
    "s3", endpoint_url=s3_url, aws_access_key_id=key, aws_secret_access_key=secret,
    region_name="us-east-1",
    config=Config(request_checksum_calculation="when_required",
                  s3={"addressing_style": "path", "payload_signing_enabled": False},
                  max_pool_connections=8),
)
w = urllib.parse.urlparse(web)
base = f"/uri/{urllib.parse.quote(root)}"


def web_conn():
    return http.client.HTTPConnection(w.hostname, w.port, timeout=600)


def web_call(conn, method, path, body=None, sink=False):
    conn.request(method, path, body=body)
    r = conn.getresponse()
    if sink:
        while r.read(1 << 20):
            pass
    else:
        out = r.read()
    if r.status not in (200, 201):
        raise SystemExit(f"web {method} {path}: {r.status} {out[:300]!r}")


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def row(name, a, b):
    print(f"{name:<26} {a:10.3f} {b:10.3f} {a / b:7.2f}", flush=True)


print(f"{'operation (one process)':<26} {'s3 (s)':>10} {'web (s)':>10} {'ratio':>7}")
s3.create_bucket(Bucket="perreq")
conn = web_conn()
web_call(conn, "POST", f"{base}?t=mkdir&name=perreq")
for mib in sizes.split():
    put_s, put_w, get_s, get_w = [], [], [], []
    for r in range(runs):
        # A new connection each round: an idle one is closed by the
        # gateway's keep-alive timeout.
        conn = web_conn()
        # Fresh bytes each time: nothing deduplicated by convergence.
        a, b = os.urandom(int(mib) << 20), os.urandom(int(mib) << 20)
        put_s.append(timed(lambda: s3.put_object(Bucket="perreq", Key=f"f{mib}-{r}", Body=a)))
        put_w.append(timed(lambda: web_call(conn, "PUT", f"{base}/perreq/f{mib}-{r}", b)))

        def get_s3():
            body = s3.get_object(Bucket="perreq", Key=f"f{mib}-{r}")["Body"]
            while body.read(1 << 20):
                pass

        get_s.append(timed(get_s3))
        get_w.append(timed(lambda: web_call(conn, "GET", f"{base}/perreq/f{mib}-{r}", sink=True)))
    row(f"PUT {mib} MiB", statistics.median(put_s), statistics.median(put_w))
    row(f"GET {mib} MiB", statistics.median(get_s), statistics.median(get_w))

# Small objects, four at a time on each side.
blobs = [os.urandom(1000 + (i * 7919) % 9000) for i in range(files)]


def four(fn):
    ts = [threading.Thread(target=fn, args=(i,)) for i in range(4)]
    [t.start() for t in ts]
    [t.join() for t in ts]


small_s, small_w = [], []
for r in range(runs):
    conn = web_conn()
    web_call(conn, "POST", f"{base}?t=mkdir&name=small{r}")
    fresh = [os.urandom(16) + b for b in blobs]

    def s3_part(k):
        for i in range(k, files, 4):
            s3.put_object(Bucket="perreq", Key=f"small{r}/s{i:04d}", Body=fresh[i])

    def web_part(k):
        c = web_conn()
        for i in range(k, files, 4):
            web_call(c, "PUT", f"{base}/small{r}/s{i:04d}", fresh[i][::-1])

    small_s.append(timed(lambda: four(s3_part)))
    small_w.append(timed(lambda: four(web_part)))
row(f"PUT {files} small objects", statistics.median(small_s), statistics.median(small_w))
