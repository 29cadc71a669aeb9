//! The parsers of everything a node reads from outside (caps from users,
//! UEBs and share headers from servers) given arbitrary and mutated input:
//! an error or a value, never a panic or an absurd allocation; a cap that
//! parses prints back exactly.

use std::sync::atomic::{AtomicU64, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, TestCaseResult, TestRunner};
use tahoe_core::format::cap::{Cap, DIR_PREFIXES, DirCap};
use tahoe_core::format::chk::layout::ShareLayout;
use tahoe_core::format::chk::plan::SharePlan;
use tahoe_core::format::chk::ueb::Ueb;
use tahoe_core::format::hashtree::parse_share_hashes;
use tahoe_core::kinds::codec::{Codec, CodecParams, MAX_SHARES};
use tahoe_core::{ErrorKind, base32};

fn codec(k: u16, n: u16) -> Box<dyn Codec> {
    Box::new(
        tahoe_codec_crs::Crs::new(
            CodecParams::new(k, n).unwrap(),
            tahoe_gf256::Kernel::detect(),
        )
        .unwrap(),
    )
}

/// A valid UEB for a file of `size` bytes in segments of `segment_size`.
fn ueb_text(size: u64, segment_size: u64, num_segments: u64, tail: u64, k: u16, n: u16) -> Vec<u8> {
    let mut out = Vec::new();
    let mut field = |key: &str, value: &[u8]| {
        out.extend_from_slice(key.as_bytes());
        out.push(b':');
        out.extend_from_slice(&tahoe_core::format::hash::netstring(value));
    };
    field("codec_name", b"crs");
    field("codec_params", format!("{segment_size}-{k}-{n}").as_bytes());
    field("crypttext_hash", &[1; 32]);
    field("crypttext_root_hash", &[2; 32]);
    field("needed_shares", k.to_string().as_bytes());
    field("num_segments", num_segments.to_string().as_bytes());
    field("segment_size", segment_size.to_string().as_bytes());
    field("share_root_hash", &[3; 32]);
    field("size", size.to_string().as_bytes());
    field("tail_codec_params", format!("{tail}-{k}-{n}").as_bytes());
    field("total_shares", n.to_string().as_bytes());
    out
}

/// What a downloader does with a UEB that matched its cap: plan the file.
/// Must end in a plan or an error.
fn plan_from(ueb: &Ueb) -> tahoe_core::Result<SharePlan> {
    ueb.codec_params()?;
    SharePlan::from_segmentation(
        ueb.segmentation(),
        codec(ueb.needed_shares, ueb.total_shares).as_ref(),
    )
}

fn mutate(mut v: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    for &(at, byte, op) in edits {
        let at = at % (v.len() + 1);
        match op % 3 {
            0 if at < v.len() => v[at] = byte,
            1 => v.insert(at, byte),
            _ if at < v.len() => {
                v.remove(at);
            }
            _ => {}
        }
    }
    v
}

#[test]
fn absurd_segment_counts_are_refused_not_planned() {
    // A cap's creator chooses its UEB: a file of 2^64-1 bytes in 3-byte
    // segments has 6.1e18 segments and hash trees beyond any memory.
    for (size, seg, k) in [
        (u64::MAX, 3, 3),
        (u64::MAX, 1, 1),
        (1 << 62, 255, 255),
        (1 << 45, 1, 1),
    ] {
        let segs = size.div_ceil(seg);
        let tail = match size % seg {
            0 => seg,
            t => t.div_ceil(u64::from(k)) * u64::from(k),
        };
        let n = k.max(3);
        match Ueb::parse(&ueb_text(size, seg, segs, tail, k, n)) {
            Ok(ueb) => {
                let e = plan_from(&ueb).expect_err("an absurd plan");
                assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
                assert!(e.to_string().contains("segments"), "{e}");
            }
            Err(e) => assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}"),
        }
    }
    // The same limit holds for uploads, so nothing is stored that could not
    // be downloaded again.
    let e = SharePlan::new(1 << 40, 1 << 10, codec(3, 10).as_ref()).expect_err("too many segments");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(SharePlan::new(1 << 40, 1 << 20, codec(3, 10).as_ref()).is_ok());
}

#[test]
fn value_lengths_at_the_top_of_the_range_are_refused() {
    for len in [u64::MAX, u64::MAX - 1, usize::MAX as u64, 1 << 40] {
        let text = format!("size:{len}:x,");
        let e = Ueb::parse(text.as_bytes()).expect_err("a value past the end");
        assert_eq!(e.kind(), ErrorKind::Corrupt);
    }
}

/// Every kind of cap the parser knows, by prefix: each file cap's
/// (`URI:CHK:`) followed by the directory cap's that wraps it
/// (`URI:DIR2-CHK:`).
fn cap_kinds() -> [&'static str; 2 * DIR_PREFIXES.len()] {
    std::array::from_fn(|i| {
        let (dir, file) = DIR_PREFIXES[i / 2];
        if i % 2 == 0 { file } else { dir }
    })
}

/// The kind of cap `text` claims to be by its prefix. Each prefix is
/// `URI:<name>:` with no `:` in the name, so at most one matches.
fn kind_of(text: &str) -> Option<usize> {
    cap_kinds().iter().position(|p| text.starts_with(p))
}

/// Valid caps of every kind, by kind: those Tahoe-LAFS printed in the
/// fixtures (test vectors, CHK and mutable shares, directories), and the
/// read, verify and directory caps the library derives from them.
fn seed_caps() -> Vec<Vec<String>> {
    let mut by_kind = vec![Vec::new(); cap_kinds().len()];
    for file in [
        "tests/data/tahoe-lafs-test-vectors.yaml",
        "tests/data/tahoe-chk-shares.json",
        "tests/data/tahoe-mutable-shares.json",
        "tests/data/tahoe-dirnodes.json",
    ] {
        let text = std::fs::read_to_string(file).unwrap();
        for (at, _) in text.match_indices("URI:") {
            let found: String = text[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '-'))
                .collect();
            if kind_of(&found).is_none() {
                continue; // URI:NEWTYPE:, a future kind
            }
            let cap: Cap = found
                .parse()
                .unwrap_or_else(|e| panic!("{file}: {found}: {e}"));
            assert_eq!(cap.to_string(), found);
            let file_cap = match cap {
                Cap::Dir(d) => d.file_cap(),
                other => other,
            };
            let mut derived = vec![file_cap.clone()];
            match &file_cap {
                Cap::Chk(c) => derived.push(Cap::ChkVerifier(c.verifier())),
                Cap::SskWrite(w) => {
                    derived.push(Cap::SskRead(w.read_cap()));
                    derived.push(Cap::SskVerifier(w.read_cap().verifier()));
                }
                Cap::SskRead(r) => derived.push(Cap::SskVerifier(r.verifier())),
                _ => {}
            }
            for c in derived {
                let dir = Cap::Dir(DirCap::from_file_cap(c.clone()).unwrap());
                for c in [c, dir] {
                    let s = c.to_string();
                    assert_eq!(s.parse::<Cap>().unwrap(), c, "{s}");
                    by_kind[kind_of(&s).unwrap()].push(s);
                }
            }
        }
    }
    for (seeds, kind) in by_kind.iter_mut().zip(cap_kinds()) {
        seeds.sort();
        seeds.dedup();
        assert!(!seeds.is_empty(), "no seed cap of kind {kind}");
    }
    by_kind
}

/// One change to a cap's text.
#[derive(Debug, Clone)]
enum Edit {
    /// A byte changed, inserted or removed anywhere, as [`mutate`] does.
    Byte(usize, u8, u8),
    /// The prefix (`URI:CHK:`) replaced by another, known or not.
    Prefix(&'static str),
    /// A field after the prefix replaced: by a number, canonical or not.
    Field(usize, String),
    /// A field after the prefix cut short by this many characters.
    Truncate(usize, usize),
    /// Characters appended to a field.
    Extend(usize, String),
    /// One character of a field replaced by a base32 character.
    Char(usize, usize, char),
    /// A field in upper case.
    Upper(usize),
    /// A field removed with its separator.
    Remove(usize),
    /// A field repeated.
    Repeat(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    use proptest::sample::select;
    let byte = prop_oneof![
        any::<u8>(),
        select(b"abcdefghijklmnopqrstuvwxyz234567:0123456789-".to_vec()),
    ];
    let number = prop_oneof![
        (0u64..=300).prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        (0u64..=300).prop_map(|n| format!("0{n}")),
        select(vec![
            "18446744073709551616",
            "",
            "-1",
            "+3",
            " 3",
            "3 ",
            "1e3"
        ])
        .prop_map(String::from),
    ];
    let prefix = prop_oneof![
        3 => select(cap_kinds().to_vec()),
        1 => select(vec![
            "",
            "URI:",
            "uri:CHK:",
            "URI:DIR2-X:",
            "URI:DIR2-DIR2:",
            "URI:DIR2-URI:CHK:",
            "URI:DIR2-SSK:",
            "URI:SSK-RW:",
            "URI:CHK-Verifier-RO:",
            "URI:LIT::",
            "URI:NEWTYPE:",
        ]),
    ];
    let base32_char = select(b"abcdefghijklmnopqrstuvwxyz234567".to_vec()).prop_map(char::from);
    prop_oneof![
        4 => (any::<usize>(), byte, any::<u8>()).prop_map(|(at, b, op)| Edit::Byte(at, b, op)),
        2 => prefix.prop_map(Edit::Prefix),
        2 => (any::<usize>(), number).prop_map(|(i, s)| Edit::Field(i, s)),
        1 => (any::<usize>(), 1usize..8).prop_map(|(i, cut)| Edit::Truncate(i, cut)),
        1 => (any::<usize>(), "[a-z2-7]{1,8}").prop_map(|(i, s)| Edit::Extend(i, s)),
        6 => (any::<usize>(), any::<usize>(), base32_char).prop_map(|(i, at, c)| Edit::Char(i, at, c)),
        1 => any::<usize>().prop_map(Edit::Upper),
        1 => any::<usize>().prop_map(Edit::Remove),
        1 => any::<usize>().prop_map(Edit::Repeat),
    ]
}

/// `text` with `edit` made. Field edits address the `:`-separated fields
/// after the prefix (everything up to the second `:`).
fn apply(text: String, edit: &Edit) -> String {
    if let Edit::Byte(at, byte, op) = *edit {
        let bytes = mutate(text.into_bytes(), &[(at, byte, op)]);
        return String::from_utf8_lossy(&bytes).into_owned();
    }
    let split = text
        .match_indices(':')
        .nth(1)
        .map_or(text.len(), |(i, _)| i + 1);
    let (prefix, rest) = text.split_at(split);
    let mut fields: Vec<String> = rest.split(':').map(String::from).collect();
    let n = fields.len();
    match edit {
        Edit::Byte(..) => unreachable!("handled above"),
        Edit::Prefix(p) => return format!("{p}{rest}"),
        Edit::Field(i, s) => fields[i % n].clone_from(s),
        Edit::Truncate(i, cut) => {
            let f = &mut fields[i % n];
            *f = f
                .chars()
                .take(f.chars().count().saturating_sub(*cut))
                .collect();
        }
        Edit::Extend(i, s) => fields[i % n].push_str(s),
        Edit::Char(i, at, c) => {
            let f = &mut fields[i % n];
            let mut chars: Vec<char> = f.chars().collect();
            if !chars.is_empty() {
                let at = at % chars.len();
                chars[at] = *c;
            }
            *f = chars.into_iter().collect();
        }
        Edit::Upper(i) => fields[i % n] = fields[i % n].to_uppercase(),
        Edit::Remove(i) => {
            fields.remove(i % n);
        }
        Edit::Repeat(i) => {
            let f = fields[i % n].clone();
            fields.insert(i % n, f);
        }
    }
    format!("{prefix}{}", fields.join(":"))
}

/// How many cases reached each branch of [`check_cap`].
#[derive(Default)]
struct CapCounts {
    /// Parsed, printed back exactly and parsed again to the same cap.
    parsed: AtomicU64,
    /// Refused with `InvalidInput`.
    refused: AtomicU64,
    /// Parsed, by kind (see [`cap_kinds`]).
    parsed_by_kind: [AtomicU64; 2 * DIR_PREFIXES.len()],
}

impl CapCounts {
    fn get(n: &AtomicU64) -> u64 {
        n.load(Ordering::Relaxed)
    }

    /// Print the counts and check that both branches were well exercised
    /// and every kind of cap was seen to parse.
    fn report(&self, test: &str) {
        let (parsed, refused) = (Self::get(&self.parsed), Self::get(&self.refused));
        let total = parsed + refused;
        let by_kind: Vec<String> = cap_kinds()
            .iter()
            .zip(&self.parsed_by_kind)
            .map(|(kind, n)| format!("{kind} {}", Self::get(n)))
            .collect();
        eprintln!(
            "{test}: {total} cases: {parsed} parsed and round-tripped, {refused} refused; \
             parsed by kind: {}",
            by_kind.join(", ")
        );
        assert!(
            parsed * 10 >= total,
            "{test}: only {parsed} of {total} cases parsed"
        );
        assert!(
            refused * 10 >= total,
            "{test}: only {refused} of {total} cases refused"
        );
        for (kind, n) in cap_kinds().iter().zip(&self.parsed_by_kind) {
            assert!(Self::get(n) > 0, "{test}: no {kind} cap parsed");
        }
    }
}

/// The property of every cap text: an `InvalidInput` error or a cap that
/// prints back exactly, parses again to itself, and whose read-only
/// diminution also round-trips. Never a panic. Returns whether it parsed.
fn check_cap(text: &str, counts: &CapCounts) -> Result<bool, TestCaseError> {
    match text.parse::<Cap>() {
        Ok(cap) => {
            prop_assert_eq!(&cap.to_string(), text, "printed back differently");
            let again: Cap = cap.to_string().parse().unwrap();
            prop_assert_eq!(&again, &cap, "{:?} parsed again differently", text);
            let ro = cap.read_only();
            let ro_again: Cap = ro.to_string().parse().unwrap();
            prop_assert_eq!(ro_again, ro, "read-only cap of {:?}", text);
            let kind = kind_of(text);
            prop_assert!(kind.is_some(), "{:?} parsed but has no known prefix", text);
            counts.parsed.fetch_add(1, Ordering::Relaxed);
            counts.parsed_by_kind[kind.unwrap()].fetch_add(1, Ordering::Relaxed);
            Ok(true)
        }
        Err(e) => {
            prop_assert_eq!(e.kind(), ErrorKind::InvalidInput, "{:?}: {}", text, e);
            counts.refused.fetch_add(1, Ordering::Relaxed);
            Ok(false)
        }
    }
}

/// `cases` cases, and failures kept in hostile_input.proptest-regressions
/// beside this file (proptest's default would be a file under
/// tests/proptest-regressions/, beside the crate root's directory).
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

/// Run `test` on `cases` values of `strategy` with proptest's runner (and
/// the regressions file of the `proptest!` tests here), panicking with the
/// minimal failing input. Unlike `proptest!`, lets the caller look at
/// counters afterwards.
fn run_cases<S: Strategy>(cases: u32, strategy: &S, test: impl Fn(S::Value) -> TestCaseResult) {
    let config = ProptestConfig {
        source_file: Some(file!()),
        ..config(cases)
    };
    if let Err(e) = TestRunner::new(config).run(strategy, test) {
        panic!("{e}");
    }
}

/// Caps written out from random fields, of every kind, and arbitrary text:
/// a field-built cap parses exactly when its fields are valid
/// (`1 <= k <= n <= 256`; keys and hashes of any value), and whatever
/// parses prints back exactly.
#[test]
fn caps_parse_strictly_or_not_at_all() {
    let kinds = cap_kinds();
    let small = || prop_oneof![3 => 0u64..=260, 1 => any::<u64>()];
    let built = (
        0..kinds.len(),
        any::<[u8; 16]>(),
        any::<[u8; 32]>(),
        small(),
        small(),
        prop_oneof![0u64..1_000_000, any::<u64>()],
        proptest::collection::vec(any::<u8>(), 0..=60),
    )
        .prop_map(move |(kind, key, hash, k, n, size, data)| {
            let prefix = kinds[kind];
            let (key, hash) = (base32::encode(&key), base32::encode(&hash));
            match DIR_PREFIXES[kind / 2].1 {
                "URI:LIT:" => (format!("{prefix}{}", base32::encode(&data)), Some(true)),
                "URI:CHK:" | "URI:CHK-Verifier:" => (
                    format!("{prefix}{key}:{hash}:{k}:{n}:{size}"),
                    Some(1 <= k && k <= n && n <= u64::from(MAX_SHARES)),
                ),
                _ => (format!("{prefix}{key}:{hash}"), Some(true)),
            }
        });
    let strategy = prop_oneof![
        3 => built,
        1 => "\\PC{0,120}".prop_map(|text| (text, None)),
    ];
    let counts = CapCounts::default();
    run_cases(4000, &strategy, |(text, valid)| {
        let parsed = check_cap(&text, &counts)?;
        if let Some(valid) = valid {
            prop_assert_eq!(parsed, valid, "{:?}", text);
        }
        Ok(())
    });
    counts.report("caps_parse_strictly_or_not_at_all");
}

/// Valid caps of every kind (each seed itself checked in [`seed_caps`]),
/// mutated by one or two edits: bytes changed, inserted or removed;
/// fields replaced by numbers (canonical or not), cut short, lengthened,
/// changed, upper-cased, removed or repeated; prefixes swapped for other
/// kinds' or unknown ones. Whatever parses prints back exactly.
#[test]
fn mutated_caps_parse_strictly_or_not_at_all() {
    let seeds = seed_caps();
    eprintln!(
        "mutated_caps_parse_strictly_or_not_at_all: seeds by kind: {}",
        cap_kinds()
            .iter()
            .zip(&seeds)
            .map(|(kind, s)| format!("{kind} {}", s.len()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let strategy = (
        0..seeds.len(),
        any::<proptest::sample::Index>(),
        proptest::collection::vec(edit(), 1..3),
    );
    let counts = CapCounts::default();
    // Parsed although changed from their seed: the edits that keep a cap
    // valid (another key or hash, another valid k, n or size, another
    // kind's prefix with the same fields).
    let changed = AtomicU64::new(0);
    run_cases(4000, &strategy, |(kind, seed, edits)| {
        let seed = seed.get(&seeds[kind]);
        let text = edits.iter().fold(seed.clone(), apply);
        if check_cap(&text, &counts)? && &text != seed {
            changed.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    });
    counts.report("mutated_caps_parse_strictly_or_not_at_all");
    let changed = changed.into_inner();
    let parsed = CapCounts::get(&counts.parsed);
    eprintln!(
        "mutated_caps_parse_strictly_or_not_at_all: {changed} of the {parsed} parsed differ from their seed"
    );
    assert!(
        changed * 2 >= parsed,
        "only {changed} of {parsed} parsed caps differ from their seed"
    );
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn base32_decodes_canonically_or_not_at_all(text in "[a-z2-7=A-Z0-9]{0,40}") {
        if let Ok(bytes) = base32::decode(&text) {
            prop_assert_eq!(base32::encode(&bytes), text);
        }
    }

    #[test]
    fn uebs_parse_to_something_plannable_or_fail(
        size_bits in 1u32..64,
        size_seed in any::<u64>(),
        seg_pow in 0u32..40,
        k in 1u16..=16,
        extra in 0u16..8,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 0..4),
    ) {
        // Sizes spread over every magnitude, so that some files plan.
        let size = (size_seed >> (64 - size_bits)).max(1);
        let seg = (1u64 << seg_pow).div_ceil(u64::from(k)) * u64::from(k);
        let n = k + extra;
        let tail = match size % seg {
            0 => seg,
            t => t.div_ceil(u64::from(k)) * u64::from(k),
        };
        let text = mutate(ueb_text(size, seg, size.div_ceil(seg), tail, k, n), &edits);
        if let Ok(ueb) = Ueb::parse(&text)
            && let Ok(plan) = plan_from(&ueb) {
                // A plan's numbers are usable as they are.
                let last = plan.seg.num_segments - 1;
                prop_assert!(plan.block_offset(last) + plan.block_len(last) <= plan.layout.plaintext_hash_tree);
            }
    }

    #[test]
    fn arbitrary_bytes_are_not_a_ueb(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = Ueb::parse(&bytes);
    }
}

/// Headers close to real ones (a real layout with a few fields or bytes
/// changed, and share sizes around the real one), so that most inputs get
/// past the first checks: whatever parses lies within the share, and
/// whatever passes `check` has exactly the sections the file implies.
#[test]
fn share_headers_parse_within_the_share_or_fail() {
    let mut rng = tahoe_core::testing::pseudo_random_bytes(99, 5_000 * 32).into_iter();
    let mut next = move || u64::from_le_bytes(std::array::from_fn(|_| rng.next().unwrap_or(0)));
    let (mut parsed, mut checked) = (0, 0);
    for _ in 0..5_000 {
        let num_segments = 1 + next() % 300;
        let block_size = 1 + next() % 100_000;
        let data_size = block_size * num_segments - next() % block_size;
        let hashes = next() % 10;
        let layout = ShareLayout::for_upload(block_size, data_size, num_segments, hashes);
        let real_size = layout.share_size(300);
        let mut bytes = layout.header();
        for _ in 0..next() % 3 {
            let at = (next() as usize) % bytes.len();
            bytes[at] ^= 1 << (next() % 8);
        }
        let share_size = match next() % 3 {
            0 => real_size,
            1 => real_size.saturating_sub(next() % 64),
            _ => next(),
        };
        let Ok(l) = ShareLayout::parse(&bytes, share_size) else {
            continue;
        };
        parsed += 1;
        assert!(l.uri_extension + l.field_size() <= share_size);
        assert!(l.data <= l.plaintext_hash_tree && l.share_hashes <= l.uri_extension);
        if l.check(data_size, num_segments).is_ok() {
            checked += 1;
            let tree =
                (tahoe_core::format::hashtree::node_count(num_segments as usize) * 32) as u64;
            assert_eq!(l.plaintext_hash_tree, l.data + data_size);
            assert_eq!(l.block_hashes, l.plaintext_hash_tree + 2 * tree);
            assert_eq!(l.share_hashes, l.block_hashes + tree);
        }
        let _ = parse_share_hashes(&bytes);
    }
    // The inputs must reach the checks they test.
    assert!(parsed > 1_500, "only {parsed} of 5000 headers parsed");
    assert!(
        checked > 1_000,
        "only {checked} of 5000 headers passed check"
    );
}

/// A directory Tahoe-LAFS packed, for mutating.
fn tahoe_dirnode() -> (Vec<u8>, [u8; 16]) {
    let text = std::fs::read_to_string("tests/data/tahoe-dirnodes.json").unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let case = doc["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "subdirs")
        .unwrap();
    let hex = |s: &str| -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    };
    let key = hex(case["writekey"].as_str().unwrap());
    (
        hex(case["packed_hex"].as_str().unwrap()),
        key.try_into().unwrap(),
    )
}

proptest! {
    #![proptest_config(config(400))]

    /// Mutated directories: an error, or entries that can each be asked
    /// for their caps, that pack and parse back to the same names.
    #[test]
    fn mutated_directories_parse_or_fail_cleanly(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..8),
        mutable in any::<bool>(),
    ) {
        use tahoe_core::format::dirnode::{Directory, WriteKey};
        let (packed, key) = tahoe_dirnode();
        let data = mutate(packed, &edits);
        let key = mutable.then(|| WriteKey {
            key,
            cipher: {
                let ctx = tahoe_core::plugin::registry::PluginContext::empty(
                    tahoe_core::plugin::registry::PluginKind::Cipher,
                    "aes-ctr",
                    std::path::Path::new("."),
                );
                tahoe::builtin_registry().unwrap().cipher("aes-ctr", &ctx).unwrap()
            },
        });
        if let Ok(dir) = Directory::parse(bytes::Bytes::from(data), mutable, key.clone()) {
            for (name, entry) in dir.entries() {
                let _ = dir.node_of(name, entry);
            }
            let again = Directory::parse(bytes::Bytes::from(dir.pack().unwrap()), mutable, key).unwrap();
            prop_assert!(again.skipped().is_empty());
            prop_assert!(again.entries().map(|(n, _)| n).eq(dir.entries().map(|(n, _)| n)));
        }
    }
}
