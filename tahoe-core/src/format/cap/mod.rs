//! Capability strings: immutable files (`URI:CHK:`, `URI:CHK-Verifier:`,
//! `URI:LIT:`) and mutable files (`URI:SSK:`, `URI:SSK-RO:`,
//! `URI:SSK-Verifier:` for SDMF; `URI:MDMF:`, `URI:MDMF-RO:`,
//! `URI:MDMF-Verifier:` for MDMF) and directories, which are files holding
//! packed entries ([`crate::format::dirnode`]): a directory cap is the cap of that
//! file under a directory prefix (`URI:DIR2:` for `URI:SSK:`, and so on,
//! see [`DIR_PREFIXES`]).
//!
//! A cap is the whole authority over a file, so it is parsed strictly: the
//! exact number of fields, canonical base32 of the exact length, canonical
//! decimal numbers, `1 <= k <= n <= 256`. Anything else is `InvalidInput`
//! with the reason, and every accepted string prints back identically.
//!
//! ```text
//! URI:CHK:<key>:<UEB hash>:<k>:<n>:<size>          read cap
//! URI:CHK-Verifier:<storage index>:<UEB hash>:<k>:<n>:<size>
//! URI:LIT:<data>                                    files of 55 bytes or less
//! URI:SSK:<write key>:<fingerprint>                  SDMF write cap (MDMF: URI:MDMF:)
//! URI:SSK-RO:<read key>:<fingerprint>                SDMF read cap (URI:MDMF-RO:)
//! URI:SSK-Verifier:<storage index>:<fingerprint>     (URI:MDMF-Verifier:)
//! ```
//!
//! Authority diminishes write → read → verify, each derived from the one
//! before by a one-way hash ([`crate::format::ssk::keys`]). Tahoe-LAFS accepts
//! (and drops) extra `:`-separated fields after an MDMF cap; they carry
//! nothing and would break exact round trips, so they are refused here.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

mod chk;
mod dir;
mod ssk;

pub use chk::{ChkCap, ChkVerifierCap, LIT_THRESHOLD, LitCap};
pub use dir::{DIR_PREFIXES, DirCap, is_known_cap_kind};
pub use ssk::{SskReadCap, SskVerifierCap, SskWriteCap};

/// Any cap.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Cap {
    /// `URI:CHK:`
    Chk(ChkCap),
    /// `URI:CHK-Verifier:`
    ChkVerifier(ChkVerifierCap),
    /// `URI:LIT:`
    Lit(LitCap),
    /// `URI:SSK:` or `URI:MDMF:`
    SskWrite(SskWriteCap),
    /// `URI:SSK-RO:` or `URI:MDMF-RO:`
    SskRead(SskReadCap),
    /// `URI:SSK-Verifier:` or `URI:MDMF-Verifier:`
    SskVerifier(SskVerifierCap),
    /// `URI:DIR2...:`, a directory.
    Dir(DirCap),
}

impl Cap {
    /// The most a holder of this cap may do with a mutable file's contents:
    /// its read cap (`None` for immutable caps and verify caps).
    pub fn mutable_read_cap(&self) -> Option<SskReadCap> {
        match self {
            Cap::SskWrite(w) => Some(w.read_cap()),
            Cap::SskRead(r) => Some(r.clone()),
            _ => None,
        }
    }

    /// The read-only cap this cap diminishes to: itself when it is not a
    /// write cap.
    pub fn read_only(&self) -> Cap {
        match self {
            Cap::SskWrite(w) => Cap::SskRead(w.read_cap()),
            Cap::Dir(DirCap::Write(w)) => Cap::Dir(DirCap::Read(w.read_cap())),
            other => other.clone(),
        }
    }

    /// The write cap of the mutable file this cap names (a directory's:
    /// the file holding its entries), when it is one.
    pub fn mutable_write_cap(&self) -> Option<SskWriteCap> {
        match self {
            Cap::SskWrite(w) => Some(w.clone()),
            Cap::Dir(DirCap::Write(w)) => Some(w.clone()),
            _ => None,
        }
    }

    /// Whether this cap can change what it names.
    pub fn is_write(&self) -> bool {
        matches!(self, Cap::SskWrite(_) | Cap::Dir(DirCap::Write(_)))
    }

    /// Whether what it names can change (by anyone).
    pub fn is_mutable(&self) -> bool {
        match self {
            Cap::SskWrite(_) | Cap::SskRead(_) | Cap::SskVerifier(_) => true,
            Cap::Dir(d) => d.is_mutable(),
            Cap::Chk(_) | Cap::ChkVerifier(_) | Cap::Lit(_) => false,
        }
    }

    /// The kind with its article, for messages: `an SDMF write`, `a
    /// directory (...)`.
    pub fn a_kind(&self) -> String {
        let kind = self.kind_name();
        let an = kind.starts_with(['a', 'e', 'i', 'o', 'u'])
            || kind.starts_with("SDMF")
            || kind.starts_with("MDMF");
        format!("{} {kind}", if an { "an" } else { "a" })
    }

    /// The kind of cap, for messages: `CHK read`, `SDMF write`, ...
    pub fn kind_name(&self) -> String {
        match self {
            Cap::Dir(d) => format!("directory ({})", d.file_cap().kind_name()),
            Cap::Chk(_) => "immutable (CHK) read".into(),
            Cap::ChkVerifier(_) => "immutable (CHK) verify".into(),
            Cap::Lit(_) => "literal (LIT)".into(),
            Cap::SskWrite(c) => format!("{} write", c.format.name().to_uppercase()),
            Cap::SskRead(c) => format!("{} read", c.format.name().to_uppercase()),
            Cap::SskVerifier(c) => format!("{} verify", c.format.name().to_uppercase()),
        }
    }
}

impl FromStr for Cap {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        if let Some(parsed) = chk::parse(s)
            .or_else(|| ssk::parse(s))
            .or_else(|| dir::parse(s))
        {
            return parsed;
        }
        let shown: String = s.chars().take(16).collect();
        Err(Error::invalid_input(format!(
            "not a cap (expected URI:CHK:, URI:CHK-Verifier:, URI:LIT:, URI:SSK:, URI:SSK-RO:, \
             URI:SSK-Verifier:, URI:MDMF:, URI:MDMF-RO:, URI:MDMF-Verifier: or a directory's \
             URI:DIR2...:): {shown:?}..."
        )))
    }
}

impl fmt::Display for Cap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cap::Chk(c) => c.fmt(f),
            Cap::ChkVerifier(c) => c.fmt(f),
            Cap::Lit(c) => c.fmt(f),
            Cap::SskWrite(c) => c.fmt(f),
            Cap::SskRead(c) => c.fmt(f),
            Cap::SskVerifier(c) => c.fmt(f),
            Cap::Dir(c) => fmt::Display::fmt(c, f),
        }
    }
}

/// Caps are secrets: debug output shows only the kind and the size.
impl fmt::Debug for Cap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cap::Chk(c) => c.fmt(f),
            Cap::ChkVerifier(c) => write!(f, "{c}"),
            Cap::Lit(c) => c.fmt(f),
            Cap::SskWrite(c) => c.fmt(f),
            Cap::SskRead(c) => c.fmt(f),
            Cap::SskVerifier(c) => c.fmt(f),
            Cap::Dir(c) => c.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base32;

    const CHK: &str = "URI:CHK:yzxcoagbetwet65ltjpbqyli3m:6b7inuiha2xdtgqzd55i6aeggutnxzr6qfwpv2ep5xlln6pgef7a:1:1:56";

    #[test]
    fn round_trips() {
        for s in [CHK, "URI:LIT:", "URI:LIT:mzxw6ytboi"] {
            let c: Cap = s.parse().unwrap();
            assert_eq!(c.to_string(), s);
        }
        let Cap::Chk(chk) = CHK.parse().unwrap() else {
            panic!()
        };
        let v = Cap::ChkVerifier(chk.verifier());
        let text = v.to_string();
        assert!(text.starts_with("URI:CHK-Verifier:"));
        assert_eq!(text.parse::<Cap>().unwrap(), v);
        assert!(
            !format!("{chk:?}").contains("yzxc"),
            "debug output leaks the key"
        );
    }

    #[test]
    fn mutable_caps_round_trip_and_diminish() {
        let w = "URI:SSK:fs6ul2fju2fvb2cfx7gt6ngycm:hncpinwszbggrurbvuaaexnftk3j5wfr7473pj2g734mo2isxlbq";
        for prefix in [
            "URI:SSK:",
            "URI:SSK-RO:",
            "URI:SSK-Verifier:",
            "URI:MDMF:",
            "URI:MDMF-RO:",
            "URI:MDMF-Verifier:",
        ] {
            let s = format!("{prefix}{}", &w["URI:SSK:".len()..]);
            let c: Cap = s.parse().unwrap();
            assert_eq!(c.to_string(), s);
        }
        let Cap::SskWrite(wc) = w.parse().unwrap() else {
            panic!()
        };
        let r = wc.read_cap();
        let v = r.verifier();
        assert_eq!(r.fingerprint, wc.fingerprint);
        assert_eq!(v.storage_index, wc.storage_index());
        assert_ne!(r.read_key, wc.write_key);
        assert!(r.to_string().starts_with("URI:SSK-RO:"));
        assert!(v.to_string().starts_with("URI:SSK-Verifier:"));
        assert!(!format!("{wc:?}").contains("fs6u"));
        assert!(!format!("{r:?}").contains(&base32::encode(&r.read_key)));
    }

    /// Caps the real Tahoe-LAFS 1.20 printed (shared/reference/tahoe-1.20):
    /// a root directory's three caps, an immutable and a literal directory.
    #[test]
    fn directory_caps_round_trip_and_diminish() {
        let rw = "URI:DIR2:i7ryyroiagwqag2wgpkkuk3xxy:ujf2wyw5k3po3zupayfnm3fqlrftplet6ktd3e4ks6umqqyklwdq";
        let ro = "URI:DIR2-RO:czytd764lgjmb2yx3ldvqc4jre:ujf2wyw5k3po3zupayfnm3fqlrftplet6ktd3e4ks6umqqyklwdq";
        let verify = "URI:DIR2-Verifier:xiecght4v5th232fp5nvdxdyz4:ujf2wyw5k3po3zupayfnm3fqlrftplet6ktd3e4ks6umqqyklwdq";
        let chk = "URI:DIR2-CHK:2rbt62oh54iqryivubnkopr27u:abultw2hfmanpccnm3fp3hccgflcuuif777b6e47d3sywieywp5q:3:10:133";
        for s in [
            rw,
            ro,
            verify,
            chk,
            "URI:DIR2-LIT:",
            "URI:DIR2-LIT:mzxw6ytboi",
        ] {
            let c: Cap = s.parse().unwrap();
            assert!(matches!(c, Cap::Dir(_)), "{s}");
            assert_eq!(c.to_string(), s);
        }
        let c: Cap = rw.parse().unwrap();
        assert!(c.is_write() && c.is_mutable());
        assert_eq!(c.read_only().to_string(), ro);
        let Cap::Dir(DirCap::Read(r)) = c.read_only() else {
            panic!()
        };
        assert_eq!(Cap::Dir(DirCap::Verify(r.verifier())).to_string(), verify);
        let imm: Cap = chk.parse().unwrap();
        assert!(!imm.is_write() && !imm.is_mutable());
        assert_eq!(imm.read_only(), imm);
        for s in [
            "URI:DIR2-MDMF:w334plf5hafvt5kq3zqi7cwcwa:4jwr3o3r63umac3ifea6j4b5lz4exmdq2q62vzi6kyf6llok6ena",
            "URI:DIR2-MDMF-RO:w334plf5hafvt5kq3zqi7cwcwa:4jwr3o3r63umac3ifea6j4b5lz4exmdq2q62vzi6kyf6llok6ena",
            "URI:DIR2-MDMF-Verifier:w334plf5hafvt5kq3zqi7cwcwa:4jwr3o3r63umac3ifea6j4b5lz4exmdq2q62vzi6kyf6llok6ena",
        ] {
            assert_eq!(s.parse::<Cap>().unwrap().to_string(), s);
        }
        assert!(
            !format!("{c:?}").contains("i7ryy"),
            "debug output leaks the key"
        );
        for bad in [
            "URI:DIR2:i7ryyroiagwqag2wgpkkuk3xxy",
            "URI:DIR2-CHK:2rbt62oh54iqryivubnkopr27u:abultw2hfmanpccnm3fp3hccgflcuuif777b6e47d3sywieywp5q:3:10",
            "URI:DIR2-LIT:mz1",
            "URI:DIR2-X:i7ryyroiagwqag2wgpkkuk3xxy:ujf2wyw5k3po3zupayfnm3fqlrftplet6ktd3e4ks6umqqyklwdq",
        ] {
            assert!(bad.parse::<Cap>().is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn strict() {
        let bad = [
            "URI:CHK:yzxcoagbetwet65ltjpbqyli3m:6b7inuiha2xdtgqzd55i6aeggutnxzr6qfwpv2ep5xlln6pgef7a:1:1",
            "URI:CHK:yzxcoagbetwet65ltjpbqyli3m:6b7inuiha2xdtgqzd55i6aeggutnxzr6qfwpv2ep5xlln6pgef7a:1:1:56:7",
            "URI:CHK:YZXCOAGBETWET65LTJPBQYLI3M:6b7inuiha2xdtgqzd55i6aeggutnxzr6qfwpv2ep5xlln6pgef7a:1:1:56",
            "URI:CHK:yzxcoagbetwet65ltjpbqyli3:6b7inuiha2xdtgqzd55i6aeggutnxzr6qfwpv2ep5xlln6pgef7a:1:1:56",
            "URI:CHK:yzxcoagbetwet65ltjpbqyli3m:6b7inuiha2xdtgqzd55i6aeggutnxzr6qfwpv2ep5xlln6pgef7a:4:3:56",
            "URI:CHK:yzxcoagbetwet65ltjpbqyli3m:6b7inuiha2xdtgqzd55i6aeggutnxzr6qfwpv2ep5xlln6pgef7a:0:3:56",
            "URI:CHK:yzxcoagbetwet65ltjpbqyli3m:6b7inuiha2xdtgqzd55i6aeggutnxzr6qfwpv2ep5xlln6pgef7a:3:257:56",
            "URI:CHK:yzxcoagbetwet65ltjpbqyli3m:6b7inuiha2xdtgqzd55i6aeggutnxzr6qfwpv2ep5xlln6pgef7a:1:1:99999999999999999999999",
            "URI:CHK:yzxcoagbetwet65ltjpbqyli3m:6b7inuiha2xdtgqzd55i6aeggutnxzr6qfwpv2ep5xlln6pgef7a:01:1:56",
            "URI:CHK:yzxcoagbetwet65ltjpbqyli3m:6b7inuiha2xdtgqzd55i6aeggutnxzr6qfwpv2ep5xlln6pgef7a:1:1:+56",
            "URI:LIT:mz1",
            "URI:SSK:abc:def",
            "URI:SSK:fs6ul2fju2fvb2cfx7gt6ngycm:hncpinwszbggrurbvuaaexnftk3j5wfr7473pj2g734mo2isxlbq:3",
            "URI:MDMF:fs6ul2fju2fvb2cfx7gt6ngycm:hncpinwszbggrurbvuaaexnftk3j5wfr7473pj2g734mo2isxlbq:3:131073",
            "URI:SSK:fs6ul2fju2fvb2cfx7gt6ngycm",
            "URI:SSK-RO:fs6ul2fju2fvb2cfx7gt6ngyc:hncpinwszbggrurbvuaaexnftk3j5wfr7473pj2g734mo2isxlbq",
            "URI:MDMF-Verifier:fs6ul2fju2fvb2cfx7gt6ngycm:hncpinwszbggrurbvuaaexnftk3j5wfr7473pj2g734mo2isxlbQ",
            "URI:SSK-X:fs6ul2fju2fvb2cfx7gt6ngycm:hncpinwszbggrurbvuaaexnftk3j5wfr7473pj2g734mo2isxlbq",
            "",
        ];
        for b in bad {
            assert!(b.parse::<Cap>().is_err(), "accepted {b:?}");
        }
    }
}
