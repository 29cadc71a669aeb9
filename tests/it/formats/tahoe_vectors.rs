//! Conformance with Tahoe-LAFS: reproduce every CHK cap of its published
//! test vectors (tests/data/tahoe-lafs-test-vectors.yaml) with the `crs`
//! codec, every SSK and MDMF cap from its key, and a few of each through
//! the `tahoe debug chk-cap` and `tahoe debug mutable-cap` commands.

use base64::Engine as _;

struct Case {
    convergence: Vec<u8>,
    seed: Vec<u8>,
    length: usize,
    k: u16,
    n: u16,
    segment_size: u64,
    expected: String,
}

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim().trim_matches('\''))
        .expect("base64 in the vector file")
}

/// The vector file is YAML of a fixed shape; this reads the fields of each
/// CHK case without a YAML dependency. The count check below catches any
/// case it would miss.
fn chk_cases() -> Vec<Case> {
    let text = include_str!("../../data/tahoe-lafs-test-vectors.yaml");
    let mut cases = Vec::new();
    for entry in text.split("\n- ").skip(1) {
        if !entry.contains("kind: chk") {
            continue;
        }
        let field = |name: &str| -> &str {
            entry
                .lines()
                .find_map(|l| l.trim_start().strip_prefix(&format!("{name}: ")))
                .unwrap_or_else(|| panic!("case lacks {name}: {entry}"))
                .trim()
        };
        let first = entry.lines().next().unwrap_or("");
        let convergence = first
            .strip_prefix("convergence: ")
            .unwrap_or_else(|| field("convergence"));
        cases.push(Case {
            convergence: b64(convergence),
            seed: b64(field("seed")),
            length: field("length").parse().unwrap(),
            k: field("required").parse().unwrap(),
            n: field("total").parse().unwrap(),
            segment_size: field("segmentSize").parse().unwrap(),
            expected: field("expected").to_string(),
        });
    }
    cases
}

fn sample(seed: &[u8], length: usize) -> Vec<u8> {
    seed.iter().copied().cycle().take(length).collect()
}

#[test]
fn every_chk_vector_reproduces() {
    let cases = chk_cases();
    assert_eq!(cases.len(), 120, "the vector file has 120 CHK cases");
    let rt = tokio::runtime::Builder::new_multi_thread().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let path = dir.path().join(format!("case-{i}"));
        std::fs::write(&path, sample(&c.seed, c.length)).unwrap();
        let cap = rt
            .block_on(tahoe::cli::chk_cap(
                &path,
                c.k,
                c.n,
                c.segment_size,
                c.convergence.clone(),
                "crs",
            ))
            .unwrap();
        if cap.to_string() != c.expected {
            failures.push(format!(
                "case {i}: {} bytes, {}-of-{}: got {cap}, want {}",
                c.length, c.k, c.n, c.expected
            ));
        }
        std::fs::remove_file(&path).unwrap();
    }
    assert!(
        failures.is_empty(),
        "{} of 120 CHK vectors differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_command_prints_vector_caps() {
    let cases = chk_cases();
    // A small case and a multi-segment one, through the real binary,
    // one of them on standard input.
    let small = cases.iter().find(|c| c.length < 1000).unwrap();
    let multi = cases
        .iter()
        .find(|c| c.length > 300_000 && c.k > 1)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (c, stdin) in [(small, false), (multi, true)] {
        let path = dir.path().join("sample");
        std::fs::write(&path, sample(&c.seed, c.length)).unwrap();
        let secret = base64::engine::general_purpose::STANDARD.encode(&c.convergence);
        let args = [
            "debug".to_string(),
            "chk-cap".into(),
            if stdin {
                "-".into()
            } else {
                path.display().to_string()
            },
            "--k".into(),
            c.k.to_string(),
            "--n".into(),
            c.n.to_string(),
            "--segment-size".into(),
            c.segment_size.to_string(),
            "--convergence".into(),
            secret,
        ];
        let mut cmd = std::process::Command::new(crate::EXE);
        cmd.args(&args);
        if stdin {
            cmd.stdin(std::fs::File::open(&path).unwrap());
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), c.expected);
    }
}

#[test]
fn small_files_get_lit_caps() {
    let out = std::process::Command::new(crate::EXE)
        .args([
            "debug",
            "chk-cap",
            "-",
            "--convergence",
            "YWFhYWFhYWFhYWFhYWFhYQ==",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "URI:LIT:");
}

/// (format, key PEM, expected write cap) of every SSK case, in order.
fn ssk_cases() -> Vec<(String, String, String)> {
    let text = include_str!("../../data/tahoe-lafs-test-vectors.yaml");
    let mut out = Vec::new();
    for entry in text.split("\n- ").skip(1) {
        if !entry.contains("kind: ssk") {
            continue;
        }
        let field = |name: &str| -> String {
            entry
                .lines()
                .find_map(|l| l.trim_start().strip_prefix(&format!("{name}: ")))
                .unwrap_or_else(|| panic!("case lacks {name}: {entry}"))
                .trim()
                .to_string()
        };
        let keys = testkit::vectors::vector_keys(entry);
        assert_eq!(keys.len(), 1, "one key per case");
        out.push((field("format"), keys[0].clone(), field("expected")));
    }
    out
}

#[test]
fn every_ssk_and_mdmf_vector_reproduces() {
    use tahoe_core::client::mutable::rsa::SigningKey;
    use tahoe_core::format::ssk::MutableFormat;
    let cases = ssk_cases();
    assert_eq!(cases.len(), 240, "the vector file has 240 SSK/MDMF cases");
    assert_eq!(cases.iter().filter(|c| c.0 == "mdmf").count(), 120);
    let mut failures = Vec::new();
    for (i, (format, pem, expected)) in cases.iter().enumerate() {
        let key = SigningKey::from_pem(pem).unwrap();
        let write = key.write_cap(MutableFormat::parse(format).unwrap());
        if write.to_string() != *expected {
            failures.push(format!("case {i} ({format}): got {write}, want {expected}"));
        }
        // Exact round trip, and diminishing keeps the fingerprint.
        let parsed: tahoe_core::format::cap::Cap = expected.parse().unwrap();
        assert_eq!(parsed.to_string(), *expected);
        let read = write.read_cap();
        assert_eq!(read.fingerprint, write.fingerprint);
        assert_eq!(read.verifier().storage_index, write.storage_index());
    }
    assert!(
        failures.is_empty(),
        "{} of 240 SSK/MDMF vectors differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_mutable_cap_command_prints_vector_caps() {
    let cases = ssk_cases();
    let dir = tempfile::tempdir().unwrap();
    let sdmf = cases.iter().find(|c| c.0 == "sdmf").unwrap();
    let mdmf = cases.iter().find(|c| c.0 == "mdmf").unwrap();
    for (format, pem, expected) in [sdmf, mdmf] {
        let path = dir.path().join("key.pem");
        std::fs::write(&path, pem).unwrap();
        let out = std::process::Command::new(crate::EXE)
            .args(["debug", "mutable-cap", "--key"])
            .arg(&path)
            .args(["--format", format])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0], expected);
        let prefixes = match format.as_str() {
            "sdmf" => ["URI:SSK:", "URI:SSK-RO:", "URI:SSK-Verifier:"],
            _ => ["URI:MDMF:", "URI:MDMF-RO:", "URI:MDMF-Verifier:"],
        };
        for (line, prefix) in lines.iter().zip(prefixes) {
            assert!(line.starts_with(prefix), "{line}");
        }
        // The fingerprint is the same on all three.
        let fp = |l: &str| l.rsplit(':').next().unwrap().to_string();
        assert_eq!(fp(lines[0]), fp(lines[1]));
        assert_eq!(fp(lines[1]), fp(lines[2]));
    }
    // A file that is not a key is refused with a message naming it.
    let bad = dir.path().join("not-a-key.pem");
    std::fs::write(&bad, "hello").unwrap();
    let out = std::process::Command::new(crate::EXE)
        .args(["debug", "mutable-cap", "--key"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not-a-key.pem"));
}
