#!/usr/bin/env python3
"""Generate tests/data/tahoe-lease-secrets.json with the real Tahoe-LAFS.

Run it with the Python library of Tahoe-LAFS 1.20, in a scratch virtualenv
kept outside the repository:

    python3 -m venv /tmp/tahoe-venv
    /tmp/tahoe-venv/bin/pip install tahoe-lafs==1.20.0
    /tmp/tahoe-venv/bin/python scripts/gen_tahoe_lease_secrets.py [out]

`out` defaults to tests/data/tahoe-lease-secrets.json.

Every value is computed by Tahoe's own allmydata.util.hashutil; nothing of
it is reimplemented here. For each client secret (the 32 bytes of a node's
private/secret), storage index (16 bytes) and peer id, the script records
the three levels of Tahoe's lease secrets:

    client  my_renewal_secret_hash(secret), my_cancel_secret_hash(secret)
    file    file_renewal_secret_hash(client_renewal, storage_index),
            file_cancel_secret_hash(client_cancel, storage_index)
    bucket  bucket_renewal_secret_hash(file_renewal, peer_id),
            bucket_cancel_secret_hash(file_cancel, peer_id)

and for each mutable write key (16 bytes) and peer id the write enabler:

    ssk_write_enabler_master_hash(write_key)
    ssk_write_enabler_hash(write_key, peer_id)

Tahoe's bucket and write-enabler functions take the peer id as bytes and
insist on exactly 20 of them (a Foolscap tub id). tahoe_core's
FileSecrets::for_server and secrets::write_enabler hash the UTF-8 bytes of
a node id string, so the peer ids here are 20-byte UTF-8 strings (one of
them not ASCII), and the same bytes go to Tahoe and to our code. (Our real
node ids are 52 base32 characters, which Tahoe's functions refuse.)

The JSON fields (all byte strings in lowercase hex):

    generator, tahoe_version
    lease_cases: one per (client secret, storage index, peer id), each with
        client_secret, storage_index, peer_id (the string), peer_id_hex (its
        bytes as given to Tahoe), client_renewal_secret,
        client_cancel_secret, file_renewal_secret, file_cancel_secret,
        bucket_renewal_secret, bucket_cancel_secret
    num_lease_cases: len(lease_cases)
    write_enabler_cases: one per (write key, peer id), each with write_key,
        peer_id, peer_id_hex, write_enabler_master, write_enabler
    num_write_enabler_cases: len(write_enabler_cases)

Nothing is random: every run writes the same file.
"""
import hashlib
import json
import sys

import allmydata
from allmydata.util import hashutil

CLIENT_SECRETS = [
    bytes([3]) * 32,
    bytes(range(32)),
    hashlib.sha256(b"tahoe-rs lease secret fixture").digest(),
]
STORAGE_INDEXES = [
    bytes([4]) * 16,
    bytes(range(0xF0, 0x100)),
    bytes(16),
]
PEER_IDS = [
    "tahoe-rs-server-0001",
    "2mqtbdezzflzfcvhw3ya",  # base32 characters, as in a node id
    "nœud-français-ü-1",  # multi-byte UTF-8: bytes, not characters, count
]
WRITE_KEYS = [
    bytes([5]) * 16,
    bytes(range(16, 32)),
    hashlib.sha256(b"tahoe-rs write key fixture").digest()[:16],
]


def peer_bytes(peer_id):
    b = peer_id.encode("utf-8")
    assert len(b) == 20, (peer_id, len(b))  # what Tahoe's functions demand
    return b


def lease_cases():
    cases = []
    for secret in CLIENT_SECRETS:
        crs = hashutil.my_renewal_secret_hash(secret)
        ccs = hashutil.my_cancel_secret_hash(secret)
        for si in STORAGE_INDEXES:
            frs = hashutil.file_renewal_secret_hash(crs, si)
            fcs = hashutil.file_cancel_secret_hash(ccs, si)
            for peer_id in PEER_IDS:
                peer = peer_bytes(peer_id)
                cases.append({
                    "client_secret": secret.hex(),
                    "storage_index": si.hex(),
                    "peer_id": peer_id,
                    "peer_id_hex": peer.hex(),
                    "client_renewal_secret": crs.hex(),
                    "client_cancel_secret": ccs.hex(),
                    "file_renewal_secret": frs.hex(),
                    "file_cancel_secret": fcs.hex(),
                    "bucket_renewal_secret": hashutil.bucket_renewal_secret_hash(frs, peer).hex(),
                    "bucket_cancel_secret": hashutil.bucket_cancel_secret_hash(fcs, peer).hex(),
                })
    return cases


def write_enabler_cases():
    cases = []
    for key in WRITE_KEYS:
        master = hashutil.ssk_write_enabler_master_hash(key)
        for peer_id in PEER_IDS:
            peer = peer_bytes(peer_id)
            cases.append({
                "write_key": key.hex(),
                "peer_id": peer_id,
                "peer_id_hex": peer.hex(),
                "write_enabler_master": master.hex(),
                "write_enabler": hashutil.ssk_write_enabler_hash(key, peer).hex(),
            })
    return cases


def main(out):
    leases = lease_cases()
    enablers = write_enabler_cases()
    doc = {
        "generator": "scripts/gen_tahoe_lease_secrets.py",
        "tahoe_version": allmydata.__version__,
        "lease_cases": leases,
        "num_lease_cases": len(leases),
        "write_enabler_cases": enablers,
        "num_write_enabler_cases": len(enablers),
    }
    with open(out, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {len(leases)} lease and {len(enablers)} write-enabler cases to {out}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/data/tahoe-lease-secrets.json")
