//! The gateway's statistics: `GET /statistics?t=json` in Tahoe-LAFS's
//! shape (`{"stats": {...}, "counters": {...}}` with Tahoe's names), and
//! `t=openmetrics` in the OpenMetrics text format: Tahoe's names
//! (`tahoe_counters_*`, `tahoe_stats_*`) as gauges and counters, plus
//! request-latency histograms per kind of request.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::fs::{Call, Frontend};

/// Upper bounds (seconds) of the latency histogram's buckets.
const BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0,
];

/// What a request was, for its latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReqKind {
    Upload,
    Download,
    Directory,
    Page,
}

impl ReqKind {
    const ALL: [ReqKind; 4] = [
        ReqKind::Upload,
        ReqKind::Download,
        ReqKind::Directory,
        ReqKind::Page,
    ];
    fn as_str(self) -> &'static str {
        match self {
            ReqKind::Upload => "upload",
            ReqKind::Download => "download",
            ReqKind::Directory => "directory",
            ReqKind::Page => "page",
        }
    }
}

#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    /// Microseconds.
    sum_us: AtomicU64,
}

/// Counters the gateway keeps.
#[derive(Default)]
pub struct Stats {
    pub files_uploaded: AtomicU64,
    pub bytes_uploaded: AtomicU64,
    pub files_downloaded: AtomicU64,
    pub bytes_downloaded: AtomicU64,
    /// Responses by class: 2xx, 3xx, 4xx, 5xx.
    responses: [AtomicU64; 4],
    /// File-system calls by front end, kind and outcome (ok, failed).
    fs_calls: [[[AtomicU64; 2]; Call::ALL.len()]; Frontend::ALL.len()],
    latency: [Histogram; 4],
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl Stats {
    pub fn uploaded(&self, bytes: u64) {
        add(&self.files_uploaded, 1);
        add(&self.bytes_uploaded, bytes);
    }

    pub fn downloaded(&self, bytes: u64) {
        add(&self.files_downloaded, 1);
        add(&self.bytes_downloaded, bytes);
    }

    /// A request answered with `status` after `took`.
    pub fn request(&self, kind: ReqKind, status: u16, took: Duration) {
        let class = usize::from(status / 100).clamp(2, 5) - 2;
        add(&self.responses[class], 1);
        let h = &self.latency[kind as usize];
        let secs = took.as_secs_f64();
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                add(&h.buckets[i], 1);
            }
        }
        add(&h.count, 1);
        add(&h.sum_us, took.as_micros() as u64);
    }

    /// A file-system call through `via` ended.
    pub fn fs_call(&self, via: Frontend, call: Call, ok: bool) {
        add(
            &self.fs_calls[frontend_index(via)][call as usize][usize::from(!ok)],
            1,
        );
    }

    fn responses(&self, class: usize) -> u64 {
        self.responses[class].load(Ordering::Relaxed)
    }
}

/// A snapshot in Tahoe's shape: counters and stats by dotted name.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Snapshot {
    pub counters: BTreeMap<String, u64>,
    pub stats: BTreeMap<String, f64>,
}

impl Snapshot {
    /// The gateway's counters; the caller adds the node's and the
    /// storage server's.
    pub fn of(s: &Stats) -> Snapshot {
        let mut snap = Snapshot::default();
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        for (name, v) in [
            ("uploader.files_uploaded", get(&s.files_uploaded)),
            ("uploader.bytes_uploaded", get(&s.bytes_uploaded)),
            ("downloader.files_downloaded", get(&s.files_downloaded)),
            ("downloader.bytes_downloaded", get(&s.bytes_downloaded)),
            ("web.responses_2xx", s.responses(0)),
            ("web.responses_3xx", s.responses(1)),
            ("web.responses_4xx", s.responses(2)),
            ("web.responses_5xx", s.responses(3)),
        ] {
            snap.counters.insert(name.into(), v);
        }
        for via in Frontend::ALL {
            for call in Call::ALL {
                let [ok, failed] = &s.fs_calls[frontend_index(via)][call as usize];
                let name = format!("{}.{}", via.as_str(), call.as_str());
                snap.counters.insert(name.clone(), get(ok));
                snap.counters.insert(format!("{name}_failed"), get(failed));
            }
        }
        snap
    }
}

fn frontend_index(via: Frontend) -> usize {
    via as usize
}

fn metric_name(dotted: &str) -> String {
    dotted
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// The OpenMetrics text of `snap` and the latency histograms of `s`.
pub fn openmetrics(snap: &Snapshot, s: &Stats) -> String {
    let mut out = String::new();
    for (k, v) in &snap.counters {
        let name = format!("tahoe_counters_{}", metric_name(k));
        let _ = writeln!(out, "# TYPE {name} counter");
        let _ = writeln!(out, "{name}_total {v}");
    }
    for (k, v) in &snap.stats {
        let name = format!("tahoe_stats_{}", metric_name(k));
        let _ = writeln!(out, "# TYPE {name} gauge");
        let _ = writeln!(out, "{name} {v}");
    }
    let name = "tahoe_web_request_duration_seconds";
    let _ = writeln!(out, "# TYPE {name} histogram");
    let _ = writeln!(out, "# UNIT {name} seconds");
    let _ = writeln!(
        out,
        "# HELP {name} Time to answer a request, by kind (to the last byte of an upload, to the first of a download)."
    );
    for kind in ReqKind::ALL {
        let h = &s.latency[kind as usize];
        let kind = kind.as_str();
        for (i, le) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{kind=\"{kind}\",le=\"{le:?}\"}} {}",
                h.buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = h.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{kind=\"{kind}\",le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum{{kind=\"{kind}\"}} {:?}",
            h.sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count{{kind=\"{kind}\"}} {count}");
    }
    out.push_str("# EOF\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_the_text_ends_with_eof() {
        let s = Stats::default();
        s.request(ReqKind::Upload, 200, Duration::from_millis(3));
        s.request(ReqKind::Upload, 404, Duration::from_millis(300));
        s.uploaded(42);
        let text = openmetrics(&Snapshot::of(&s), &s);
        assert!(text.ends_with("# EOF\n"));
        let line = |prefix: &str| {
            text.lines()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("no {prefix} in {text}"))
                .rsplit(' ')
                .next()
                .unwrap()
                .to_string()
        };
        let b = "tahoe_web_request_duration_seconds_bucket{kind=\"upload\",";
        assert_eq!(line(&format!("{b}le=\"0.001\"}}")), "0");
        assert_eq!(line(&format!("{b}le=\"0.005\"}}")), "1");
        assert_eq!(line(&format!("{b}le=\"0.5\"}}")), "2");
        assert_eq!(line(&format!("{b}le=\"+Inf\"}}")), "2");
        assert_eq!(line("tahoe_counters_uploader_bytes_uploaded_total"), "42");
        assert_eq!(line("tahoe_counters_web_responses_4xx_total"), "1");
    }
}
