#!/usr/bin/env python3
"""Generate tests/data/tahoe-mutable-shares.json with the real Tahoe-LAFS.

Run it with the Python library of Tahoe-LAFS 1.20, in a scratch virtualenv
kept outside the repository:

    python3 -m venv /tmp/tahoe-venv
    /tmp/tahoe-venv/bin/pip install tahoe-lafs==1.20.0
    /tmp/tahoe-venv/bin/python scripts/gen_tahoe_mutable_shares.py [out]

`out` defaults to tests/data/tahoe-mutable-shares.json. Run it from the
repository root: the RSA key is read from tests/data/tahoe-lafs-test-vectors.yaml.

Each case is an ordinary mutable file (SDMF or MDMF) pushed through Tahoe's
own client code: NodeMaker.create_mutable_file(MutableData(data), version,
keypair) -> MutableFileNode.create_with_keys -> Publish -> SDMFSlotWriteProxy
or MDMFSlotWriteProxy, and for the overwrite cases a second
MutableFileNode.overwrite(MutableData(data)) (servermap update in MODE_WRITE,
then Publish with seqnum 2). The only stand-ins are n in-memory storage
servers defined here (one fake grid per case): slot_testv_and_readv_and_writev
evaluates the test vectors honestly against what the server holds, answers
the read vector from the state before the writes, and then applies the write
vectors to a bytearray per (storage index, share number); slot_readv serves
reads from those bytearrays. So a recorded share is exactly the slot data a
Tahoe 1.20 client writes (header, keys, signature, hashes, salts and blocks);
the server's container header, write enabler and leases are not part of it.
Bytes a client never writes read back as zeros, as from a real server: MDMF
leaves a never-written hole between the end of the verification key and the
share data (Tahoe reserves fixed room for the key material there).

Every case uses the same 2048-bit RSA key: the first SSK key of Tahoe's test
vectors, so the SDMF writecap is the one those vectors expect. The input data
is pseudo_random_bytes(seed, size) (splitmix64, the same generator as
tahoe_core::testing::pseudo_random_bytes). Salts and the RSA-PSS signature
are random (os.urandom), so every run writes different share bytes.

Checks: every share's bytes were written by the last publish from offset 0 to
its EOF offset with no gaps (except MDMF's reserved hole, which must be all
zeros and never written) and overlapping writes agree; every share of a case
has the same seqnum, root hash, k, n, segment size, data length and
signature, and carries our public key; the signature verifies; and Tahoe
itself reads the file back (download_best_version of a fresh read-only node
on the same fake servers) as the original data.
"""
import base64
import json
import os
import struct
import sys

import yaml
from cryptography.hazmat.primitives import serialization
from twisted.internet import defer, task
from foolscap.api import fireEventually

import allmydata
from allmydata import uri
from allmydata.client import SecretHolder
from allmydata.crypto import rsa
from allmydata.interfaces import MDMF_VERSION, SDMF_VERSION
from allmydata.mutable.layout import (
    HEADER_LENGTH,
    MDMFSlotReadProxy,
    unpack_header,
    unpack_share,
)
from allmydata.mutable.publish import MutableData
from allmydata.node import config_from_string
from allmydata.nodemaker import NodeMaker
from allmydata.storage.server import si_b2a
from allmydata.storage_client import StorageFarmBroker
from allmydata.util import base32

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


VECTORS = "tests/data/tahoe-lafs-test-vectors.yaml"
# name, format, k, n, [(seed, size), ...]: the first is the initial contents,
# any further one overwrites it (seqnum 2). The JSON records the last seed.
CASES = [
    ("sdmf-small", "sdmf", 3, 10, [(1, 56)]),
    ("sdmf-empty", "sdmf", 3, 10, [(0, 0)]),
    ("sdmf-overwrite", "sdmf", 3, 10, [(2, 1000), (3, 5000)]),
    ("mdmf-small", "mdmf", 3, 10, [(1, 56)]),
    ("mdmf-empty", "mdmf", 3, 10, [(0, 0)]),
    ("mdmf-multiseg", "mdmf", 3, 5, [(4, 300000)]),
    ("mdmf-overwrite", "mdmf", 3, 5, [(7, 10), (5, 200000)]),
    ("sdmf-k1", "sdmf", 1, 1, [(6, 56)]),
]


def load_key():
    """The first SSK key of Tahoe's test vectors, and the cap it expects."""
    with open(VECTORS) as f:
        doc = yaml.safe_load(f)
    for v in doc["vector"]:
        params = v["format"]["params"]
        if v["format"]["kind"] == "ssk" and params and "BEGIN RSA PRIVATE KEY" in params["key"]:
            pem = params["key"].encode()
            break
    else:
        raise AssertionError("no SSK key in " + VECTORS)
    key = serialization.load_pem_private_key(pem, password=None)
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    pkcs8_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()).decode()
    priv, pub = rsa.create_signing_keypair_from_string(der)
    return (pub, priv), pkcs8_pem, params["format"], v["expected"]


class Slot:
    """One share's slot data, plus a log of which bytes were written when."""

    def __init__(self):
        self.buf = bytearray()
        self.writes = []  # (epoch, offset, length)


class Grid:
    """The state of one fake grid: (server, storage index, shnum) -> Slot."""

    def __init__(self):
        self.slots = {}
        self.epoch = 0  # bumped by the script before each publish


class Server:
    """A mutable-slot storage server; Tahoe's _StorageServer wraps it."""

    version = {
        b"http://allmydata.org/tahoe/protocols/storage/v1": {
            b"maximum-immutable-share-size": 2**64 - 1,
            b"maximum-mutable-share-size": 2**64 - 1,
        },
        b"application-version": b"gen_tahoe_mutable_shares",
    }

    def __init__(self, serverid, grid):
        self.serverid = serverid
        self.grid = grid

    def callRemote(self, method, *args, **kwargs):
        return fireEventually().addCallback(lambda _: getattr(self, "do_" + method)(*args, **kwargs))

    def callRemoteOnly(self, method, *args, **kwargs):
        self.callRemote(method, *args, **kwargs)

    def _held(self, storage_index):
        return {shnum: slot for (sid, si, shnum), slot in self.grid.slots.items()
                if sid == self.serverid and si == storage_index}

    def do_slot_readv(self, storage_index, shnums, readv):
        return {shnum: [bytes(slot.buf[o:o + n]) for (o, n) in readv]
                for shnum, slot in self._held(storage_index).items()
                if not shnums or shnum in shnums}

    def do_slot_testv_and_readv_and_writev(self, storage_index, secrets, tw_vectors, read_vector):
        write_enabler, renew_secret, cancel_secret = secrets
        assert len(write_enabler) == 32 and len(renew_secret) == 32 and len(cancel_secret) == 32
        held = self._held(storage_index)
        ok = True
        for shnum, (testv, datav, new_length) in tw_vectors.items():
            current = held[shnum].buf if shnum in held else b""
            for (offset, length, op, specimen) in testv:
                assert op == b"eq", op
                if bytes(current[offset:offset + length]) != specimen:
                    ok = False
        answer = {shnum: [bytes(slot.buf[o:o + n]) for (o, n) in read_vector]
                  for shnum, slot in held.items()}
        if ok:
            for shnum, (testv, datav, new_length) in tw_vectors.items():
                key = (self.serverid, storage_index, shnum)
                if new_length == 0:
                    self.grid.slots.pop(key, None)
                    continue
                slot = self.grid.slots.setdefault(key, Slot())
                for (offset, data) in datav:
                    if len(slot.buf) < offset + len(data):
                        slot.buf.extend(b"\x00" * (offset + len(data) - len(slot.buf)))
                    slot.buf[offset:offset + len(data)] = data
                    slot.writes.append((self.grid.epoch, offset, len(data)))
                # overlapping write vectors of one call must agree
                for (offset, data) in datav:
                    assert bytes(slot.buf[offset:offset + len(data)]) == data, (shnum, offset)
                if new_length is not None and new_length < len(slot.buf):
                    del slot.buf[new_length:]
        return (ok, answer)

    def do_advise_corrupt_share(self, share_type, storage_index, shnum, reason):
        raise AssertionError("client reports a corrupt share %d: %r" % (shnum, reason))


def make_nodemaker(grid, k, n):
    secret_holder = SecretHolder(b"\x00" * 32, b"\x42" * 16)
    broker = StorageFarmBroker(
        permute_peers=True, tub_maker=None,
        node_config=config_from_string("/dev/null", "tub.port", ""))
    for i in range(n):
        serverid = b"gen-mut-server-%05d" % i  # 20 bytes, like a tub id
        ann = {"anonymous-storage-FURL": "pb://%s@nowhere/fake" % base32.b2a(serverid).decode(),
               "permutation-seed-base32": base32.b2a(serverid)}
        broker.test_add_rref(serverid, Server(serverid, grid), ann)
    # The key generator is never used: every file is made with our keypair.
    return NodeMaker(broker, secret_holder, None, None, None,
                     {"k": k, "n": n}, SDMF_VERSION, None)


def covered(writes, epoch):
    """Merged [start, end) intervals written during `epoch`."""
    spans = sorted((o, o + n) for (e, o, n) in writes if e == epoch and n)
    merged = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [tuple(m) for m in merged]


def parse_share(fmt, shnum, share):
    """(seqnum, root_hash, k, n, segsize, datalen, pubkey, signature, prefix,
    holes, eof) of one share, parsed by Tahoe's own layout code."""
    if fmt == "sdmf":
        (version, seqnum, root_hash, IV, k, N, segsize, datalen, o) = unpack_header(share)
        assert version == SDMF_VERSION
        (seqnum2, root_hash2, IV2, k2, N2, segsize2, datalen2, pubkey, signature,
         share_hash_chain, block_hash_tree, share_data, enc_privkey) = unpack_share(share)
        assert (seqnum, root_hash, IV, k, N, segsize, datalen) == \
            (seqnum2, root_hash2, IV2, k2, N2, segsize2, datalen2)
        assert len(share_data) == segsize // k
        prefix = share[:struct.calcsize(">BQ32s16sBBQQ")]
        assert o["signature"] == HEADER_LENGTH + len(pubkey)
        return (seqnum, root_hash, k, N, segsize, datalen, pubkey, signature, prefix, [], o["EOF"])
    reader = MDMFSlotReadProxy(None, None, shnum, share, data_is_everything=True)
    results = []
    d = defer.gatherResults([reader.get_verinfo(), reader.get_verification_key(),
                             reader.get_signature()])
    d.addCallback(results.append)
    assert results, "MDMFSlotReadProxy did not answer synchronously"
    ((seqnum, root_hash, salt, segsize, datalen, k, N, prefix, o), pubkey, signature) = results[0]
    assert share[0] == MDMF_VERSION and salt is None
    holes = [(o["verification_key_end"], o["share_data"])]
    return (seqnum, root_hash, k, N, segsize, datalen, pubkey, signature, prefix, holes, o["EOF"])


@defer.inlineCallbacks
def run_case(keypair, key_pem, name, fmt, k, n, contents):
    grid = Grid()
    nodemaker = make_nodemaker(grid, k, n)
    version = MDMF_VERSION if fmt == "mdmf" else SDMF_VERSION
    seed, size = contents[0]
    data = pseudo_random_bytes(seed, size)
    grid.epoch = 1
    node = yield nodemaker.create_mutable_file(MutableData(data), version=version, keypair=keypair)
    for seed, size in contents[1:]:
        data = pseudo_random_bytes(seed, size)
        grid.epoch += 1
        yield node.overwrite(MutableData(data))
    last_epoch = grid.epoch
    seqnum_expected = len(contents)

    writecap = node.get_uri().decode()
    readcap = node.get_readonly_uri().decode()
    verifycap = node.get_verify_cap().to_string().decode()
    storage_index = node.get_storage_index()
    cap = uri.from_string(writecap)
    want_class = uri.WriteableMDMFFileURI if fmt == "mdmf" else uri.WriteableSSKFileURI
    assert isinstance(cap, want_class), writecap

    # Every share number is held once, by one server, at our storage index.
    by_shnum = {}
    for (sid, si, shnum), slot in grid.slots.items():
        assert si == storage_index, si
        assert shnum not in by_shnum, shnum
        by_shnum[shnum] = slot
    assert sorted(by_shnum) == list(range(n)), sorted(by_shnum)

    our_pubkey = rsa.der_string_from_verifying_key(keypair[0])
    common = set()
    out_shares = {}
    sizes = []
    for shnum in range(n):
        slot = by_shnum[shnum]
        share = bytes(slot.buf)
        (seqnum, root_hash, sk, sn, segsize, datalen, pubkey, signature, prefix,
         holes, eof) = parse_share(fmt, shnum, share)
        assert eof == len(share), (shnum, eof, len(share))
        # The last publish wrote everything from 0 to EOF except the holes,
        # which nobody ever wrote and so are zeros.
        want = []
        at = 0
        for a, b in holes:
            assert at <= a <= b <= len(share), (holes, len(share))
            if a > at:
                want.append((at, a))
            at = b
        want.append((at, len(share)))
        assert covered(slot.writes, last_epoch) == want, (name, shnum, covered(slot.writes, last_epoch), want)
        for a, b in holes:
            assert share[a:b] == b"\x00" * (b - a)
            for (e, o, ln) in slot.writes:
                assert o + ln <= a or o >= b, ("wrote into the hole", name, shnum, e, o, ln)
        assert pubkey == our_pubkey
        rsa.verify_signature(keypair[0], signature, prefix)
        common.add((seqnum, root_hash, sk, sn, segsize, datalen, signature))
        out_shares[str(shnum)] = base64.b64encode(share).decode()
        sizes.append(len(share))
    assert len(common) == 1, common
    (seqnum, root_hash, sk, sn, segsize, datalen, signature), = common
    assert (seqnum, sk, sn, datalen) == (seqnum_expected, k, n, len(data)), (seqnum, sk, sn, datalen)

    # Tahoe reads it back, from scratch, through a read-only node.
    reader = nodemaker.create_from_cap(readcap.encode())
    assert reader.is_readonly()
    got = yield reader.download_best_version()
    assert got == data, (name, len(got), len(data))
    got = yield node.download_best_version()
    assert got == data

    print(f"case {name}: {fmt} k={k} n={n} seqnum={seqnum} segsize={segsize} "
          f"datalen={datalen} share sizes {sorted(set(sizes))} {writecap}")
    return {
        "name": name,
        "format": fmt,
        "key_pem": key_pem,
        "k": k,
        "n": n,
        "seqnum": seqnum,
        "segment_size": segsize,
        "data_seed": contents[-1][0],
        "data_length": len(data),
        "writecap": writecap,
        "readcap": readcap,
        "verifycap": verifycap,
        "storage_index": si_b2a(storage_index).decode(),
        "shares": out_shares,
    }


@defer.inlineCallbacks
def main(reactor, out):
    keypair, key_pem, vector_format, vector_cap = load_key()
    cases = []
    for params in CASES:
        case = yield run_case(keypair, key_pem, *params)
        cases.append(case)
        if case["format"] == vector_format:
            # The cap depends on the key only: Tahoe's vectors agree.
            assert case["writecap"] == vector_cap, (case["writecap"], vector_cap)
    doc = {
        "generator": "scripts/gen_tahoe_mutable_shares.py",
        "tahoe_version": allmydata.__version__,
        "cases": cases,
    }
    with open(out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {out} ({os.path.getsize(out)} bytes)")


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/data/tahoe-mutable-shares.json"
    task.react(main, [out])
