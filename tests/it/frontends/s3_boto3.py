"""The S3 gateway driven by boto3: every call it serves, the ways of
signing a request, two keys' separate roots, and bad input.

Run by tests/it/frontends/s3.rs with the venv of `make s3-deps`; its
environment names the gateway (ENDPOINT), two keys (KEY1/SECRET1 and
KEY2/SECRET2, each with a root of its own), and the node's spool (SPOOL).
Each check prints `ok NAME`; the first failure raises, and the run ends
with `ALL OK N` only when every check passed.
"""

import base64
import hashlib
import hmac
import http.client
import json
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

ENDPOINT = os.environ["ENDPOINT"]
KEY1, SECRET1 = os.environ["KEY1"], os.environ["SECRET1"]
KEY2, SECRET2 = os.environ["KEY2"], os.environ["SECRET2"]
SPOOL = os.environ["SPOOL"]
WEB, ROOT1 = int(os.environ["WEB"]), os.environ["ROOT1"]
HOST, PORT = urllib.parse.urlparse(ENDPOINT).hostname, urllib.parse.urlparse(ENDPOINT).port
CHECKS = 0

# What each request said of its payload (x-amz-content-sha256), by
# client: each client must sign as it is meant to.
SENT = {}


def check(name):
    global CHECKS
    CHECKS += 1
    print("ok", name, flush=True)


def client(key, secret, kind="default", **extra):
    cfg = {"retries": {"max_attempts": 1}, "s3": {"addressing_style": "path"}}
    if kind in ("signed", "unsigned"):
        # Checksums only where S3 requires them: the body is then sent
        # whole, its SHA-256 signed or not.
        cfg["request_checksum_calculation"] = "when_required"
        cfg["s3"]["payload_signing_enabled"] = kind == "signed"
    cfg.update(extra)
    c = boto3.client(
        "s3",
        endpoint_url=ENDPOINT,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(**cfg),
    )

    def record(request, **_):
        SENT.setdefault(kind, []).append(request.headers.get("x-amz-content-sha256", b""))

    c.meta.events.register("before-send.s3", record)
    return c


def code_of(fn, *args, **kw):
    """The S3 error code and HTTP status of a call that must fail."""
    try:
        fn(*args, **kw)
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    raise AssertionError(f"{fn.__name__} succeeded where it must fail")


def expect(got, code, status):
    assert got == (code, status), f"expected {(code, status)}, got {got}"


def md5(data):
    return hashlib.md5(data).hexdigest()


def sha256hex(b):
    return hashlib.sha256(b if isinstance(b, bytes) else b.encode()).hexdigest()


def _hmac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def sign(method, path, headers, payload_hash, query=(), key=KEY1, secret=SECRET1):
    """SigV4 in headers, written here from AWS's specification (not
    botocore's signer, which always hashes the payload over plain HTTP):
    the headers to send, and what chunk signatures chain from."""
    t = datetime.now(timezone.utc)
    amz_date, day = t.strftime("%Y%m%dT%H%M%SZ"), t.strftime("%Y%m%d")
    h = {k.lower(): str(v).strip() for k, v in headers.items()}
    h.update({"host": f"{HOST}:{PORT}", "x-amz-date": amz_date, "x-amz-content-sha256": payload_hash})
    names = sorted(h)
    q = lambda v: urllib.parse.quote(v, safe="-_.~")
    canonical = "\n".join([
        method,
        urllib.parse.quote(path, safe="/-_.~"),
        "&".join(sorted(f"{q(k)}={q(v)}" for k, v in query)),
        "".join(f"{k}:{h[k]}\n" for k in names),
        ";".join(names),
        payload_hash,
    ])
    scope = f"{day}/us-east-1/s3/aws4_request"
    k = _hmac(_hmac(_hmac(_hmac(("AWS4" + secret).encode(), day), "us-east-1"), "s3"), "aws4_request")
    sig = hmac.new(k, "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, sha256hex(canonical)]).encode(),
                   hashlib.sha256).hexdigest()
    h["authorization"] = (f"AWS4-HMAC-SHA256 Credential={key}/{scope}, "
                          f"SignedHeaders={';'.join(names)}, Signature={sig}")
    return h, (k, sig, amz_date, scope)


def send(method, path, headers, body=b"", query=()):
    conn = http.client.HTTPConnection(HOST, PORT, timeout=60)
    target = urllib.parse.quote(path, safe="/-_.~")
    if query:
        target += "?" + urllib.parse.urlencode(list(query))
    conn.request(method, target, body=body, headers=headers)
    r = conn.getresponse()
    out = r.status, r.read()
    conn.close()
    return out


def signed(method, path, body=b"", query=(), headers=None):
    h, _ = sign(method, path, headers or {}, sha256hex(body), query)
    return send(method, path, h, body, query)


def put_unsigned_payload(path, data):
    h, _ = sign("PUT", path, {"content-length": len(data)}, "UNSIGNED-PAYLOAD")
    return send("PUT", path, h, data)


def put_streaming_signed(path, data, tamper=False, size=64 << 10, announce=None):
    """aws-chunked with a signature per chunk, chained from the seed."""
    chunks = [data[i:i + size] for i in range(0, len(data), size)] + [b""]
    length = sum(len(f"{len(c):x};chunk-signature=") + 64 + 4 + len(c) for c in chunks)
    h, (k, prev, amz_date, scope) = sign("PUT", path, {
        "content-encoding": "aws-chunked",
        "x-amz-decoded-content-length": announce or len(data),
        "content-length": length,
    }, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
    body = b""
    for c in chunks:
        sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev, sha256hex(b""), sha256hex(c)])
        prev = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
        if tamper and c:
            c = bytes([c[0] ^ 1]) + c[1:]
        body += f"{len(c):x};chunk-signature={prev}\r\n".encode() + c + b"\r\n"
    return send("PUT", path, h, body)


def put_streaming_trailer(path, data, size=64 << 10):
    """aws-chunked, unsigned, with a trailing CRC32 checksum."""
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    body = b"".join(f"{len(data[i:i + size]):x}\r\n".encode() + data[i:i + size] + b"\r\n"
                    for i in range(0, len(data), size))
    body += f"0\r\nx-amz-checksum-crc32:{crc}\r\n\r\n".encode()
    h, _ = sign("PUT", path, {
        "content-encoding": "aws-chunked",
        "x-amz-decoded-content-length": len(data),
        "x-amz-trailer": "x-amz-checksum-crc32",
        "content-length": len(body),
    }, "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
    return send("PUT", path, h, body)


def main():
    s3 = client(KEY1, SECRET1)
    plain = client(KEY1, SECRET1, "signed")
    other = client(KEY2, SECRET2)

    # Buckets.
    s3.create_bucket(Bucket="alpha")
    expect(code_of(s3.create_bucket, Bucket="alpha"), "BucketAlreadyOwnedByYou", 409)
    s3.head_bucket(Bucket="alpha")
    expect(code_of(s3.head_bucket, Bucket="nope"), "404", 404)
    loc = s3.get_bucket_location(Bucket="alpha")
    assert loc.get("LocationConstraint") in (None, ""), loc
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert names == ["alpha"], names
    check("buckets: create, head, location, list")

    # PutObject, HeadObject, GetObject with headers and user metadata.
    data = os.urandom(300 << 10)
    r = s3.put_object(
        Bucket="alpha", Key="docs/a.bin", Body=data, ContentType="application/x-test",
        Metadata={"colour": "blue"}, CacheControl="no-cache",
    )
    assert r["ETag"] == f'"{md5(data)}"', r["ETag"]
    h = s3.head_object(Bucket="alpha", Key="docs/a.bin")
    assert h["ContentLength"] == len(data)
    assert h["ContentType"] == "application/x-test", h
    assert h["Metadata"] == {"colour": "blue"}, h["Metadata"]
    assert h["CacheControl"] == "no-cache"
    assert h["ETag"] == f'"{md5(data)}"'
    g = s3.get_object(Bucket="alpha", Key="docs/a.bin")
    assert g["Body"].read() == data
    assert g["ContentType"] == "application/x-test"
    expect(code_of(s3.get_object, Bucket="alpha", Key="docs/none"), "NoSuchKey", 404)
    expect(code_of(s3.get_object, Bucket="nope", Key="x"), "NoSuchBucket", 404)
    check("objects: put, head, get with headers, metadata and MD5 ETag")

    # Each way of sending a body: boto's (its SHA-256 signed, over plain
    # HTTP), unsigned, streaming with a signature per chunk, streaming
    # unsigned with a trailing checksum.
    body = os.urandom(700 << 10)
    SENT.pop("default", None)
    s3.put_object(Bucket="alpha", Key="payload/boto", Body=body)
    said = SENT["default"][-1]
    assert said == sha256hex(body).encode(), f"boto sent x-amz-content-sha256 {said!r}"
    assert s3.get_object(Bucket="alpha", Key="payload/boto")["Body"].read() == body
    for name, put in (("unsigned", put_unsigned_payload), ("chunked", put_streaming_signed),
                      ("trailer", put_streaming_trailer)):
        body = os.urandom(700 << 10)
        status, answer = put(f"/alpha/payload/{name}", body)
        assert status == 200, (name, status, answer)
        h = s3.head_object(Bucket="alpha", Key=f"payload/{name}")
        assert h["ETag"] == f'"{md5(body)}"', (name, h["ETag"])
        assert s3.get_object(Bucket="alpha", Key=f"payload/{name}")["Body"].read() == body
    # A chunk changed on the way: refused, nothing stored.
    status, answer = put_streaming_signed("/alpha/payload/tampered", os.urandom(200 << 10), tamper=True)
    assert status == 403 and b"SignatureDoesNotMatch" in answer, (status, answer)
    expect(code_of(s3.head_object, Bucket="alpha", Key="payload/tampered"), "404", 404)
    check("payloads: signed, unsigned, chunked with chunk signatures, chunked with a trailer")

    # Content-MD5 checked: a wrong one stores nothing.
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    expect(
        code_of(plain.put_object, Bucket="alpha", Key="docs/bad-md5", Body=b"hello", ContentMD5=wrong),
        "BadDigest", 400,
    )
    expect(code_of(s3.head_object, Bucket="alpha", Key="docs/bad-md5"), "404", 404)
    right = base64.b64encode(hashlib.md5(b"hello").digest()).decode()
    plain.put_object(Bucket="alpha", Key="docs/good-md5", Body=b"hello", ContentMD5=right)
    check("Content-MD5: a mismatch is BadDigest and stores nothing")

    # Ranges.
    g = s3.get_object(Bucket="alpha", Key="docs/a.bin", Range="bytes=100-199")
    assert g["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert g["ContentRange"] == f"bytes 100-199/{len(data)}", g["ContentRange"]
    assert g["Body"].read() == data[100:200]
    g = s3.get_object(Bucket="alpha", Key="docs/a.bin", Range="bytes=-10")
    assert g["Body"].read() == data[-10:]
    g = s3.get_object(Bucket="alpha", Key="docs/a.bin", Range=f"bytes={len(data) - 5}-")
    assert g["Body"].read() == data[-5:]
    expect(
        code_of(s3.get_object, Bucket="alpha", Key="docs/a.bin", Range=f"bytes={len(data)}-"),
        "InvalidRange", 416,
    )
    check("ranged GET: first-last, suffix, open end, unsatisfiable")

    # Conditional GETs.
    etag = f'"{md5(data)}"'
    later = datetime.now(timezone.utc) + timedelta(days=1)
    earlier = datetime.now(timezone.utc) - timedelta(days=1)
    assert s3.get_object(Bucket="alpha", Key="docs/a.bin", IfMatch=etag)["Body"].read() == data
    expect(code_of(s3.get_object, Bucket="alpha", Key="docs/a.bin", IfMatch='"0000"'), "PreconditionFailed", 412)
    expect(code_of(s3.get_object, Bucket="alpha", Key="docs/a.bin", IfNoneMatch=etag), "304", 304)
    s3.get_object(Bucket="alpha", Key="docs/a.bin", IfNoneMatch='"0000"')["Body"].read()
    expect(code_of(s3.get_object, Bucket="alpha", Key="docs/a.bin", IfModifiedSince=later), "304", 304)
    s3.get_object(Bucket="alpha", Key="docs/a.bin", IfModifiedSince=earlier)["Body"].read()
    expect(
        code_of(s3.get_object, Bucket="alpha", Key="docs/a.bin", IfUnmodifiedSince=earlier),
        "PreconditionFailed", 412,
    )
    expect(code_of(s3.head_object, Bucket="alpha", Key="docs/a.bin", IfNoneMatch=etag), "304", 304)
    check("conditional GET and HEAD: If-Match, If-None-Match, If-(Un)Modified-Since")

    # CopyObject: metadata copied, or replaced.
    c = s3.copy_object(Bucket="alpha", Key="copies/a.bin", CopySource={"Bucket": "alpha", "Key": "docs/a.bin"})
    assert c["CopyObjectResult"]["ETag"] == etag
    h = s3.head_object(Bucket="alpha", Key="copies/a.bin")
    assert h["Metadata"] == {"colour": "blue"} and h["ContentType"] == "application/x-test"
    s3.copy_object(
        Bucket="alpha", Key="copies/b.bin", CopySource="alpha/docs/a.bin",
        MetadataDirective="REPLACE", ContentType="text/plain", Metadata={"k": "v"},
    )
    h = s3.head_object(Bucket="alpha", Key="copies/b.bin")
    assert h["Metadata"] == {"k": "v"} and h["ContentType"] == "text/plain", h
    assert s3.get_object(Bucket="alpha", Key="copies/b.bin")["Body"].read() == data
    expect(
        code_of(s3.copy_object, Bucket="alpha", Key="copies/c", CopySource="alpha/docs/none"),
        "NoSuchKey", 404,
    )
    check("CopyObject: COPY and REPLACE metadata")

    # A key cannot be both an object and a prefix of others.
    s3.put_object(Bucket="alpha", Key="tree/b/c.txt", Body=b"c")
    expect(code_of(s3.put_object, Bucket="alpha", Key="tree/b", Body=b"x"), "ObjectNameConflict", 409)
    expect(code_of(s3.put_object, Bucket="alpha", Key="tree/b/c.txt/d", Body=b"x"), "ObjectNameConflict", 409)
    check("a key that would make a file and a directory of one name is refused")

    # Listing order is S3's (bytes), not a tree walk's.
    for k in ("order/a/c", "order/a-b", "order/a0", "order/b"):
        s3.put_object(Bucket="alpha", Key=k, Body=b"o")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="alpha", Prefix="order/")["Contents"]]
    assert keys == ["order/a-b", "order/a/c", "order/a0", "order/b"], keys
    r = s3.list_objects_v2(Bucket="alpha", Prefix="order/", Delimiter="/")
    assert [o["Key"] for o in r["Contents"]] == ["order/a-b", "order/a0", "order/b"], r
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["order/a/"], r
    r = s3.list_objects_v2(Bucket="alpha", Prefix="order/", StartAfter="order/a/c")
    assert [o["Key"] for o in r["Contents"]] == ["order/a0", "order/b"], r
    r = s3.list_objects_v2(Bucket="alpha", Prefix="ord", Delimiter="/")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["order/"], r
    r = s3.list_objects(Bucket="alpha", Prefix="order/", Delimiter="/", MaxKeys=2)
    assert r["IsTruncated"] and [o["Key"] for o in r["Contents"]] == ["order/a-b"], r
    r2 = s3.list_objects(Bucket="alpha", Prefix="order/", Delimiter="/", Marker=r["NextMarker"])
    assert [o["Key"] for o in r2["Contents"]] == ["order/a0", "order/b"], r2
    check("ListObjects(V2): S3's order, delimiter, start-after, marker")

    # 1,100 keys paged by 100 with a delimiter: 1,050 objects and 50
    # common prefixes, each once, in order.
    want_keys = [f"many/k{i:04d}" for i in range(1050)]
    want_prefixes = [f"many/sub{j:02d}/" for j in range(50)]
    for k in want_keys:
        s3.put_object(Bucket="alpha", Key=k, Body=k.encode())
    for p in want_prefixes:
        s3.put_object(Bucket="alpha", Key=p + "x", Body=b"x")
    got_keys, got_prefixes, pages, token = [], [], 0, None
    while True:
        kw = {"ContinuationToken": token} if token else {}
        r = s3.list_objects_v2(Bucket="alpha", Prefix="many/", Delimiter="/", MaxKeys=100, **kw)
        pages += 1
        n = len(r.get("Contents", [])) + len(r.get("CommonPrefixes", []))
        assert n <= 100 and r["KeyCount"] == n, r["KeyCount"]
        got_keys += [o["Key"] for o in r.get("Contents", [])]
        got_prefixes += [p["Prefix"] for p in r.get("CommonPrefixes", [])]
        if not r["IsTruncated"]:
            break
        token = r["NextContinuationToken"]
    assert got_keys == want_keys, (len(got_keys), got_keys[:3])
    assert got_prefixes == want_prefixes, got_prefixes
    assert pages == 11, pages
    listed = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="alpha", Prefix="many/"):
        listed += [o["Key"] for o in page["Contents"]]
    assert listed == sorted(want_keys + [p + "x" for p in want_prefixes])
    check("ListObjectsV2 pages 1,100 keys by 100 with a delimiter")

    # Deletes: one, several (one missing), and prefixes left empty go.
    s3.delete_object(Bucket="alpha", Key="tree/b/c.txt")
    assert "Contents" not in s3.list_objects_v2(Bucket="alpha", Prefix="tree/")
    assert "CommonPrefixes" not in s3.list_objects_v2(Bucket="alpha", Delimiter="/", Prefix="tree")
    s3.delete_object(Bucket="alpha", Key="tree/never-there")
    r = s3.delete_objects(
        Bucket="alpha",
        Delete={"Objects": [{"Key": "order/a-b"}, {"Key": "order/a/c"}, {"Key": "order/missing"}]},
    )
    assert sorted(d["Key"] for d in r["Deleted"]) == ["order/a-b", "order/a/c", "order/missing"], r
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="alpha", Prefix="order/")["Contents"]]
    assert keys == ["order/a0", "order/b"], keys
    check("DeleteObject, DeleteObjects, empty prefixes removed")

    # Multipart: 100 MiB in 8 MiB parts, sent four at a time.
    part = 8 << 20
    big = os.urandom(100 << 20)
    up = s3.create_multipart_upload(Bucket="alpha", Key="big/object.bin", ContentType="application/x-big")
    uid = up["UploadId"]
    chunks = [big[i:i + part] for i in range(0, len(big), part)]

    def send_part(n):
        return n, s3.upload_part(Bucket="alpha", Key="big/object.bin", UploadId=uid, PartNumber=n,
                                 Body=chunks[n - 1])["ETag"]

    with ThreadPoolExecutor(4) as pool:
        etags = dict(pool.map(send_part, range(1, len(chunks) + 1)))
    assert all(etags[n] == f'"{md5(chunks[n - 1])}"' for n in etags)
    parts = s3.list_parts(Bucket="alpha", Key="big/object.bin", UploadId=uid)["Parts"]
    assert [p["PartNumber"] for p in parts] == list(range(1, 14)), parts
    assert [p["Size"] for p in parts] == [len(c) for c in chunks]
    page = s3.list_parts(Bucket="alpha", Key="big/object.bin", UploadId=uid, MaxParts=5, PartNumberMarker=5)
    assert [p["PartNumber"] for p in page["Parts"]] == [6, 7, 8, 9, 10] and page["IsTruncated"]
    ups = s3.list_multipart_uploads(Bucket="alpha")["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in ups] == [("big/object.bin", uid)], ups
    listing = [{"PartNumber": n, "ETag": etags[n]} for n in sorted(etags)]
    expect(
        code_of(s3.complete_multipart_upload, Bucket="alpha", Key="big/object.bin", UploadId=uid,
                MultipartUpload={"Parts": [listing[1], listing[0]] + listing[2:]}),
        "InvalidPartOrder", 400,
    )
    expect(
        code_of(s3.complete_multipart_upload, Bucket="alpha", Key="big/object.bin", UploadId=uid,
                MultipartUpload={"Parts": listing + [{"PartNumber": 14, "ETag": etags[1]}]}),
        "InvalidPart", 400,
    )
    expect(code_of(s3.head_object, Bucket="alpha", Key="big/object.bin"), "404", 404)
    done = s3.complete_multipart_upload(
        Bucket="alpha", Key="big/object.bin", UploadId=uid, MultipartUpload={"Parts": listing})
    digests = b"".join(hashlib.md5(c).digest() for c in chunks)
    assert done["ETag"] == f'"{hashlib.md5(digests).hexdigest()}-13"', done["ETag"]
    h = s3.head_object(Bucket="alpha", Key="big/object.bin")
    assert h["ContentLength"] == len(big) and h["ContentType"] == "application/x-big", h
    assert h["ETag"] == done["ETag"]
    got = hashlib.sha256()
    for piece in s3.get_object(Bucket="alpha", Key="big/object.bin")["Body"].iter_chunks(1 << 20):
        got.update(piece)
    assert got.digest() == hashlib.sha256(big).digest()
    mid = s3.get_object(Bucket="alpha", Key="big/object.bin", Range=f"bytes={part - 3}-{part + 2}")
    assert mid["Body"].read() == big[part - 3:part + 3]
    # The object is the file `PUT /uri` makes of the same bytes: its key,
    # hashed as the parts arrived (out of order, four at a time), is the
    # convergent key.
    assert object_cap("big", "object.bin") == web_put(big)
    # A part sent again after it was hashed: the object is made of the
    # parts as completed, under their own convergent key.
    a, b, a2 = os.urandom(5 << 20), os.urandom(2 << 20), os.urandom(5 << 20)
    uid4 = s3.create_multipart_upload(Bucket="alpha", Key="big/again")["UploadId"]
    s3.upload_part(Bucket="alpha", Key="big/again", UploadId=uid4, PartNumber=1, Body=a)
    e2 = s3.upload_part(Bucket="alpha", Key="big/again", UploadId=uid4, PartNumber=2, Body=b)["ETag"]
    time.sleep(1)
    e1 = s3.upload_part(Bucket="alpha", Key="big/again", UploadId=uid4, PartNumber=1, Body=a2)["ETag"]
    s3.complete_multipart_upload(Bucket="alpha", Key="big/again", UploadId=uid4, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    assert s3.get_object(Bucket="alpha", Key="big/again")["Body"].read() == a2 + b
    assert object_cap("big", "again") == web_put(a2 + b)
    assert s3.list_multipart_uploads(Bucket="alpha").get("Uploads", []) == []
    expect(code_of(s3.list_parts, Bucket="alpha", Key="big/object.bin", UploadId=uid), "NoSuchUpload", 404)
    # Abort.
    uid2 = s3.create_multipart_upload(Bucket="alpha", Key="big/aborted")["UploadId"]
    s3.upload_part(Bucket="alpha", Key="big/aborted", UploadId=uid2, PartNumber=1, Body=b"x" * 1000)
    s3.abort_multipart_upload(Bucket="alpha", Key="big/aborted", UploadId=uid2)
    expect(code_of(s3.list_parts, Bucket="alpha", Key="big/aborted", UploadId=uid2), "NoSuchUpload", 404)
    expect(code_of(s3.head_object, Bucket="alpha", Key="big/aborted"), "404", 404)
    # Another key cannot use this key's upload.
    uid3 = s3.create_multipart_upload(Bucket="alpha", Key="big/mine")["UploadId"]
    other.create_bucket(Bucket="alpha")
    expect(
        code_of(other.upload_part, Bucket="alpha", Key="big/mine", UploadId=uid3, PartNumber=1, Body=b"x"),
        "NoSuchUpload", 404,
    )
    other.delete_bucket(Bucket="alpha")
    s3.abort_multipart_upload(Bucket="alpha", Key="big/mine", UploadId=uid3)
    check("multipart: 100 MiB in 8 MiB parts, list, order, missing part, abort")

    # Presigned GETs (SigV4, and boto's default, SigV2); a tampered one,
    # or one for another key, is refused.
    v4 = client(KEY1, SECRET1, signature_version="s3v4")
    for c, field in ((v4, "X-Amz-Signature"), (s3, "Signature")):
        url = c.generate_presigned_url("get_object", Params={"Bucket": "alpha", "Key": "docs/a.bin"},
                                       ExpiresIn=300)
        assert f"{field}=" in url, url
        with urllib.request.urlopen(url) as r:
            assert r.read() == data
        parts = urllib.parse.urlsplit(url)
        query = urllib.parse.parse_qsl(parts.query)
        # Another signature of the same form (hex for SigV4, base64 for
        # SigV2): the first character changed.
        forged = [(k, ("1" if v[0] != "1" else "2") + v[1:] if k == field else v) for k, v in query]
        for bad in (forged,):
            bad_url = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(bad)))
            try:
                urllib.request.urlopen(bad_url)
                raise AssertionError(f"a tampered presigned URL was served: {bad_url}")
            except urllib.error.HTTPError as e:
                assert e.code == 403 and b"SignatureDoesNotMatch" in e.read(), e
        moved = urllib.parse.urlunsplit(parts._replace(path=parts.path.replace("a.bin", "good-md5")))
        try:
            urllib.request.urlopen(moved)
            raise AssertionError("a presigned URL was served for another object")
        except urllib.error.HTTPError as e:
            assert e.code == 403, e
    check("presigned GET (SigV4 and SigV2); tampered or moved ones refused")

    # Wrong signature, unknown key, unsigned request.
    expect(code_of(client(KEY1, SECRET1 + "x").list_buckets), "SignatureDoesNotMatch", 403)
    expect(code_of(client("AKIDUNKNOWN0000", SECRET1).list_buckets), "InvalidAccessKeyId", 403)
    try:
        urllib.request.urlopen(f"{ENDPOINT}/alpha/docs/a.bin")
        raise AssertionError("an unsigned GET was served")
    except urllib.error.HTTPError as e:
        assert e.code == 403 and b"AccessDenied" in e.read(), e
    check("wrong signature, unknown key and anonymous request refused")

    # Two keys, two roots.
    assert "Buckets" not in other.list_buckets() or other.list_buckets()["Buckets"] == []
    expect(code_of(other.head_bucket, Bucket="alpha"), "404", 404)
    expect(code_of(other.get_object, Bucket="alpha", Key="docs/a.bin"), "NoSuchBucket", 404)
    expect(code_of(other.put_object, Bucket="alpha", Key="x", Body=b"x"), "NoSuchBucket", 404)
    other.create_bucket(Bucket="beta")
    other.put_object(Bucket="beta", Key="secret", Body=b"bob's")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["alpha"]
    expect(code_of(s3.get_object, Bucket="beta", Key="secret"), "NoSuchBucket", 404)
    check("two keys with different roots cannot see each other's buckets")

    # What other front ends do to the same files. A name relinked by the
    # web API keeping the old metadata: S3's block describes the old file
    # and is not shown for the new one.
    s3.put_object(Bucket="alpha", Key="shared/x", Body=b"one", ContentType="text/x-one")
    st, _ = web("PUT", f"/uri/{ROOT1}/alpha/shared/x", b"two, from the web")
    assert st in (200, 201), st
    time.sleep(1.2)  # the gateway's listing cache
    h = s3.head_object(Bucket="alpha", Key="shared/x")
    assert h["ETag"] != f'"{md5(b"one")}"' and h.get("ContentType") != "text/x-one", h
    assert s3.get_object(Bucket="alpha", Key="shared/x")["Body"].read() == b"two, from the web"
    # A mutable file written in place: its ETag follows its version, and
    # a copy of it is a copy of its bytes, not another name for it.
    st, _ = web("PUT", f"/uri/{ROOT1}/alpha/shared/m?format=SDMF", b"version one")
    assert st in (200, 201), st
    time.sleep(1.2)
    e1 = s3.head_object(Bucket="alpha", Key="shared/m")["ETag"]
    c = s3.copy_object(Bucket="alpha", Key="shared/m-copy", CopySource="alpha/shared/m")
    assert c["CopyObjectResult"]["ETag"] == f'"{md5(b"version one")}"', c
    st, _ = web("PUT", f"/uri/{ROOT1}/alpha/shared/m", b"version two!")
    assert st in (200, 201), st
    time.sleep(1.2)
    h = s3.head_object(Bucket="alpha", Key="shared/m")
    assert h["ETag"] != e1 and h["ContentLength"] == 12, (e1, h)
    assert s3.get_object(Bucket="alpha", Key="shared/m")["Body"].read() == b"version two!"
    assert s3.get_object(Bucket="alpha", Key="shared/m-copy")["Body"].read() == b"version one"
    # A directory linked into itself: a listing reads it once and ends.
    st, js = web("GET", f"/uri/{ROOT1}/alpha/shared?t=json")
    shared_cap = json.loads(js)[1]["rw_uri"]
    st, _ = web("PUT", f"/uri/{ROOT1}/alpha/shared/loop?t=uri", shared_cap.encode())
    assert st in (200, 201), st
    time.sleep(1.2)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="alpha", Prefix="shared/")["Contents"]]
    assert keys == ["shared/m", "shared/m-copy", "shared/x"], keys
    web("DELETE", f"/uri/{ROOT1}/alpha/shared/loop")
    check("other front ends: relinked names, mutable files, a directory linked into itself")

    # Conditional writes; keys and prefixes not in NFC; a suffix range of
    # an empty object; a chunked body shorter than it announced.
    expect(code_of(s3.put_object, Bucket="alpha", Key="docs/a.bin", Body=b"x", IfNoneMatch="*"),
           "PreconditionFailed", 412)
    s3.put_object(Bucket="alpha", Key="cond/new", Body=b"first", IfNoneMatch="*")
    expect(code_of(s3.put_object, Bucket="alpha", Key="cond/new", Body=b"x", IfMatch='"0000"'),
           "PreconditionFailed", 412)
    s3.put_object(Bucket="alpha", Key="cond/new", Body=b"second", IfMatch=f'"{md5(b"first")}"')
    assert s3.get_object(Bucket="alpha", Key="cond/new")["Body"].read() == b"second"
    expect(code_of(s3.put_object, Bucket="alpha", Key="cafe\u0301", Body=b"x"), "InvalidArgument", 400)
    s3.put_object(Bucket="alpha", Key="caf\u00e9", Body=b"nfc")
    expect(code_of(s3.list_objects_v2, Bucket="alpha", Prefix="cafe\u0301"), "InvalidArgument", 400)
    s3.put_object(Bucket="alpha", Key="cond/empty", Body=b"")
    expect(code_of(s3.get_object, Bucket="alpha", Key="cond/empty", Range="bytes=-5"), "InvalidRange", 416)
    status, answer = put_streaming_signed("/alpha/cond/short", os.urandom(100 << 10), announce=300 << 10)
    assert status == 400 and b"IncompleteBody" in answer, (status, answer)
    expect(code_of(s3.head_object, Bucket="alpha", Key="cond/short"), "404", 404)
    check("conditional writes, NFC, empty ranges, short chunked bodies")

    # Bad input.
    # Keys that would name another place, or hold NUL.
    for key in ("../escape", "a/../../escape", "a//b", "./a", "nul\x00key"):
        got = code_of(s3.put_object, Bucket="alpha", Key=key, Body=b"x")
        assert got[1] == 400, (key, got)
    expect(code_of(s3.get_object, Bucket="alpha", Key="../docs/a.bin"), "InvalidArgument", 400)
    # Malformed and oversized XML.
    for bad in (b"<Delete><Object><Key>x</Key>", b"not xml at all", b"<Delete>" + b"<Object>" * 50000):
        st, answer = signed("POST", "/alpha", bad, query=[("delete", "")],
                            headers={"content-md5": base64.b64encode(hashlib.md5(bad).digest()).decode()})
        assert st == 400 and b"MalformedXML" in answer, (st, answer[:300])
    huge = b"<Delete>" + b"<Object><Key>" + b"k" * (3 << 20) + b"</Key></Object></Delete>"
    st, answer = signed("POST", "/alpha", huge, query=[("delete", "")],
                        headers={"content-md5": base64.b64encode(hashlib.md5(huge).digest()).decode()})
    assert st == 400 and b"MaxMessageLengthExceeded" in answer, (st, answer[:300])
    # Oversized headers: refused, the server serves on.
    sock = socket.create_connection((HOST, PORT), timeout=30)
    sock.sendall(b"GET /alpha HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"X-Big-%d: %s\r\n" % (i, b"v" * 8000) for i in range(200)) + b"\r\n")
    answer = b""
    try:
        while True:
            got = sock.recv(65536)
            if not got:
                break
            answer += got
    except (ConnectionResetError, socket.timeout):
        pass
    sock.close()
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431") or answer.startswith(b"HTTP/1.1 400"), answer[:100]
    # A call not served.
    expect(code_of(s3.get_bucket_policy, Bucket="alpha"), "NotImplemented", 501)
    # A client that leaves mid-upload: nothing linked, no spool left.
    before = spool_files()
    h, _ = sign("PUT", "/alpha/docs/cut.bin", {"content-length": 8 << 20}, "UNSIGNED-PAYLOAD")
    sock = socket.create_connection((HOST, PORT), timeout=30)
    head = "PUT /alpha/docs/cut.bin HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
    sock.sendall(head.encode() + os.urandom(1 << 20))
    deadline = time.time() + 20
    while len(spool_files()) <= len(before) and time.time() < deadline:
        time.sleep(0.05)
    assert len(spool_files()) > len(before), "the upload was not being spooled"
    sock.close()
    deadline = time.time() + 20
    while spool_files() != before and time.time() < deadline:
        time.sleep(0.1)
    assert spool_files() == before, spool_files()
    expect(code_of(s3.head_object, Bucket="alpha", Key="docs/cut.bin"), "404", 404)
    # Still serving.
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["alpha"]
    check("bad input: keys, XML, headers, unserved call, client gone mid-upload")

    # DeleteBucket: not while it holds objects; then it goes.
    expect(code_of(other.delete_bucket, Bucket="beta"), "BucketNotEmpty", 409)
    other.delete_object(Bucket="beta", Key="secret")
    other.delete_bucket(Bucket="beta")
    expect(code_of(other.head_bucket, Bucket="beta"), "404", 404)
    check("DeleteBucket: refused while not empty, then done")

    print(f"ALL OK {CHECKS}", flush=True)


def web(method, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", WEB, timeout=60)
    conn.request(method, urllib.parse.quote(path, safe="/:?=&"), body=body)
    r = conn.getresponse()
    out = r.status, r.read()
    conn.close()
    return out


def web_put(data):
    """The cap `PUT /uri` gives `data`."""
    st, cap = web("PUT", "/uri", data)
    assert st in (200, 201), st
    return cap.decode()


def object_cap(folder, name):
    """The cap of the file `name` in the directory `folder` of bucket alpha."""
    st, js = web("GET", f"/uri/{ROOT1}/alpha/{folder}?t=json")
    assert st == 200, st
    return json.loads(js)[1]["children"][name][1]["ro_uri"]


def spool_files():
    return sorted(n for n in os.listdir(SPOOL) if n.startswith("upload-"))


if __name__ == "__main__":
    main()
