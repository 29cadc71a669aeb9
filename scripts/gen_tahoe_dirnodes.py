#!/usr/bin/env python3
"""Generate tests/data/tahoe-dirnodes.json with the real Tahoe-LAFS.

Run it with the Python library of Tahoe-LAFS 1.20, in a scratch virtualenv
kept outside the repository:

    python3 -m venv /tmp/tahoe-venv
    /tmp/tahoe-venv/bin/pip install tahoe-lafs==1.20.0
    /tmp/tahoe-venv/bin/python scripts/gen_tahoe_dirnodes.py [out]

`out` defaults to tests/data/tahoe-dirnodes.json.

Each case is the plaintext of one directory as Tahoe packs it:
allmydata.dirnode.pack_children(children, writekey, deep_immutable), the
function NodeMaker.create_new_mutable_directory (with the directory's
writekey) and NodeMaker.create_immutable_directory (with writekey None and
deep_immutable=True) call. The children are real Tahoe nodes made by
NodeMaker.create_from_cap from cap strings (storage broker, uploader and the
rest are None: making a node from a cap touches none of them). The caps are
the ones a Tahoe 1.20 grid printed (their strings are copied below) or are
built with allmydata.uri classes from pseudo_random_bytes(seed, n)
(splitmix64, the same generator as tahoe_core::testing::pseudo_random_bytes).
A case's writekey is pseudo_random_bytes too. Nothing is random: the rwcap
salt is a hash of the child's writecap, so every run writes the same file.

For every child the JSON gives the name as passed to pack_children and as
stored (NFC), the node's write cap, the read cap as stored in the entry's
ro_uri netstring (Tahoe strips a "ro." prefix there, and an "imm." prefix in
deep-immutable directories), the metadata JSON text exactly as Tahoe wrote it
(allmydata.util.jsonbytes.dumps: json.dumps defaults, so ", " and ": "
separators, ensure_ascii escapes, Python float repr, insertion-order keys),
and the bytes of the child's whole entry netstring; and for the case the
whole packed directory.

Checks, per case: the packed bytes split (by a netstring parser written
here) into exactly the recorded entries, in NFC-name order, each of four
netstrings (name, ro_uri, rwcapdata, metadata); the name is the NFC form of
the given name; the ro_uri is the node's read cap with the prefix stripped as
allmydata.unknown.strip_prefix_for_ro does; the metadata text is
jsonbytes.dumps(metadata) and parses back to the metadata; rwcapdata is empty
without a writekey, else salt (16) + AES-CTR ciphertext + HMAC (32), where
salt = hashutil.mutable_rwcap_salt_hash(writecap), the key is
hashutil.mutable_rwcap_key_hash(salt, writekey), the ciphertext decrypts
(allmydata.crypto.aes) to the node's write cap (empty when it has none) and
the MAC is hashutil.hmac(key, salt + ciphertext). Then Tahoe itself reads the
directory back: DirectoryNode._unpack_contents of a DirectoryNode that
NodeMaker made from a directory cap around the packed data's key (a DIR2 or
DIR2-MDMF writecap with the case's writekey; its DIR2-RO readcap, which must
hide every writecap; a DIR2-CHK cap for deep-immutable cases) must give back
every name with the same write cap, read cap and metadata, and packing that
result again (_pack_normalized_children on a plain dict, so nothing is
reused from the unpacked entries) must give the same bytes.
"""
import json
import os
import sys
import unicodedata

import allmydata
from allmydata import uri
from allmydata.crypto import aes
from allmydata.dirnode import DirectoryNode, _pack_normalized_children, pack_children
from allmydata.interfaces import SDMF_VERSION
from allmydata.nodemaker import NodeMaker
from allmydata.unknown import UnknownNode, strip_prefix_for_ro
from allmydata.util import hashutil
from allmydata.util import jsonbytes

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


# Caps printed by a Tahoe-LAFS 1.20 grid (the reference transcripts).
REF_CHK = b"URI:CHK:qshmn2agxxnlfutayetlh4l4ny:hl6wzvjixamvzntxnpzpnitevjacksukfkkyncvzhma5fns27awa:3:10:1048576"
REF_LIT = b"URI:LIT:oruw46janruxizlsmfwcaztjnrsqu"
REF_SSK = b"URI:SSK:ucieqfwyvfpi54i77vtgyo3yae:bfngdsfcqv4gjdhixqqy3y2hj345mz4vzmtknlewftkiiuuuu4qq"
REF_MDMF = b"URI:MDMF:w334plf5hafvt5kq3zqi7cwcwa:4jwr3o3r63umac3ifea6j4b5lz4exmdq2q62vzi6kyf6llok6ena"
REF_DIR2 = b"URI:DIR2:i7ryyroiagwqag2wgpkkuk3xxy:ujf2wyw5k3po3zupayfnm3fqlrftplet6ktd3e4ks6umqqyklwdq"
REF_DIR2_RO = b"URI:DIR2-RO:khkwd42hrrnfoysmkel2p5m55u:yil4i7j6pbpnsiqb2roids426vkyi5xoxwlbfcoj7m6efk4qtenq"
REF_DIR2_CHK = b"URI:DIR2-CHK:2rbt62oh54iqryivubnkopr27u:abultw2hfmanpccnm3fp3hccgflcuuif777b6e47d3sywieywp5q:3:10:133"
REF_DIR2_LIT_EMPTY = b"URI:DIR2-LIT:"


# Caps built from pseudo-random bytes (seed picks the bytes).
def chk(seed, size, k=3, n=10):
    return uri.CHKFileURI(pseudo_random_bytes(seed, 16), pseudo_random_bytes(seed + 1, 32),
                          k, n, size).to_string()


def lit(seed, size):
    return uri.LiteralFileURI(pseudo_random_bytes(seed, size)).to_string()


def ssk(seed):
    return uri.WriteableSSKFileURI(pseudo_random_bytes(seed, 16), pseudo_random_bytes(seed + 1, 32))


def mdmf(seed):
    return uri.WriteableMDMFFileURI(pseudo_random_bytes(seed, 16), pseudo_random_bytes(seed + 1, 32))


def ref_cap_is_canonical(cap):
    """Our copies of the grid's caps parse and print back unchanged."""
    assert uri.from_string(cap).to_string() == cap, cap
    return cap


for _cap in (REF_CHK, REF_LIT, REF_SSK, REF_MDMF, REF_DIR2, REF_DIR2_RO, REF_DIR2_CHK,
             REF_DIR2_LIT_EMPTY):
    ref_cap_is_canonical(_cap)

NODEMAKER = NodeMaker(None, None, None, None, None, {"k": 3, "n": 10, "happy": 7},
                      SDMF_VERSION, None)


def node(writecap, readcap=None, deep_immutable=False):
    n = NODEMAKER.create_from_cap(writecap, readcap, deep_immutable=deep_immutable)
    n.raise_error()  # Tahoe accepts it as a child
    return n


def t(crtime, motime=None):
    return {"tahoe": {"linkcrtime": crtime, "linkmotime": crtime if motime is None else motime}}


def lit_dir_of(children):
    """A DIR2-LIT cap whose contents are a real packed immutable directory."""
    packed = pack_children(children, None, deep_immutable=True)
    return uri.LiteralDirectoryURI(uri.LiteralFileURI(packed)).to_string()


def build_cases():
    """[(name, writekey or None, deep_immutable, dir_format, [(given_name,
    node, metadata)])]; dir_format picks the directory cap used to unpack."""
    cases = []

    def mutable(name, seed, children, dir_format="sdmf"):
        cases.append((name, pseudo_random_bytes(seed, 16), False, dir_format, children))

    mutable("empty", 100, [])
    mutable("one-chk", 101, [("one_mib.bin", node(REF_CHK), t(1700000000.123456))])
    mutable("lit", 102, [
        ("hello.txt", node(REF_LIT), {}),
        ("empty.txt", node(lit(1, 0)), {}),
        ("fifty-five", node(lit(2, 55)), t(1700000001.5)),
    ])
    mutable("mutable-file-sdmf", 103, [
        ("ssk-grid", node(REF_SSK), t(1795823094.400957)),
        ("ssk-built", node(ssk(10).to_string()), {}),
        ("ssk-ro", node(ssk(12).get_readonly().to_string()), {}),
    ])
    mutable("mutable-file-mdmf", 104, [
        ("mdmf-grid", node(REF_MDMF), t(1795823095.25)),
        ("mdmf-built", node(mdmf(14).to_string()), {}),
        ("mdmf-ro", node(mdmf(16).get_readonly().to_string()), {}),
    ], dir_format="mdmf")
    lit_dir = lit_dir_of({"inner.txt": (node(lit(3, 5)), {})})
    mutable("subdirs", 105, [
        ("dir2-grid", node(REF_DIR2), t(1700000010.0)),
        ("dir2-built", node(uri.DirectoryURI(ssk(20)).to_string()), {}),
        ("dir2-ro-grid", node(REF_DIR2_RO), {}),
        ("dir2-ro-built", node(uri.ReadonlyDirectoryURI(ssk(22).get_readonly()).to_string()), {}),
        ("dir2-mdmf", node(uri.MDMFDirectoryURI(mdmf(24)).to_string()), {}),
        ("dir2-mdmf-ro", node(uri.ReadonlyMDMFDirectoryURI(mdmf(26).get_readonly()).to_string()), {}),
        ("dir2-chk-grid", node(REF_DIR2_CHK), {}),
        ("dir2-chk-built", node(uri.ImmutableDirectoryURI(uri.CHKFileURI.init_from_string(
            chk(28, 411))).to_string()), {}),
        ("dir2-lit-empty", node(REF_DIR2_LIT_EMPTY), {}),
        ("dir2-lit", node(lit_dir), {}),
        ("ssk-ro", node(ssk(30).get_readonly().to_string()), {}),
    ])
    mutable("unknown-cap", 106, [
        # rw + ro of a future format: kept, ro gets "ro." (stripped on disk)
        ("future-rw", node(b"x-tahoe-future-test-writeable:foo",
                           b"x-tahoe-future-test-readonly:bar"), {}),
        # a future readcap alone (given in the readcap slot)
        ("future-ro", node(None, b"URI:NEWTYPE:abc"), {}),
        # a single cap with "ro." given in the writecap slot moves to ro_uri
        ("future-ro-prefixed", node(b"ro.URI:NEWTYPE:def"), {}),
        # "imm." is kept on disk in a mutable directory
        ("future-imm", node(None, b"imm.x-tahoe-future-test-immutable:ghi"), {}),
        ("known", node(REF_LIT), {}),
    ])
    nfd = "cafe\u0301s"
    assert unicodedata.normalize("NFC", nfd) == "caf\u00e9s" != nfd
    angstrom = "\u212bngstr\u00f6m"  # ANGSTROM SIGN: NFC makes it U+00C5
    assert unicodedata.normalize("NFC", angstrom) == "\u00c5ngstr\u00f6m"
    mutable("unicode-names", 107, [
        ("caf\u00e9", node(chk(40, 1000)), {}),
        ("\u65e5\u672c\u8a9e", node(lit(41, 9)), {}),
        ("\U0001f389 party", node(lit(42, 3)), {}),
        (nfd, node(lit(43, 4)), {}),
        (angstrom, node(lit(44, 5)), {}),
        ("\uff21 fullwidth", node(lit(45, 6)), {}),
        ("name with  spaces ", node(lit(46, 7)), {}),
        ('quote"d \'name\'', node(lit(47, 8)), {}),
        ("netstring:like,name", node(lit(48, 9)), {}),
        ("Zeta", node(lit(49, 10)), {}),
        ("alpha", node(lit(50, 11)), {}),
    ])
    mutable("metadata", 108, [
        ("nested", node(chk(60, 12345)), {
            "zeta": 1, "alpha": {"inner": {"deeper": [1, 2, {"x": None}]}, "empty": {}},
            "mtime": 1795823094.400957, "ctime": 0.1, "tiny": 1e-7, "huge": 1e22,
            "neg": -42, "negf": -2.5, "zero": 0, "t": True, "f": False, "n": None,
            "list": [0.1, "s", [], [[]], -0.0],
        }),
        ("strings", node(lit(61, 20)), {
            "plain": "hello", "non-ascii": "caf\u00e9 \u65e5\u672c", "emoji": "\U0001f389",
            "escapes": "quote\" backslash\\ slash/ nl\n tab\t cr\r bs\b ff\f nul\x00 us\x1f del\x7f",
            "\u043a\u043b\u044e\u0447": "key is non-ascii",
            "": "empty key",
        }),
        ("tahoe", node(chk(62, 99)), {
            "tahoe": {"linkcrtime": 1795823094.400957, "linkmotime": 1795823099.0},
            "mtime": 1795823094.400957, "ctime": 1795823094.400957,
        }),
        ("tahoe-last", node(lit(63, 1)), {
            "user": "x", "tahoe": {"linkmotime": 1700000000.5, "linkcrtime": 1600000000.25},
        }),
    ])
    # Where Python's float repr switches to exponents, and other edges.
    floats = [0.0, -0.0, 1.0, 0.5, 0.0001, 0.00001, 1e15, 1e16, 123456789012345.6,
              1234567890123456.7, 1e100, 1.7976931348623157e308, 5e-324, 2.2250738585072014e-308,
              0.30000000000000004, 1 / 3, 2.0 ** 53, -1e-300, 100.0, 1e21, 1e22, 1e23]
    mutable("metadata-floats", 109, [
        ("floats", node(lit(70, 2)), {"f%02d" % i: f for i, f in enumerate(floats)}),
        ("float-list", node(lit(71, 2)), {"l": floats}),
    ])
    mutable("metadata-ints", 110, [
        ("ints", node(lit(72, 2)), {
            "i53": 2 ** 53 + 1, "i63": 2 ** 63 - 1, "n63": -2 ** 63, "u64": 2 ** 64 - 1,
            "big": 2 ** 64, "bigneg": -2 ** 64 - 1, "huge": 10 ** 30,
        }),
    ])
    twenty = []
    for i in range(20):
        crtime = 1700000000 + i * 1234.567891 + (i % 3) * 0.1
        cap = chk(200 + 2 * i, 56 + 1000 * i, k=1 + i % 3, n=3 + i % 8) if i % 2 == 0 \
            else lit(200 + 2 * i, i + 1)
        twenty.append(("child-%d" % i, node(cap), t(crtime, crtime + i)))
    mutable("twenty", 111, twenty)
    mutable("immutable-in-rw-slot", 112, [
        # an immutable cap given as the writecap: the node has no write cap,
        # so rwcapdata is the encryption of b"" (salt + MAC, 48 bytes)
        ("chk-as-writecap", node(chk(90, 777), None), {}),
        ("chk-both-slots", node(chk(92, 778), chk(92, 778)), {}),
        ("lit-as-writecap", node(lit(94, 12), None), {}),
        ("dir2-chk-as-writecap", node(REF_DIR2_CHK, None), {}),
    ])
    mutable("mdmf-parent", 113, [
        ("file", node(chk(96, 5000)), t(1700000123.75)),
        ("dir", node(uri.DirectoryURI(ssk(98)).to_string()), {}),
    ], dir_format="mdmf")

    # A deep-immutable directory: packed with writekey None.
    cases.append(("immutable", None, True, "chk", [
        ("chk", node(REF_CHK, deep_immutable=True), t(1700000200.0)),
        ("chk-built", node(chk(120, 31337), deep_immutable=True), {}),
        ("lit", node(REF_LIT, deep_immutable=True), {}),
        ("lit-empty", node(lit(122, 0), deep_immutable=True), {}),
        ("dir2-chk", node(REF_DIR2_CHK, deep_immutable=True), {}),
        ("dir2-lit-empty", node(REF_DIR2_LIT_EMPTY, deep_immutable=True), {}),
        ("dir2-lit", node(lit_dir, deep_immutable=True), {}),
        # unknown readcaps: in a deep-immutable context Tahoe gives them
        # "imm.", which is stripped on disk
        ("future-imm", node(None, b"x-tahoe-future-test-immutable:jkl", deep_immutable=True), {}),
        ("future-imm-prefixed", node(None, b"imm.x-tahoe-future-test-immutable:mno",
                                     deep_immutable=True), {}),
        ("future-ro-prefixed", node(None, b"ro.URI:NEWTYPE:pqr", deep_immutable=True), {}),
        ("caf\u00e9", node(lit(124, 3), deep_immutable=True), {"k": [1.5, None]}),
    ]))
    cases.append(("immutable-empty", None, True, "chk", []))
    return cases


def split_netstrings(data):
    """Every netstring of `data`, in order, as (payload, whole netstring)."""
    out = []
    pos = 0
    while pos < len(data):
        colon = data.index(b":", pos)
        digits = data[pos:colon]
        assert digits.isdigit() and (digits == b"0" or not digits.startswith(b"0")), digits
        n = int(digits)
        end = colon + 1 + n
        assert end < len(data) and data[end:end + 1] == b",", (pos, n)
        out.append((data[colon + 1:end], data[pos:end + 1]))
        pos = end + 1
    return out


def decrypt_rwcapdata(writekey, rwcapdata):
    assert len(rwcapdata) >= 48, len(rwcapdata)
    salt, crypttext, mac = rwcapdata[:16], rwcapdata[16:-32], rwcapdata[-32:]
    key = hashutil.mutable_rwcap_key_hash(salt, writekey)
    plaintext = aes.decrypt_data(aes.create_decryptor(key), crypttext)
    assert mac == hashutil.hmac(key, salt + crypttext)
    assert salt == hashutil.mutable_rwcap_salt_hash(plaintext)
    return plaintext


def dir_caps(writekey, deep_immutable, dir_format, packed):
    """Directory caps NodeMaker turns into DirectoryNodes over our data:
    [(cap, expect_writecaps)]."""
    if deep_immutable:
        # The key of a CHK cap is never used to unpack; it must just parse.
        filecap = uri.CHKFileURI(pseudo_random_bytes(7, 16), pseudo_random_bytes(8, 32), 3, 10,
                                 len(packed))
        return [(uri.ImmutableDirectoryURI(filecap), False),
                (uri.LiteralDirectoryURI(uri.LiteralFileURI(packed)), False)]
    fingerprint = pseudo_random_bytes(9, 32)
    if dir_format == "mdmf":
        rw = uri.MDMFDirectoryURI(uri.WriteableMDMFFileURI(writekey, fingerprint))
    else:
        rw = uri.DirectoryURI(uri.WriteableSSKFileURI(writekey, fingerprint))
    return [(rw, True), (rw.get_readonly(), False)]


def run_case(name, writekey, deep_immutable, dir_format, given):
    children = {}
    for given_name, child, metadata in given:
        assert given_name not in children
        children[given_name] = (child, metadata)
    packed = pack_children(children, writekey, deep_immutable=deep_immutable)
    by_nfc = {unicodedata.normalize("NFC", n): (n, c, m) for n, c, m in given}
    assert len(by_nfc) == len(given), "two names normalize alike"

    entries = split_netstrings(packed)
    assert b"".join(whole for _, whole in entries) == packed
    names = []
    out_children = []
    for entry, whole in entries:
        parts = split_netstrings(entry)
        assert len(parts) == 4, len(parts)
        (name_b, _), (ro_b, _), (rwcapdata, _), (meta_b, _) = parts
        stored_name = name_b.decode("utf-8")
        assert unicodedata.normalize("NFC", stored_name) == stored_name
        given_name, child, metadata = by_nfc[stored_name]
        names.append(stored_name)

        rw_uri = child.get_write_uri()
        ro_uri = child.get_readonly_uri()
        assert ro_b == strip_prefix_for_ro(ro_uri or b"", deep_immutable), (ro_b, ro_uri)
        if writekey is None:
            assert rwcapdata == b""
        else:
            assert len(rwcapdata) == 48 + len(rw_uri or b""), len(rwcapdata)
            assert decrypt_rwcapdata(writekey, rwcapdata) == (rw_uri or b"")
        if deep_immutable:
            assert rw_uri is None
        meta_text = meta_b.decode("utf-8")
        assert meta_text == jsonbytes.dumps(metadata) == json.dumps(metadata)
        assert json.loads(meta_text) == metadata
        assert meta_text.isascii()
        out_children.append({
            "name": stored_name,
            "given_name": given_name,
            "rw_uri": rw_uri.decode() if rw_uri is not None else None,
            "ro_uri": ro_b.decode() if ro_b else None,
            "metadata_json": meta_text,
            "entry_hex": whole.hex(),
        })
    assert names == sorted(by_nfc), names
    assert len(names) == len(given)

    # Tahoe reads it back.
    for dircap, writeable in dir_caps(writekey, deep_immutable, dir_format, packed):
        dirnode = NODEMAKER.create_from_cap(dircap.to_string())
        assert isinstance(dirnode, DirectoryNode), dirnode
        assert dirnode.is_readonly() == (not writeable)
        assert dirnode.is_mutable() == (not deep_immutable)
        if writeable:
            assert dirnode._node.get_writekey() == writekey
        unpacked = dirnode._unpack_contents(packed)
        assert sorted(unpacked) == names, (sorted(unpacked), names)
        for stored_name in names:
            _, child, metadata = by_nfc[stored_name]
            got, got_meta = unpacked[stored_name]
            assert got_meta == metadata
            assert got.get_readonly_uri() == child.get_readonly_uri(), \
                (name, stored_name, got.get_readonly_uri(), child.get_readonly_uri())
            if writeable:
                assert got.get_write_uri() == child.get_write_uri()
            else:
                assert got.get_write_uri() is None
            assert got.is_unknown() == child.is_unknown()
        if writeable or deep_immutable:
            again = _pack_normalized_children(dict(unpacked), writekey,
                                              deep_immutable=deep_immutable)
            assert again == packed, name
        if writeable:
            assert dirnode._pack_contents(unpacked) == packed

    kinds = sorted({type(c).__name__ for _, c, _ in given})
    print(f"case {name}: {len(names)} children, {len(packed)} bytes, {kinds}")
    return {
        "name": name,
        "writekey": writekey.hex() if writekey is not None else None,
        "deep_immutable": deep_immutable,
        "children": out_children,
        "packed_hex": packed.hex(),
    }


def main(out):
    cases = [run_case(*c) for c in build_cases()]
    assert len({c["name"] for c in cases}) == len(cases)
    doc = {
        "generator": "scripts/gen_tahoe_dirnodes.py",
        "tahoe_lafs": allmydata.__version__,
        "cases": cases,
    }
    with open(out, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=False)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {out} ({os.path.getsize(out)} bytes)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/data/tahoe-dirnodes.json")
