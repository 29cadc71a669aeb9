#!/usr/bin/env python3
"""Generate tests/data/tahoe-chk-shares.json with the real Tahoe-LAFS.

Run it with the Python library of Tahoe-LAFS 1.20, in a scratch virtualenv
kept outside the repository:

    python3 -m venv /tmp/tahoe-venv
    /tmp/tahoe-venv/bin/pip install tahoe-lafs==1.20.0
    /tmp/tahoe-venv/bin/python scripts/gen_tahoe_chk_shares.py [out]

`out` defaults to tests/data/tahoe-chk-shares.json.

Each case is an ordinary convergent CHK upload pushed through Tahoe's own
client code (Uploader -> EncryptAnUploadable -> CHKUploader -> server
selection -> Encoder -> WriteBucketProxy) against n in-memory storage servers
defined here. The only stand-ins are those servers: they hand out bucket
writers that copy each remote "write"(offset, data) into a bytearray. So a
recorded share is exactly the byte string a Tahoe 1.20 client sends to a
storage server's bucket writer (offset table, blocks, zeroed plaintext hash
tree, crypttext hash tree, block hash tree, share hash chain, UEB length and
UEB); the server's own container header and leases are not part of it. The
v1/v2 layout choice, segment size, key, storage index and cap all come from
Tahoe. The input data is pseudo_random_bytes(seed, size) (splitmix64, the
same generator as tahoe_core::testing::pseudo_random_bytes).

Nothing is downloaded: the checks are that every share was written from
offset 0 to the very size the client allocated, without gaps or overlaps,
that every share carries the same UEB, and that Tahoe's UEB hash of it is
the one in the cap.
"""
import base64
import hashlib
import json
import struct
import sys

from twisted.internet import defer, task
from foolscap.api import fireEventually

import allmydata
import zfec
from allmydata import uri
from allmydata.client import SecretHolder
from allmydata.immutable import upload
from allmydata.node import config_from_string
from allmydata.storage_client import StorageFarmBroker
from allmydata.util import base32, hashutil

MASK = (1 << 64) - 1


def pseudo_random_bytes(seed, n):
    state = seed
    out = bytearray()
    while len(out) < n:
        state = (state + 0x9E3779B97F4A7C15) & MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        z ^= z >> 31
        out += z.to_bytes(8, "little")
    return bytes(out[:n])


CONVERGENCE = b"\x42" * 16
# name, seed, size, k, happy, n, max_segment_size
CASES = [
    ("A", 1, 1000, 3, 7, 10, 131072),
    ("B", 2, 300000, 3, 7, 10, 131072),
    ("C", 3, 2_500_000, 3, 7, 10, 1048576),
    ("D", 4, 56, 2, 3, 4, 131072),
    ("E", 5, 100_000, 1, 1, 1, 131072),
    # n outside 9..16: Tahoe writes the share hash chain in Python set
    # order, which is not ascending here.
    ("F", 6, 5000, 3, 5, 6, 131072),
    ("G", 7, 40_000, 5, 10, 20, 131072),
]
FULL_SHARE0_LIMIT = 200_000  # larger share 0s are given as head + tail only
EDGE = 4096


class Bucket:
    """Receives one share: Tahoe's WriteBucketProxy calls callRemote on it."""

    def __init__(self, allocated):
        self.allocated = allocated
        self.buf = bytearray(allocated)
        self.end = 0  # writes must be contiguous from offset 0
        self.closed = False

    def callRemote(self, method, *args):
        return fireEventually().addCallback(lambda _: getattr(self, "do_" + method)(*args))

    def do_write(self, offset, data):
        assert not self.closed
        assert offset == self.end, (offset, self.end)
        assert offset + len(data) <= self.allocated, (offset, len(data), self.allocated)
        self.buf[offset:offset + len(data)] = data
        self.end = offset + len(data)

    def do_close(self):
        assert not self.closed
        self.closed = True

    def do_abort(self):
        raise AssertionError("upload aborted")


class Server:
    """A storage server with room for anything; keeps the buckets it hands out."""

    version = {
        b"http://allmydata.org/tahoe/protocols/storage/v1": {
            b"maximum-immutable-share-size": 2**64 - 1,
        },
        b"application-version": b"gen_tahoe_chk_shares",
    }

    def __init__(self, shares):
        self.shares = shares  # shared by all servers: shnum -> Bucket

    def callRemote(self, method, *args, **kwargs):
        return fireEventually().addCallback(lambda _: getattr(self, "do_" + method)(*args, **kwargs))

    def do_get_buckets(self, storage_index):
        return {}

    def do_allocate_buckets(self, storage_index, renew_secret, cancel_secret,
                            sharenums, allocated_size, canary=None):
        made = {}
        for shnum in sharenums:
            assert shnum not in self.shares, shnum
            made[shnum] = self.shares[shnum] = Bucket(allocated_size)
        return (set(), made)


class Node:
    """What Uploader expects of its parent client node."""

    def __init__(self, k, happy, n, max_segment_size, shares):
        self.params = {"k": k, "happy": happy, "n": n, "max_segment_size": max_segment_size}
        self._secret_holder = SecretHolder(b"\x00" * 32, CONVERGENCE)
        self.broker = StorageFarmBroker(
            permute_peers=True, tub_maker=None,
            node_config=config_from_string("/dev/null", "tub.port", ""))
        for i in range(n):
            serverid = b"gen-chk-server-%05d" % i  # 20 bytes, like a tub id
            ann = {"anonymous-storage-FURL": "pb://%s@nowhere/fake" % base32.b2a(serverid).decode(),
                   "permutation-seed-base32": base32.b2a(serverid)}
            self.broker.test_add_rref(serverid, Server(shares), ann)

    def get_encoding_parameters(self):
        return self.params

    def get_storage_broker(self):
        return self.broker


def parse_share(share):
    """Split a share at its offset table; return (version, offsets, ueb)."""
    (version,) = struct.unpack(">L", share[:4])
    if version == 1:
        fields = struct.unpack(">LLLLLLLL", share[4:0x24])
        len_fmt = ">L"
    else:
        assert version == 2, version
        fields = struct.unpack(">QQQQQQQQ", share[4:0x44])
        len_fmt = ">Q"
    names = ["block_size", "data_size", "data", "plaintext_hash_tree",
             "crypttext_hash_tree", "block_hashes", "share_hashes", "uri_extension"]
    offsets = dict(zip(names, fields))
    at = offsets["uri_extension"]
    width = struct.calcsize(len_fmt)
    (ueb_len,) = struct.unpack(len_fmt, share[at:at + width])
    ueb = share[at + width:at + width + ueb_len]
    assert at + width + ueb_len == len(share), (at, width, ueb_len, len(share))
    return version, offsets, ueb


@defer.inlineCallbacks
def run_case(reactor, name, seed, size, k, happy, n, max_segment_size):
    data = pseudo_random_bytes(seed, size)
    shares = {}
    node = Node(k, happy, n, max_segment_size, shares)
    uploader = upload.Uploader()
    uploader.parent = node
    uploader.running = True
    results = yield uploader.upload(upload.Data(data, convergence=CONVERGENCE), reactor=reactor)
    cap = results.get_uri().decode()
    readcap = uri.from_string(cap)
    assert isinstance(readcap, uri.CHKFileURI), cap
    assert sorted(shares) == list(range(n)), sorted(shares)

    versions = set()
    uebs = set()
    out_shares = {}
    for shnum in range(n):
        b = shares[shnum]
        assert b.closed and b.end == b.allocated, (shnum, b.end, b.allocated)
        share = bytes(b.buf)
        version, offsets, ueb = parse_share(share)
        pt = share[offsets["plaintext_hash_tree"]:offsets["crypttext_hash_tree"]]
        assert pt == b"\x00" * len(pt)
        versions.add(version)
        uebs.add(ueb)
        out_shares[str(shnum)] = {"size": len(share), "sha256": hashlib.sha256(share).hexdigest()}
    assert len(versions) == 1 and len(uebs) == 1
    (ueb,) = uebs
    assert hashutil.uri_extension_hash(ueb) == readcap.uri_extension_hash
    ueb_fields = uri.unpack_extension(ueb)
    assert ueb_fields["size"] == size and ueb_fields["needed_shares"] == k
    assert ueb_fields["total_shares"] == n

    share0 = bytes(shares[0].buf)
    _, offsets0, _ = parse_share(share0)
    case = {
        "name": name, "seed": seed, "size": size,
        "k": k, "happy": happy, "n": n, "max_segment_size": max_segment_size,
        "segment_size": ueb_fields["segment_size"],
        "num_segments": ueb_fields["num_segments"],
        "block_size": offsets0["block_size"],
        "ueb_size": len(ueb),
        "convergence_hex": CONVERGENCE.hex(),
        "cap": cap,
        "storage_index_b32": base32.b2a(readcap.get_storage_index()).decode(),
        "share_version": versions.pop(),
        "shares": out_shares,
    }
    if len(share0) <= FULL_SHARE0_LIMIT:
        case["share0_b64"] = base64.b64encode(share0).decode()
    else:
        case["share0_head_b64"] = base64.b64encode(share0[:EDGE]).decode()
        case["share0_tail_b64"] = base64.b64encode(share0[-EDGE:]).decode()
    print(f"case {name}: v{case['share_version']} share size {len(share0)} {cap}")
    return case


@defer.inlineCallbacks
def main(reactor, out):
    cases = []
    for params in CASES:
        cases.append((yield run_case(reactor, *params)))
    doc = {
        "generator": "scripts/gen_tahoe_chk_shares.py",
        "tahoe_version": allmydata.__version__,
        "zfec_version": zfec.__version__,
        "cases": cases,
    }
    with open(out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {out}")


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/data/tahoe-chk-shares.json"
    task.react(main, [out])
