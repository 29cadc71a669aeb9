//! What a storage node shows about its shares and its lease crawler:
//! `GET /storage?t=json` in the shape Tahoe-LAFS 1.20's storage status
//! page answers (`stats`, `bucket-counter`, `lease-checker`,
//! `lease-checker-progress`; tests/data/tahoe-storage-status.json is a
//! capture), the welcome page's storage section, its metrics, and the
//! lines `tahoe status` prints.
//!
//! Where our crawler counts differently from Tahoe's: one crawler does
//! both jobs (bucket counting and lease checking), `*-diskbytes` are the
//! share sizes (a backend need not be a file system), and `original-*`
//! (what Tahoe's default 31-day leases would free) equals `configured-*`
//! in `age` mode without an override, where both mean the same, and is
//! not counted separately otherwise (reported as `configured-*`).

use std::fmt::Write as _;

use serde_json::{Map, Value, json};
use tahoe_core::server::crawler::{ByKind, CrawlerState, Cycle, CycleCounts};
use tahoe_core::server::{ExpiryMode, ExpiryPolicy, StorageServer};

use super::html::{date, escape_html, size};

/// Tahoe's `space-recovered`: `{actual,original,configured,examined}-
/// {buckets,shares,sharebytes,diskbytes}`, each also `-mutable` and
/// `-immutable`.
fn space_recovered(c: &CycleCounts) -> Value {
    let sum = |a: &ByKind, b: &ByKind| ByKind {
        immutable: a.immutable + b.immutable,
        mutable: a.mutable + b.mutable,
    };
    let configured_shares = sum(&c.shares_reclaimed, &c.shares_would_reclaim);
    let configured_bytes = sum(&c.bytes_reclaimed, &c.bytes_would_reclaim);
    let configured_buckets = sum(&c.buckets_reclaimed, &c.buckets_would_reclaim);
    let mut m = Map::new();
    let groups: [(&str, [&ByKind; 4]); 4] = [
        (
            "actual",
            [
                &c.buckets_reclaimed,
                &c.shares_reclaimed,
                &c.bytes_reclaimed,
                &c.bytes_reclaimed,
            ],
        ),
        (
            "original",
            [
                &configured_buckets,
                &configured_shares,
                &configured_bytes,
                &configured_bytes,
            ],
        ),
        (
            "configured",
            [
                &configured_buckets,
                &configured_shares,
                &configured_bytes,
                &configured_bytes,
            ],
        ),
        ("examined", [&c.buckets, &c.shares, &c.bytes, &c.bytes]),
    ];
    for (group, values) in groups {
        for (what, v) in ["buckets", "shares", "sharebytes", "diskbytes"]
            .iter()
            .zip(values)
        {
            m.insert(format!("{group}-{what}"), json!(v.total()));
            m.insert(format!("{group}-{what}-mutable"), json!(v.mutable));
            m.insert(format!("{group}-{what}-immutable"), json!(v.immutable));
        }
    }
    Value::Object(m)
}

/// Tahoe's `configured-expiration-mode`: `[mode, override, cutoff,
/// [share types]]`.
fn mode(p: &ExpiryPolicy) -> Value {
    let types: Vec<&str> = [("immutable", p.immutable), ("mutable", p.mutable)]
        .iter()
        .filter(|(_, on)| *on)
        .map(|(t, _)| *t)
        .collect();
    match &p.mode {
        ExpiryMode::Age { override_duration } => {
            json!(["age", override_duration.map(|d| d.secs()), null, types])
        }
        ExpiryMode::CutoffDate { cutoff } => json!(["cutoff-date", null, cutoff, types]),
    }
}

/// One cycle's counts as Tahoe's `history` entries and `cycle-to-date`
/// show them.
fn cycle_json(c: &Cycle, p: &ExpiryPolicy) -> Map<String, Value> {
    let histogram: Vec<Value> = c
        .counts
        .lease_age_days
        .iter()
        .map(|(day, n)| json!([day * 86_400, (day + 1) * 86_400, n]))
        .collect();
    let per_share: Map<String, Value> = c
        .counts
        .leases_per_share
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    let mut m = Map::new();
    m.insert("expiration-enabled".into(), json!(c.expiry_enabled));
    m.insert("configured-expiration-mode".into(), mode(p));
    m.insert("lease-age-histogram".into(), json!(histogram));
    m.insert(
        "leases-per-share-histogram".into(),
        Value::Object(per_share),
    );
    m.insert("corrupt-shares".into(), json!([]));
    m.insert("space-recovered".into(), space_recovered(&c.counts));
    m
}

/// `GET /storage?t=json`.
pub fn status_json(server: &StorageServer, free: Option<u64>, now: u64) -> Value {
    let state = server.crawler_state();
    let cfg = server.config();
    let policy = &cfg.expiry;
    let mut stats = Map::new();
    stats.insert("storage_server.allocated".into(), json!(0));
    stats.insert(
        "storage_server.reserved_space".into(),
        json!(cfg.reserved_space),
    );
    if let Some(free) = free {
        let avail = if cfg.readonly {
            0
        } else {
            free.saturating_sub(cfg.reserved_space)
        };
        stats.insert("storage_server.disk_avail".into(), json!(avail));
    }
    stats.insert(
        "storage_server.accepting_immutable_shares".into(),
        json!(u8::from(
            !cfg.readonly && free.is_none_or(|f| f > cfg.reserved_space)
        )),
    );
    if let Some(last) = state.last() {
        stats.insert(
            "storage_server.total_bucket_count".into(),
            json!(last.counts.buckets.total()),
        );
    }
    let last_finished = state.last().map(|c| c.number);
    let (current, start, position) = match &state.current {
        Some(c) => (json!(c.number), c.started_at, json!(c.position)),
        None => (
            Value::Null,
            state.last().map_or(0, |c| c.started_at),
            Value::Null,
        ),
    };
    let common = |m: &mut Map<String, Value>| {
        m.insert("version".into(), json!(1));
        m.insert("last-cycle-finished".into(), json!(last_finished));
        m.insert("current-cycle".into(), current.clone());
        m.insert(
            "last-complete-prefix".into(),
            json!(position.as_str().map(|p| &p[..2])),
        );
        m.insert("last-complete-bucket".into(), position.clone());
        m.insert("current-cycle-start-time".into(), json!(start as f64));
    };
    let mut counter = Map::new();
    common(&mut counter);
    counter.insert(
        "last-complete-bucket-count".into(),
        json!(state.last().map(|c| c.counts.buckets.total())),
    );
    // Tahoe's counts per prefix and samples: our crawler keeps neither
    // (shown empty, never made up).
    counter.insert("bucket-counts".into(), json!({}));
    counter.insert("storage-index-samples".into(), json!({}));
    let mut checker = Map::new();
    common(&mut checker);
    let history: Map<String, Value> = state
        .history
        .iter()
        .map(|c| {
            let mut m = cycle_json(c, policy);
            m.insert(
                "cycle-start-finish-times".into(),
                json!([
                    c.started_at as f64,
                    c.finished_at.unwrap_or(c.started_at) as f64
                ]),
            );
            (c.number.to_string(), Value::Object(m))
        })
        .collect();
    checker.insert("history".into(), Value::Object(history));
    let per_cycle = state
        .last()
        .and_then(|c| Some(c.finished_at?.saturating_sub(c.started_at) as f64));
    let progress = match &state.current {
        Some(c) => {
            checker.insert("cycle-to-date".into(), Value::Object(cycle_json(c, policy)));
            // Done so far over what the last cycle examined.
            let pc = state.last().map(|l| {
                let total = l.counts.buckets.total().max(1) as f64;
                (c.counts.buckets.total() as f64 / total * 100.0).min(100.0)
            });
            json!({
                "cycle-in-progress": true,
                "cycle-complete-percentage": pc.unwrap_or(0.0),
                "estimated-cycle-complete-time-left": null,
                "remaining-sleep-time": null,
                "estimated-time-per-cycle": per_cycle,
            })
        }
        None => json!({
            "cycle-in-progress": false,
            "next-crawl-time": state.idle_reason.is_none().then_some(state.next_cycle_at as f64),
            "remaining-wait-time": state.idle_reason.is_none()
                .then_some(state.next_cycle_at.saturating_sub(now) as f64),
            "estimated-time-per-cycle": per_cycle,
        }),
    };
    json!({
        "stats": stats,
        "bucket-counter": counter,
        "lease-checker": checker,
        "lease-checker-progress": progress,
        "tahoe-rs": {
            "crawler": state,
            "lease-duration": cfg.lease_duration.secs(),
            "expiry": {
                "enabled": policy.enabled,
                "dry-run": policy.dry_run,
                "grace": policy.grace.secs(),
            },
        },
    })
}

/// The facts a person wants first, from the crawler's last cycle (or the
/// one in progress before any finished).
pub struct Summary<'a> {
    state: &'a CrawlerState,
    cycle: Option<&'a Cycle>,
}

impl<'a> Summary<'a> {
    /// The summary of `state`.
    pub fn of(state: &'a CrawlerState) -> Self {
        Summary {
            state,
            cycle: state.last().or(state.current.as_ref()),
        }
    }

    /// Lines for `tahoe status`.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(why) = &self.state.idle_reason {
            out.push(why.clone());
            return out;
        }
        let Some(c) = self.cycle else {
            out.push("the lease crawler has not examined anything yet".into());
            return out;
        };
        let n = &c.counts;
        let partial = if c.finished_at.is_none() {
            " (so far)"
        } else {
            ""
        };
        out.push(format!(
            "shares held: {} ({}) in {} storage indexes{partial}",
            n.shares.total(),
            size(n.bytes.total()),
            n.buckets.total()
        ));
        out.push(format!(
            "leases expiring within 7 days: {} shares ({}); within 31 days: {} shares ({})",
            n.shares_expiring_7d,
            size(n.bytes_expiring_7d),
            n.shares_expiring_31d,
            size(n.bytes_expiring_31d)
        ));
        out.push(self.reclaimed(c));
        match &self.state.current {
            Some(cur) => out.push(format!(
                "crawler: cycle {} in progress since {}, {} storage indexes so far",
                cur.number,
                date(cur.started_at as f64),
                cur.counts.buckets.total()
            )),
            None => out.push(format!(
                "crawler: idle; next cycle at {}",
                date(self.state.next_cycle_at as f64)
            )),
        }
        for kept in [
            (n.buckets_unreadable, "storage indexes could not be read"),
            (n.buckets_without_leases, "storage indexes have no lease"),
            (n.leases_far_future, "leases expire implausibly far ahead"),
        ] {
            if kept.0 > 0 {
                out.push(format!("warning: {} {} (kept)", kept.0, kept.1));
            }
        }
        out
    }

    fn reclaimed(&self, c: &Cycle) -> String {
        let n = &c.counts;
        let mode = if c.expiry_enabled {
            "expiry on"
        } else if c.dry_run {
            "expiry in dry run"
        } else {
            "expiry off"
        };
        format!(
            "cycle {} ({mode}): {} leases expired; reclaimed {} shares ({}); would reclaim {} shares ({})",
            c.number,
            n.leases_expired,
            n.shares_reclaimed.total(),
            size(n.bytes_reclaimed.total()),
            n.shares_would_reclaim.total(),
            size(n.bytes_would_reclaim.total())
        )
    }

    /// The welcome page's section.
    pub fn html(&self) -> String {
        let mut b = String::from(
            "<section aria-labelledby=\"storage-h\"><h2 id=\"storage-h\">Storage</h2>\n<ul id=\"storage-summary\">\n",
        );
        for line in self.lines() {
            let class = if line.starts_with("warning") {
                " class=\"bad\""
            } else {
                ""
            };
            let _ = writeln!(b, "<li{class}>{}</li>", escape_html(&line));
        }
        b.push_str("</ul>\n");
        if !self.state.history.is_empty() {
            b.push_str(
                "<table id=\"crawler-cycles\"><thead><tr><th>Cycle</th><th>Finished</th>\
                 <th>Shares examined</th><th>Leases expired</th><th>Reclaimed</th>\
                 <th>Would reclaim</th></tr></thead><tbody>\n",
            );
            for c in self.state.history.iter().rev() {
                let n = &c.counts;
                let _ = writeln!(
                    b,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} ({})</td><td>{} ({})</td></tr>",
                    c.number,
                    date(c.finished_at.unwrap_or(c.started_at) as f64),
                    n.shares.total(),
                    n.leases_expired,
                    n.shares_reclaimed.total(),
                    size(n.bytes_reclaimed.total()),
                    n.shares_would_reclaim.total(),
                    size(n.bytes_would_reclaim.total()),
                );
            }
            b.push_str("</tbody></table>\n");
        }
        b.push_str("<p><a href=\"/storage?t=json\">As JSON</a></p></section>\n");
        b
    }

    /// Gauges for `/statistics` (Tahoe-style dotted names).
    pub fn stats(&self) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        if let Some(c) = self.cycle {
            let n = &c.counts;
            for (name, v) in [
                ("storage_server.shares_held", n.shares.total()),
                ("storage_server.bytes_held", n.bytes.total()),
                ("storage_server.buckets_held", n.buckets.total()),
                ("storage_server.shares_expiring_7d", n.shares_expiring_7d),
                ("storage_server.shares_expiring_31d", n.shares_expiring_31d),
                ("lease_checker.leases_expired", n.leases_expired),
                ("lease_checker.shares_reclaimed", n.shares_reclaimed.total()),
                ("lease_checker.bytes_reclaimed", n.bytes_reclaimed.total()),
                (
                    "lease_checker.shares_would_reclaim",
                    n.shares_would_reclaim.total(),
                ),
                (
                    "lease_checker.bytes_would_reclaim",
                    n.bytes_would_reclaim.total(),
                ),
            ] {
                out.push((name.to_string(), v as f64));
            }
        }
        out.push((
            "lease_checker.cycles_finished".into(),
            self.state.last().map_or(0, |c| c.number) as f64,
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::sync::Arc;

    fn keys(v: &Value) -> BTreeSet<String> {
        v.as_object().unwrap().keys().cloned().collect()
    }

    /// Our `/storage?t=json` has the key tree of Tahoe 1.20's, as captured
    /// from a storage node of the reference grid
    /// (tests/data/tahoe-storage-status.json): the same sections, the same
    /// keys in each history entry, `space-recovered` and the progress; in
    /// `stats` only keys Tahoe has (its latencies we do not keep).
    #[test]
    fn storage_status_has_tahoes_shape() {
        let tahoe: Value =
            serde_json::from_str(include_str!("../../tests/data/tahoe-storage-status.json"))
                .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let ours = rt.block_on(async {
            use tahoe_core::protocol::{AllocateRequest, StorageService};
            let server = tahoe_core::server::StorageServer::new(
                Arc::new(tahoe_storage_memory::MemoryBackend::new(None)),
                tahoe_core::server::ServerConfig::default(),
            );
            let si = tahoe_core::kinds::storage::StorageIndex([3; 16]);
            let r = server
                .allocate_buckets(AllocateRequest {
                    storage_index: si,
                    share_numbers: vec![0],
                    share_size: 4,
                    renew_secret: [1; 32],
                    cancel_secret: [2; 32],
                    upload_secret: [3; 32],
                })
                .await
                .unwrap();
            assert_eq!(r.allocated, vec![0]);
            server
                .write_bucket(si, 0, [3; 32], 0, bytes::Bytes::from_static(b"data"))
                .await
                .unwrap();
            server.close_bucket(si, 0, [3; 32]).await.unwrap();
            server.crawl_cycle().await.unwrap();
            status_json(&server, Some(1 << 30), server.config().clock.now())
        });
        for section in [
            "stats",
            "bucket-counter",
            "lease-checker",
            "lease-checker-progress",
        ] {
            assert!(ours.get(section).is_some(), "no {section}");
        }
        assert_eq!(
            keys(&ours["bucket-counter"]),
            keys(&tahoe["bucket-counter"])
        );
        assert_eq!(keys(&ours["lease-checker"]), keys(&tahoe["lease-checker"]));
        assert_eq!(
            keys(&ours["lease-checker-progress"]),
            keys(&tahoe["lease-checker-progress"])
        );
        let entry = |v: &Value| {
            v["lease-checker"]["history"]
                .as_object()
                .unwrap()
                .values()
                .next()
                .unwrap()
                .clone()
        };
        let (ours_h, tahoe_h) = (entry(&ours), entry(&tahoe));
        assert_eq!(keys(&ours_h), keys(&tahoe_h));
        assert_eq!(
            keys(&ours_h["space-recovered"]),
            keys(&tahoe_h["space-recovered"])
        );
        assert_eq!(ours_h["space-recovered"]["examined-shares-immutable"], 1);
        assert_eq!(ours_h["space-recovered"]["examined-sharebytes"], 4);
        assert_eq!(ours_h["leases-per-share-histogram"], json!({"1": 1}));
        assert_eq!(
            ours_h["configured-expiration-mode"],
            json!(["age", null, null, ["immutable", "mutable"]]),
            "Tahoe's form for the default policy"
        );
        let tahoe_stats = keys(&tahoe["stats"]);
        for k in keys(&ours["stats"]) {
            assert!(tahoe_stats.contains(&k), "stats key {k} is not Tahoe's");
        }
        assert_eq!(ours["stats"]["storage_server.total_bucket_count"], 1);
    }
}
