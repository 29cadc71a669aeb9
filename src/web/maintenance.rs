//! What a client node shows about its maintenance: the welcome page's
//! section, its gauges in `/statistics`, and the lines `tahoe status`
//! prints, all from `maintenance/state.json`.

use std::fmt::Write as _;

use tahoe_core::plugin::config::MaintenanceSection;

use super::html::{date, escape_html, size};
use crate::client::maintenance::MaintenanceState;

/// The maintenance of one node as people see it.
pub struct Report<'a> {
    state: &'a MaintenanceState,
    config: &'a MaintenanceSection,
    now: u64,
}

impl<'a> Report<'a> {
    /// The report of `state` under `config` at `now`.
    pub fn new(state: &'a MaintenanceState, config: &'a MaintenanceSection, now: u64) -> Self {
        Report { state, config, now }
    }

    /// Whether maintenance is overdue (see [`MaintenanceState::stale`]).
    pub fn stale(&self) -> bool {
        self.config.enabled && self.state.stale(self.now, self.config.interval.secs())
    }

    /// Lines, each with whether it is bad news.
    pub fn lines(&self) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        if !self.config.enabled {
            out.push((
                "maintenance is off ([maintenance] enabled = false)".into(),
                false,
            ));
            return out;
        }
        if self.stale() {
            let since = self.state.last_success_at.unwrap_or(self.state.first_seen);
            out.push((
                format!(
                    "OVERDUE: no maintenance cycle has succeeded since {} (more than twice the interval of {})",
                    date(since as f64),
                    self.config.interval
                ),
                true,
            ));
        }
        match self.state.last() {
            Some(c) => {
                let took = c
                    .finished_at
                    .unwrap_or(c.started_at)
                    .saturating_sub(c.started_at);
                out.push((
                    format!(
                        "last cycle: {} at {} ({}s): {} objects checked, {} leases renewed, {} repaired, {} audited ({}){}",
                        c.number,
                        date(c.started_at as f64),
                        took,
                        c.objects_checked,
                        c.leases_renewed,
                        c.repaired,
                        c.objects_audited,
                        size(c.bytes_audited),
                        if c.complete { "" } else { ", incomplete" }
                    ),
                    !c.complete,
                ));
                if c.unrecoverable > 0 {
                    out.push((format!("{} unrecoverable object(s)", c.unrecoverable), true));
                }
                for p in &c.problems {
                    out.push((format!("problem: {p}"), true));
                }
            }
            None => out.push(("no maintenance cycle has finished yet".into(), false)),
        }
        match &self.state.current {
            Some(c) => out.push((
                format!(
                    "cycle {} in progress since {}: {} objects checked so far",
                    c.number,
                    date(c.started_at as f64),
                    c.objects_checked
                ),
                false,
            )),
            None if self.state.next_at > 0 => out.push((
                format!("next cycle: {}", date(self.state.next_at as f64)),
                false,
            )),
            None => {}
        }
        out
    }

    /// The welcome page's section.
    pub fn html(&self) -> String {
        let mut b = String::from(
            "<section aria-labelledby=\"maint-h\"><h2 id=\"maint-h\">Maintenance</h2>\n<ul id=\"maintenance\">\n",
        );
        for (line, bad) in self.lines() {
            let class = if bad { " class=\"bad\"" } else { "" };
            let _ = writeln!(b, "<li{class}>{}</li>", escape_html(&line));
        }
        b.push_str("</ul></section>\n");
        b
    }

    /// Gauges for `/statistics`.
    pub fn stats(&self) -> Vec<(String, f64)> {
        let mut out = vec![(
            "maintenance.overdue".to_string(),
            f64::from(u8::from(self.stale())),
        )];
        if let Some(at) = self.state.last_success_at {
            out.push(("maintenance.last_success".into(), at as f64));
        }
        if let Some(c) = self.state.last() {
            for (name, v) in [
                ("maintenance.cycles", c.number),
                ("maintenance.objects_checked", c.objects_checked),
                ("maintenance.leases_renewed", c.leases_renewed),
                ("maintenance.repaired", c.repaired),
                ("maintenance.unrecoverable", c.unrecoverable),
                ("maintenance.bytes_audited", c.bytes_audited),
                ("maintenance.problems", c.problems.len() as u64),
            ] {
                out.push((name.into(), v as f64));
            }
        }
        out
    }
}
