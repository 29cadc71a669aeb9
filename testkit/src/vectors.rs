//! Tahoe-LAFS's test vectors' keys, and small helpers for formats.

use std::sync::Arc;

use tahoe_core::client::mutable::rsa::SigningKey;
use tahoe_core::format::cap::{Cap, ChkCap};
use tahoe_core::plugin::registry::{PluginContext, PluginKind};

/// The `i`-th RSA key of Tahoe's test vectors (tests need many keys, and
/// generating them is slow).
pub fn test_key(i: usize) -> SigningKey {
    let text = include_str!("../../tests/data/tahoe-lafs-test-vectors.yaml");
    let pem = vector_keys(text)
        .into_iter()
        .nth(i)
        .expect("the vector file has 240 keys");
    SigningKey::from_pem(&pem).unwrap()
}

/// Every PEM private key of the vector file, in order (YAML folds each
/// line of the quoted PEM with a blank line; this undoes that).
pub fn vector_keys(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<Vec<String>> = None;
    for line in text.lines() {
        let t = line
            .trim()
            .trim_start_matches("key: '")
            .trim_end_matches('\'');
        if t.starts_with("-----BEGIN") {
            cur = Some(vec![t.to_string()]);
        } else if let Some(lines) = cur.as_mut() {
            if !t.is_empty() {
                lines.push(t.to_string());
            }
            if t.starts_with("-----END") {
                out.push(lines.join("\n") + "\n");
                cur = None;
            }
        }
    }
    out
}

/// The CHK cap `cap` is; panics on another kind.
pub fn chk(cap: &Cap) -> &ChkCap {
    match cap {
        Cap::Chk(c) => c,
        other => panic!("expected a CHK cap, got {other:?}"),
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes from hex.
pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The built-in AES-128-CTR cipher.
pub fn aes_ctr() -> Arc<dyn tahoe_core::kinds::cipher::Cipher> {
    let ctx = PluginContext::empty(PluginKind::Cipher, "aes-ctr", std::path::Path::new("."));
    tahoe::builtin_registry()
        .unwrap()
        .cipher("aes-ctr", &ctx)
        .unwrap()
}
