//! Node configuration: `BASEDIR/tahoe.toml`, layered.
//!
//! Layers, later ones winning: built-in defaults, the file, then `TAHOE_*`
//! environment variables with `__` between levels (`TAHOE_ENCODING__K=2`
//! sets `encoding.k`, `TAHOE_STORAGE__FS__PATH` sets `storage.fs.path`).
//!
//! The core sections are typed here. Each plugin kind's section names the
//! chosen plugin (`[codec] name = "crs"`) and may hold one sub-table per
//! plugin (`[codec.crs]`), which only that plugin reads, into its own serde
//! struct, through [`PluginConfig`]. Keys nobody reads are errors: a typo in
//! a storage setting must not silently fall back to a default.
//!
//! Every error names where the offending value came from (the file, an
//! environment variable) and what is allowed.

use crate::error::{Error, Result};
use crate::format::chk::plan::MAX_SEGMENT_SIZE;
use crate::kinds::codec::MAX_SHARES;
use crate::server::{CrawlerConfig, ExpiryMode, ExpiryPolicy, LEASE_DURATION};
use crate::time::{Span, parse_date};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::Value;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The config file's name inside a node's base directory.
pub const CONFIG_FILE: &str = "tahoe.toml";

/// The base directory's format, the top-level `format` key of tahoe.toml
/// (absent: 1, as every tahoe.toml before the key existed). It covers the
/// base directory's files that carry no version of their own (aliases,
/// `private/keep`, the secrets, `introducer.url`, `vdrive.cap`); files
/// with their own (`servers.json`, the crawler's and maintenance's state,
/// the storage directory's `format`) are checked on their own. A newer
/// format is refused by name before anything else is read.
pub const CONFIG_FORMAT: u32 = 1;

/// The prefix of configuration environment variables.
const ENV_PREFIX: &str = "TAHOE_";

/// `[node]`: who this node is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// A name for people; shown by the queen and the web UI.
    pub nickname: String,
    /// `"client"` or `"queen"`.
    pub role: Role,
    /// The queen's address (`tahoe+tcp://FINGERPRINT@HOST:PORT`), for
    /// clients; empty means `BASEDIR/introducer.url`.
    pub introducer: String,
    /// How often a storage server renews its announcement at the queen,
    /// in seconds (keep it under a third of the queen's
    /// `queen.announcement_ttl_secs`).
    pub announce_interval_secs: u64,
}

/// `[queen]`: how the queen keeps its table of servers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueenSection {
    /// A server whose announcement is not renewed for this many seconds
    /// is forgotten (three of the default announce intervals).
    pub announcement_ttl_secs: u64,
    /// Most server identities one grid member (one peer address) may
    /// have announced at once.
    pub max_servers_per_member: usize,
}

/// A node's role in the grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Stores shares (unless disabled) and serves the web gateway.
    Client,
    /// The grid's introducer and keeper of the root directory.
    Queen,
}

/// `[encoding]`: how uploads are erasure-coded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncodingSection {
    /// Shares needed to read a file back.
    pub k: u16,
    /// Distinct servers an upload must reach to count as done.
    pub happy: u16,
    /// Shares made per file.
    pub n: u16,
    /// Largest segment, in bytes.
    pub max_segment_size: u64,
}

/// `[codec]` and `[cipher]`: which plugin, plus per-plugin sub-tables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginChoice {
    /// The registry name of the chosen plugin.
    pub name: String,
    /// Per-plugin sub-tables, read by the plugins themselves.
    #[serde(flatten, default)]
    pub sections: BTreeMap<String, Value>,
}

/// `[storage]`: whether and where this node stores shares for others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StorageSection {
    /// Store shares for the grid (client nodes only).
    pub enabled: bool,
    /// The registry name of the storage backend.
    pub backend: String,
    /// Refuse new shares when free space would drop below this many bytes.
    pub reserved_space: u64,
    /// Serve existing shares but accept no new ones.
    pub readonly: bool,
    /// Abort a bucket allocated and then not written to for this many
    /// seconds (its space comes back; a retry can allocate it again).
    pub bucket_timeout_secs: u64,
    /// Most buckets one peer (one address, all its connections) may have
    /// pending at once.
    pub max_pending_buckets: usize,
    /// Most bytes (declared share sizes) one peer may have pending at
    /// once; never more than half of the space free for it either.
    pub max_pending_bytes: u64,
    /// How long a lease lasts from when it is granted or renewed (Tahoe:
    /// 31 days; seconds allowed, for tests).
    pub lease_duration: Span,
    /// `[storage.expire]`: what the lease crawler collects.
    pub expire: ExpireSection,
    /// `[storage.crawler]`: the lease crawler's pace.
    pub crawler: CrawlerSection,
    /// Per-backend sub-tables.
    #[serde(flatten, default)]
    pub sections: BTreeMap<String, Value>,
}

/// `[storage.expire]`: lease expiry and garbage collection, as Tahoe's
/// `[storage] expire.*` settings (off by default, as there).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExpireSection {
    /// Delete shares whose leases have all ended (past the grace).
    pub enabled: bool,
    /// Decide as if enabled, report what would go, delete nothing.
    pub dry_run: bool,
    /// `"age"` or `"cutoff-date"`.
    pub mode: String,
    /// In `age` mode: a lease ends this long after it was granted or
    /// renewed, whatever its recorded expiry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub override_lease_duration: Option<Span>,
    /// In `cutoff-date` mode (`YYYY-MM-DD`): leases granted or renewed
    /// before it have ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cutoff_date: Option<String>,
    /// Collect immutable shares.
    pub immutable: bool,
    /// Collect mutable shares.
    pub mutable: bool,
    /// How long after its last lease ended a share is still kept.
    pub grace: Span,
}

impl Default for ExpireSection {
    fn default() -> Self {
        ExpireSection {
            enabled: false,
            dry_run: false,
            mode: "age".into(),
            override_lease_duration: None,
            cutoff_date: None,
            immutable: true,
            mutable: true,
            grace: Span::days(7),
        }
    }
}

impl ExpireSection {
    /// The storage server's policy; errors name the key.
    pub fn policy(&self) -> Result<ExpiryPolicy> {
        let mode = match (self.mode.as_str(), &self.cutoff_date) {
            ("age", None) => ExpiryMode::Age {
                override_duration: self.override_lease_duration,
            },
            ("cutoff-date", Some(date)) if self.override_lease_duration.is_none() => {
                ExpiryMode::CutoffDate {
                    cutoff: parse_date(date).map_err(|e| {
                        Error::config_invalid(format!(
                            "storage.expire.cutoff_date: {}",
                            e.message()
                        ))
                    })?,
                }
            }
            ("cutoff-date", _) => {
                return Err(Error::config_invalid(
                    "storage.expire.mode = \"cutoff-date\" needs storage.expire.cutoff_date (YYYY-MM-DD) and no override_lease_duration",
                ));
            }
            ("age", Some(_)) => {
                return Err(Error::config_invalid(
                    "storage.expire.cutoff_date is only read in mode \"cutoff-date\"",
                ));
            }
            (other, _) => {
                return Err(Error::config_invalid(format!(
                    "storage.expire.mode is {other:?}: allowed are \"age\" and \"cutoff-date\""
                )));
            }
        };
        Ok(ExpiryPolicy {
            enabled: self.enabled,
            dry_run: self.dry_run,
            mode,
            immutable: self.immutable,
            mutable: self.mutable,
            grace: self.grace,
        })
    }
}

/// `[storage.crawler]`: how fast the lease crawler walks the shares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CrawlerSection {
    /// Run the crawler (on by default; off, nothing is counted or
    /// collected).
    pub enabled: bool,
    /// The most of one core it may use, in percent (1 to 100).
    pub cpu_percent: f64,
    /// The least time from one cycle's start to the next one's.
    pub cycle_interval: Span,
}

impl Default for CrawlerSection {
    fn default() -> Self {
        let d = CrawlerConfig::default();
        CrawlerSection {
            enabled: true,
            cpu_percent: d.budget * 100.0,
            cycle_interval: d.cycle_interval,
        }
    }
}

impl CrawlerSection {
    /// The storage server's crawler settings; errors name the key.
    pub fn crawler(&self) -> Result<CrawlerConfig> {
        if !(self.cpu_percent >= 1.0 && self.cpu_percent <= 100.0) {
            return Err(Error::config_invalid(format!(
                "storage.crawler.cpu_percent is {}: allowed are 1 to 100",
                self.cpu_percent
            )));
        }
        Ok(CrawlerConfig {
            budget: self.cpu_percent / 100.0,
            cycle_interval: self.cycle_interval,
            ..CrawlerConfig::default()
        })
    }
}

/// `[maintenance]`: what a client node does by itself, on an interval,
/// for every file it can reach (its aliases, the shared drive and the
/// caps in `private/keep`): deep check, lease renewal, a sampled audit
/// (verify) and repair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaintenanceSection {
    /// Run maintenance (on by default).
    pub enabled: bool,
    /// From one cycle's start to the next (daily by default).
    pub interval: Span,
    /// Each cycle starts up to this fraction of the interval late, at
    /// random, so that nodes made together do not all run together.
    pub jitter: f64,
    /// The fraction of objects (so, on average, of bytes) whose shares
    /// are read whole and verified each cycle.
    pub audit: f64,
    /// Repair what is unhealthy.
    pub repair: bool,
    /// Repair when fewer than this many good shares are on distinct
    /// servers (default: the node's `happy`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repair_threshold: Option<usize>,
    /// The most objects checked per second.
    pub max_objects_per_sec: f64,
    /// The most bytes audited per second.
    pub max_bytes_per_sec: u64,
}

impl Default for MaintenanceSection {
    fn default() -> Self {
        MaintenanceSection {
            enabled: true,
            interval: Span::days(1),
            jitter: 0.1,
            audit: 0.01,
            repair: true,
            repair_threshold: None,
            max_objects_per_sec: 50.0,
            max_bytes_per_sec: 8 << 20,
        }
    }
}

impl MaintenanceSection {
    /// Check the values; errors name the key.
    pub fn check(&self) -> Result<()> {
        let bad = |key: &str, what: String| {
            Err(Error::config_invalid(format!("maintenance.{key} {what}")))
        };
        if self.interval.secs() == 0 {
            return bad("interval", "must be at least one second".into());
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return bad("jitter", format!("is {}: allowed are 0 to 1", self.jitter));
        }
        if !(0.0..=1.0).contains(&self.audit) {
            return bad("audit", format!("is {}: allowed are 0 to 1", self.audit));
        }
        if self.max_objects_per_sec.is_nan() || self.max_objects_per_sec <= 0.0 {
            return bad("max_objects_per_sec", "must be more than 0".into());
        }
        if self.max_bytes_per_sec == 0 {
            return bad("max_bytes_per_sec", "must be more than 0".into());
        }
        Ok(())
    }
}

/// `[sftp]`: the client node's SFTP server (`docs/mount.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SftpSection {
    /// Serve SFTP (off by default).
    pub enabled: bool,
    /// TCP port.
    pub port: u16,
    /// Address to bind; loopback unless deliberately changed.
    pub bind: String,
    /// The accounts file (Tahoe-LAFS's format), relative to the base
    /// directory.
    pub accounts_file: PathBuf,
    /// The host key (OpenSSH format, made at first start, 0600), relative
    /// to the base directory.
    pub host_key_file: PathBuf,
    /// Most connections open at once; more are closed on arrival.
    pub max_connections: usize,
    /// Seconds a connection has to log in before it is closed.
    pub auth_timeout_secs: u64,
}

impl Default for SftpSection {
    fn default() -> Self {
        SftpSection {
            enabled: false,
            port: 8022,
            bind: "127.0.0.1".into(),
            accounts_file: PathBuf::from("private/accounts"),
            host_key_file: PathBuf::from("private/ssh_host_ed25519_key"),
            max_connections: 64,
            auth_timeout_secs: 30,
        }
    }
}

/// `[s3]`: the client node's S3 gateway (`docs/s3.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Section {
    /// Serve S3 (off by default).
    pub enabled: bool,
    /// TCP port.
    pub port: u16,
    /// Address to bind; loopback unless deliberately changed.
    pub bind: String,
    /// The region the gateway says it is in (SigV4 signs it).
    pub region: String,
    /// The credentials file (access key id, secret key, directory cap per
    /// line; 0600), relative to the base directory.
    pub credentials_file: PathBuf,
    /// Most connections open at once; more are closed on arrival.
    pub max_connections: usize,
    /// Longest wait for a request's headers, or for the next request.
    pub header_timeout_secs: u64,
    /// Longest wait for more of a request's body.
    pub body_timeout_secs: u64,
    /// Seconds after its last part arrived that a multipart upload never
    /// completed nor aborted is removed with its parts (a day).
    pub multipart_expiry_secs: u64,
}

impl Default for S3Section {
    fn default() -> Self {
        S3Section {
            enabled: false,
            port: 8033,
            bind: "127.0.0.1".into(),
            region: "us-east-1".into(),
            credentials_file: PathBuf::from("private/s3-credentials"),
            max_connections: 256,
            header_timeout_secs: 20,
            body_timeout_secs: 60,
            multipart_expiry_secs: 86_400,
        }
    }
}

/// `[transport]`: how this node talks to others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransportSection {
    /// The registry name of the transport.
    pub name: String,
    /// Where to listen, in the transport's syntax; empty means its default
    /// (loopback with a free port).
    pub listen: String,
    /// The address to announce to others, when it differs from the bound one.
    pub advertise: String,
    /// Per-transport sub-tables.
    #[serde(flatten, default)]
    pub sections: BTreeMap<String, Value>,
}

/// `[web]`: the web gateway (UI and API).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSection {
    /// TCP port of the gateway; absent means no gateway.
    pub port: Option<u16>,
    /// Address to bind; loopback unless deliberately changed.
    pub bind: String,
    /// Host names (`NAME` or `NAME:PORT`) the gateway answers to besides
    /// `localhost` and IP addresses: every other `Host` is refused (421),
    /// so a web site whose name is rebound to this address reads nothing.
    pub allowed_hosts: Vec<String>,
    /// Longest wait for a request's headers (and for the next request on
    /// an idle connection), in seconds.
    pub header_timeout_secs: u64,
    /// Longest wait for the next piece of a request body, in seconds.
    pub body_timeout_secs: u64,
    /// Most connections open at once; more are closed on arrival.
    pub max_connections: usize,
}

/// `[plugins]`: plugins loaded from shared libraries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginsSection {
    /// Paths of shared libraries to load at start-up.
    pub load: Vec<PathBuf>,
}

/// The typed core of a node's configuration, plus the layered source that
/// plugins read their own sections from.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// `[node]`.
    pub node: NodeSection,
    /// `[encoding]`.
    pub encoding: EncodingSection,
    /// `[codec]`.
    pub codec: PluginChoice,
    /// `[cipher]`.
    pub cipher: PluginChoice,
    /// `[storage]`.
    pub storage: StorageSection,
    /// `[transport]`.
    pub transport: TransportSection,
    /// `[web]`.
    pub web: WebSection,
    /// `[plugins]`.
    pub plugins: PluginsSection,
    /// `[queen]`.
    pub queen: QueenSection,
    /// `[maintenance]` (client nodes).
    pub maintenance: MaintenanceSection,
    /// `[sftp]` (client nodes).
    pub sftp: SftpSection,
    /// `[s3]` (client nodes).
    pub s3: S3Section,
    basedir: PathBuf,
    figment: Figment,
}

/// All sections, as deserialized in one pass (so error paths are whole).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sections {
    /// The base directory's format ([`CONFIG_FORMAT`]).
    format: u32,
    node: NodeSection,
    encoding: EncodingSection,
    codec: PluginChoice,
    cipher: PluginChoice,
    storage: StorageSection,
    transport: TransportSection,
    web: WebSection,
    plugins: PluginsSection,
    queen: QueenSection,
    maintenance: MaintenanceSection,
    sftp: SftpSection,
    s3: S3Section,
}

fn choice(name: &str) -> PluginChoice {
    PluginChoice {
        name: name.to_string(),
        sections: BTreeMap::new(),
    }
}

impl Default for Sections {
    fn default() -> Self {
        Sections {
            format: CONFIG_FORMAT,
            node: NodeSection {
                nickname: String::new(),
                role: Role::Client,
                introducer: String::new(),
                announce_interval_secs: 30,
            },
            encoding: EncodingSection {
                k: 3,
                happy: 7,
                n: 10,
                max_segment_size: 1 << 20,
            },
            // crs is byte-compatible with zfec, so caps match Tahoe-LAFS's.
            codec: choice("crs"),
            cipher: choice("aes-ctr"),
            storage: StorageSection {
                enabled: true,
                backend: "fs".into(),
                reserved_space: 0,
                readonly: false,
                bucket_timeout_secs: 300,
                max_pending_buckets: 1024,
                max_pending_bytes: 64 << 30,
                lease_duration: LEASE_DURATION,
                expire: ExpireSection::default(),
                crawler: CrawlerSection::default(),
                sections: BTreeMap::new(),
            },
            transport: TransportSection {
                name: "tarpc-tcp".into(),
                listen: String::new(),
                advertise: String::new(),
                sections: BTreeMap::new(),
            },
            web: WebSection {
                port: None,
                bind: "127.0.0.1".into(),
                allowed_hosts: Vec::new(),
                header_timeout_secs: 20,
                body_timeout_secs: 60,
                max_connections: 512,
            },
            plugins: PluginsSection::default(),
            queen: QueenSection {
                announcement_ttl_secs: 90,
                max_servers_per_member: 64,
            },
            maintenance: MaintenanceSection::default(),
            sftp: SftpSection::default(),
            s3: S3Section::default(),
        }
    }
}

fn figment_error(e: figment::Error) -> Error {
    figment_error_at("", e)
}

/// figment's own messages put key paths in a confusing order when
/// extracting nested values, so format each error here: what is wrong, the
/// full dotted key, and the source (file or environment variable).
fn figment_error_at(prefix: &str, e: figment::Error) -> Error {
    let all: Vec<String> = e
        .into_iter()
        .map(|e| {
            let mut key = prefix.to_string();
            for part in &e.path {
                if !key.is_empty() {
                    key.push('.');
                }
                key.push_str(part);
            }
            let mut msg = e.kind.to_string();
            if !key.is_empty() {
                msg.push_str(&format!(" for key `{key}`"));
            }
            if let Some(md) = &e.metadata {
                match &md.source {
                    Some(src) => msg.push_str(&format!(" in {src} ({})", md.name)),
                    None => msg.push_str(&format!(" in {}", md.name)),
                }
            }
            msg
        })
        .collect();
    Error::config_invalid(all.join("\n"))
}

/// The sections of `tahoe.toml`: a `TAHOE_*` variable whose first part
/// names none of them names no configuration key.
const SECTIONS: [&str; 12] = [
    "node",
    "encoding",
    "codec",
    "cipher",
    "storage",
    "transport",
    "web",
    "plugins",
    "queen",
    "maintenance",
    "sftp",
    "s3",
];

/// The `TAHOE_*` environment variables that name configuration keys.
///
/// Decision: a variable whose first part names no section (`TAHOE_GRID`,
/// a script's own knob) is not configuration: it is ignored, with a
/// warning once per process, rather than refused, because other programs'
/// variables share the prefix. One that names a section but a key of it
/// that does not exist is still an error: that is a typo in a setting.
fn config_env() -> Env {
    static WARNED: std::sync::Once = std::sync::Once::new();
    let ignored: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter_map(|k| {
            let rest = k.strip_prefix(ENV_PREFIX)?;
            let section = rest.split("__").next()?.to_ascii_lowercase();
            (!SECTIONS.contains(&section.as_str())).then_some(k)
        })
        .collect();
    if !ignored.is_empty() {
        WARNED.call_once(|| {
            tracing::warn!(
                "ignoring {}: no configuration key (they start with {ENV_PREFIX} and a section: {})",
                ignored.join(", "),
                SECTIONS.map(str::to_uppercase).join(", ")
            );
        });
    }
    Env::prefixed(ENV_PREFIX).split("__").filter(|key| {
        let section = key.as_str().split('.').next().unwrap_or("");
        let section = section.split("__").next().unwrap_or("");
        SECTIONS.contains(&section.to_ascii_lowercase().as_str())
    })
}

impl NodeConfig {
    /// Load `basedir/tahoe.toml` with defaults and `TAHOE_*` overrides.
    ///
    /// A missing base directory is an error; a missing file means defaults.
    pub fn load(basedir: &Path) -> Result<Self> {
        if !basedir.is_dir() {
            return Err(Error::config_invalid(format!(
                "base directory {} does not exist or is not a directory",
                basedir.display()
            )));
        }
        let file = basedir.join(CONFIG_FILE);
        if file.exists() {
            // Surface unreadable files here rather than as "defaults".
            std::fs::File::open(&file).map_err(|e| {
                Error::config_invalid(format!("cannot read {}: {e}", file.display()))
            })?;
        }
        let mut figment = Figment::from(Serialized::defaults(Sections::default()));
        if file.exists() {
            figment = figment.merge(Toml::file_exact(&file));
        }
        let figment = figment.merge(config_env());
        Self::from_figment(basedir, figment)
    }

    /// Build from TOML text alone (defaults beneath, no environment): for
    /// tests and embedding.
    pub fn from_toml(basedir: &Path, toml: &str) -> Result<Self> {
        let figment =
            Figment::from(Serialized::defaults(Sections::default())).merge(Toml::string(toml));
        Self::from_figment(basedir, figment)
    }

    fn from_figment(basedir: &Path, figment: Figment) -> Result<Self> {
        // The format first: a newer file may hold keys this build would
        // call unknown, and must be told apart from a mistyped one.
        if let Ok(format) = figment.extract_inner::<u32>("format")
            && format > CONFIG_FORMAT
        {
            return Err(Error::config_invalid(format!(
                "{} is format {format}, newer than this tahoe reads ({CONFIG_FORMAT}): run the newer tahoe",
                basedir.join(CONFIG_FILE).display(),
            )));
        }
        let all: Sections = figment.extract().map_err(figment_error)?;
        if all.format == 0 {
            return Err(Error::config_invalid(format!(
                "format{}: 0 is no format (the first is 1)",
                origin(&figment, "format")
            )));
        }
        let cfg = NodeConfig {
            node: all.node,
            encoding: all.encoding,
            codec: all.codec,
            cipher: all.cipher,
            storage: all.storage,
            transport: all.transport,
            web: all.web,
            plugins: all.plugins,
            queen: all.queen,
            maintenance: all.maintenance,
            sftp: all.sftp,
            s3: all.s3,
            basedir: basedir.to_path_buf(),
            figment,
        };
        cfg.check_encoding()?;
        cfg.maintenance.check()?;
        cfg.storage.expire.policy()?;
        cfg.storage.crawler.crawler()?;
        Ok(cfg)
    }

    fn check_encoding(&self) -> Result<()> {
        let e = &self.encoding;
        let bad = |key: &str, what: String| {
            Err(Error::config_invalid(format!(
                "encoding.{key}{}: {what}",
                origin(&self.figment, &format!("encoding.{key}"))
            )))
        };
        if e.k == 0 || e.k > e.n {
            return bad("k", format!("k={} must be between 1 and n={}", e.k, e.n));
        }
        if e.n > MAX_SHARES {
            return bad("n", format!("n={} must be at most {MAX_SHARES}", e.n));
        }
        if e.happy < e.k || e.happy > e.n {
            return bad(
                "happy",
                format!("happy={} must be between k={} and n={}", e.happy, e.k, e.n),
            );
        }
        if e.max_segment_size < u64::from(e.k) || e.max_segment_size > MAX_SEGMENT_SIZE {
            return bad(
                "max_segment_size",
                format!(
                    "{} must be between k={} and {MAX_SEGMENT_SIZE} bytes",
                    e.max_segment_size, e.k
                ),
            );
        }
        Ok(())
    }

    /// The node's base directory (relative paths in plugin sections are
    /// resolved against it).
    pub fn basedir(&self) -> &Path {
        &self.basedir
    }

    /// Where the value at `key` came from, for messages: `" (in FILE)"`.
    pub fn origin(&self, key: &str) -> String {
        origin(&self.figment, key)
    }

    /// The configuration handed to plugin `name` of a kind whose section is
    /// `kind_section` (`"codec"`, `"cipher"`, `"storage"`, `"transport"`).
    pub fn plugin_config(&self, kind_section: &str, name: &str) -> PluginConfig {
        PluginConfig {
            figment: self.figment.clone(),
            key: format!("{kind_section}.{name}"),
        }
    }

    /// The sub-table names present under a plugin kind's section, with the
    /// non-table keys that are not the section's own settings.
    pub(crate) fn plugin_sections(&self, kind_section: &str) -> Vec<(String, bool)> {
        let sections = match kind_section {
            "codec" => &self.codec.sections,
            "cipher" => &self.cipher.sections,
            "storage" => &self.storage.sections,
            "transport" => &self.transport.sections,
            _ => return Vec::new(),
        };
        sections
            .iter()
            .map(|(k, v)| (k.clone(), matches!(v, Value::Dict(..))))
            .collect()
    }
}

fn origin(figment: &Figment, key: &str) -> String {
    use figment::Source;
    match figment.find_metadata(key) {
        Some(md) => match &md.source {
            Some(Source::Code(_)) => " (built-in default)".to_string(),
            Some(src) => format!(" (in {src} {})", md.name),
            None => format!(" (in {})", md.name),
        },
        None => String::new(),
    }
}

/// One plugin's own configuration section (`[KIND.NAME]`).
#[derive(Debug, Clone)]
pub struct PluginConfig {
    figment: Figment,
    key: String,
}

impl PluginConfig {
    /// An empty section (every setting at its default), for tests and
    /// programs that build plugins without a config file.
    pub fn empty(key: &str) -> Self {
        PluginConfig {
            figment: Figment::new(),
            key: key.to_string(),
        }
    }

    /// A section given as TOML text (the body of `[KEY]`).
    pub fn from_toml(key: &str, toml: &str) -> Self {
        PluginConfig {
            figment: Figment::from(Toml::string(&format!("[{key}]\n{toml}"))),
            key: key.to_string(),
        }
    }

    /// The section's dotted key, e.g. `storage.fs`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Read the section into the plugin's settings struct.
    ///
    /// Use `#[serde(deny_unknown_fields, default)]` on `T` so that unknown
    /// keys are errors and missing ones take defaults; an absent section
    /// gives `T::default()`. Errors name the key and where it came from.
    pub fn parse<T: DeserializeOwned + Default>(&self) -> Result<T> {
        if !self.figment.contains(&self.key) {
            return Ok(T::default());
        }
        self.figment
            .focus(&self.key)
            .extract()
            .map_err(|e| figment_error_at(&self.key, e))
    }

    /// The section as TOML text (empty when absent): what a plugin loaded
    /// from a shared library receives.
    pub fn to_toml(&self) -> Result<String> {
        if !self.figment.contains(&self.key) {
            return Ok(String::new());
        }
        let value: toml::Table = self
            .figment
            .focus(&self.key)
            .extract()
            .map_err(|e| figment_error_at(&self.key, e))?;
        toml::to_string(&value).map_err(|e| Error::config_invalid(format!("{}: {e}", self.key)))
    }

    /// Where a key of this section came from, for plugin error messages.
    pub fn origin(&self, field: &str) -> String {
        origin(&self.figment, &format!("{}.{field}", self.key))
    }
}

#[cfg(test)]
// figment::Jail's closures return figment's (large) error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    fn load(toml: &str) -> Result<NodeConfig> {
        NodeConfig::from_toml(Path::new("/nonexistent"), toml)
    }

    #[test]
    fn defaults() {
        let c = load("").unwrap();
        assert_eq!((c.encoding.k, c.encoding.happy, c.encoding.n), (3, 7, 10));
        assert_eq!(c.encoding.max_segment_size, 1 << 20);
        assert_eq!(c.codec.name, "crs");
        assert_eq!(c.cipher.name, "aes-ctr");
        assert_eq!(c.storage.backend, "fs");
        assert_eq!(c.web.bind, "127.0.0.1");
    }

    #[test]
    fn bad_encoding_names_key() {
        let e = load("[encoding]\nk = 11\n").unwrap_err();
        assert!(e.to_string().contains("encoding.k"), "{e}");
        let e = load("[encoding]\nhappy = 2\n").unwrap_err();
        assert!(e.to_string().contains("encoding.happy"), "{e}");
        let e = load("[encoding]\nn = 300\nhappy=7\n").unwrap_err();
        assert!(e.to_string().contains("encoding.n"), "{e}");
    }

    #[test]
    fn a_newer_format_is_refused_by_name_before_its_unknown_keys() {
        assert!(load("format = 1\n").is_ok());
        let e = load("format = 2\n[encoding]\nshiny = true\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("format 2") && e.contains("(1)"), "{e}");
        assert!(!e.contains("shiny"), "{e}");
        let e = load("format = 0\n").unwrap_err().to_string();
        assert!(e.contains("format"), "{e}");
    }

    #[test]
    fn unknown_keys_are_errors() {
        let e = load("[encoding]\nkk = 3\n").unwrap_err();
        assert!(e.to_string().contains("kk"), "{e}");
        let e = load("[stroage]\nenabled = false\n").unwrap_err();
        assert!(e.to_string().contains("stroage"), "{e}");
        assert!(e.to_string().contains("storage"), "{e}");
    }

    /// A `TAHOE_*` variable naming no section is some other program's (the
    /// bench scripts once used `TAHOE_GRID`): the node starts. A typo of a
    /// key inside a section is still refused.
    #[test]
    fn env_variables_naming_no_section_are_ignored() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("TAHOE_GRID", "/dev/shm/some-grid");
            jail.set_env("TAHOE_ENCODING__N", "7");
            let c = NodeConfig::load(jail.directory()).map_err(|e| e.to_string())?;
            assert_eq!(c.encoding.n, 7);
            jail.set_env("TAHOE_ENCODING__NN", "7");
            let e = NodeConfig::load(jail.directory()).unwrap_err();
            assert!(e.to_string().contains("nn"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn file_env_layering_and_origin() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "tahoe.toml",
                "[encoding]\nk = 2\nhappy = 3\nn = 4\n[storage.fs]\npath = \"from-file\"\n",
            )?;
            jail.set_env("TAHOE_ENCODING__N", "5");
            jail.set_env("TAHOE_STORAGE__FS__PATH", "from-env");
            let c = NodeConfig::load(jail.directory()).map_err(|e| e.to_string())?;
            assert_eq!((c.encoding.k, c.encoding.n), (2, 5));
            #[derive(Deserialize, Default)]
            struct Fs {
                path: String,
            }
            let fs: Fs = c
                .plugin_config("storage", "fs")
                .parse()
                .map_err(|e| e.to_string())?;
            assert_eq!(fs.path, "from-env");
            jail.set_env("TAHOE_ENCODING__K", "9");
            let e = NodeConfig::load(jail.directory()).unwrap_err();
            assert!(e.to_string().contains("TAHOE_"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn file_errors_name_the_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("tahoe.toml", "[encoding]\nk = \"three\"\n")?;
            let e = NodeConfig::load(jail.directory()).unwrap_err();
            let msg = e.to_string();
            assert!(
                msg.contains("tahoe.toml") && msg.contains("encoding.k"),
                "{msg}"
            );
            Ok(())
        });
    }

    #[test]
    fn plugin_section_parse() {
        #[derive(Deserialize, Default, Debug)]
        #[serde(deny_unknown_fields, default)]
        struct S {
            level: u8,
        }
        let c = load("[codec.crs]\nlevel = 4\n").unwrap();
        let s: S = c.plugin_config("codec", "crs").parse().unwrap();
        assert_eq!(s.level, 4);
        let absent: S = c.plugin_config("codec", "other").parse().unwrap();
        assert_eq!(absent.level, 0);
        let c = load("[codec.crs]\nlevle = 4\n").unwrap();
        let e = c.plugin_config("codec", "crs").parse::<S>().unwrap_err();
        assert!(e.to_string().contains("levle"), "{e}");
        let p = PluginConfig::from_toml("storage.fs", "level = 7");
        assert_eq!(p.parse::<S>().unwrap().level, 7);
    }

    #[test]
    fn missing_basedir() {
        let e = NodeConfig::load(Path::new("/definitely/not/here")).unwrap_err();
        assert!(e.to_string().contains("/definitely/not/here"));
    }
}
