//! Lease expiry: whether a storage index's leases still protect its
//! shares, as `[storage.expire]` configures it (Tahoe-LAFS's
//! `expire.*` settings, with a grace period Tahoe does not have).
//!
//! A lease records only when it ends (`expires_at`); when it was granted
//! or last renewed is that minus the server's lease duration, as in
//! Tahoe. In `age` mode a lease ends at its expiry, or
//! `override_lease_duration` after it was granted when that is set; in
//! `cutoff-date` mode a lease granted or renewed before the cutoff ends at
//! the cutoff and one renewed since never ends. Shares are collectable
//! only when they have at least one lease, every lease has ended, and
//! `grace` has passed since the last one did: a client whose renewal came
//! a day late loses nothing. Shares with no lease at all are never
//! collected (every share the server stores gets its uploader's lease, so
//! such shares come from elsewhere, a lost lease file say: reported, kept).

use crate::kinds::storage::{Lease, ShareKind};
use crate::time::Span;

/// How leases end (`expire.mode`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpiryMode {
    /// A lease ends at its expiry, or this long after it was granted or
    /// renewed when set (`override_lease_duration`).
    Age {
        /// `override_lease_duration`.
        override_duration: Option<Span>,
    },
    /// Leases granted or renewed before `cutoff` (seconds since the
    /// epoch) end at the cutoff; later ones never end.
    CutoffDate {
        /// `cutoff_date`, midnight UTC.
        cutoff: u64,
    },
}

/// `[storage.expire]`: what the lease crawler may collect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiryPolicy {
    /// Collect shares whose leases have all ended (off by default, as in
    /// Tahoe: the crawler then only counts).
    pub enabled: bool,
    /// Decide as if enabled, log and count what would go, delete nothing.
    pub dry_run: bool,
    /// How leases end.
    pub mode: ExpiryMode,
    /// Collect immutable shares.
    pub immutable: bool,
    /// Collect mutable shares.
    pub mutable: bool,
    /// How long after its last lease ended a share is still kept.
    pub grace: Span,
}

impl Default for ExpiryPolicy {
    fn default() -> Self {
        ExpiryPolicy {
            enabled: false,
            dry_run: false,
            mode: ExpiryMode::Age {
                override_duration: None,
            },
            immutable: true,
            mutable: true,
            grace: Span::days(7),
        }
    }
}

/// What becomes of one storage index's shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A lease still protects them.
    Live,
    /// They have no lease at all: kept, and reported.
    NoLeases,
    /// Every lease has ended, but the grace period has not.
    InGrace,
    /// Every lease ended longer than the grace period ago.
    Collectable,
}

/// The reading of one storage index's leases at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Judgement {
    /// What becomes of the shares.
    pub verdict: Verdict,
    /// How many leases have ended.
    pub ended: u64,
    /// How many leases expire further ahead than a lease is ever granted
    /// for (a clock that was wrong, or a record from elsewhere): live,
    /// and reported.
    pub far_future: u64,
    /// When the last lease ends (`None`: no lease, or one never ends).
    pub last_end: Option<u64>,
}

/// Slack allowed past `now + lease_duration` before a lease's expiry
/// counts as far in the future (clocks that step back a little).
const FAR_FUTURE_SLACK: u64 = 86_400;

impl ExpiryPolicy {
    /// When `lease` stops protecting its shares (`None`: never, in this
    /// mode), for a server granting leases for `lease_duration` seconds.
    pub fn lease_end(&self, lease: &Lease, lease_duration: u64) -> Option<u64> {
        let granted = lease.expires_at.saturating_sub(lease_duration);
        match &self.mode {
            ExpiryMode::Age {
                override_duration: None,
            } => Some(lease.expires_at),
            ExpiryMode::Age {
                override_duration: Some(d),
            } => Some(granted.saturating_add(d.secs())),
            ExpiryMode::CutoffDate { cutoff } => (granted < *cutoff).then_some(*cutoff),
        }
    }

    /// Whether this policy collects shares of `kind` at all.
    pub fn covers(&self, kind: ShareKind) -> bool {
        match kind {
            ShareKind::Immutable => self.immutable,
            ShareKind::Mutable => self.mutable,
        }
    }

    /// Read `leases` at `now`.
    pub fn judge(&self, leases: &[Lease], now: u64, lease_duration: u64) -> Judgement {
        let horizon = now
            .saturating_add(lease_duration)
            .saturating_add(FAR_FUTURE_SLACK);
        let far_future = leases.iter().filter(|l| l.expires_at > horizon).count() as u64;
        let ends: Vec<Option<u64>> = leases
            .iter()
            .map(|l| self.lease_end(l, lease_duration))
            .collect();
        let ended = ends.iter().filter(|e| e.is_some_and(|e| e <= now)).count() as u64;
        let last_end = ends
            .iter()
            .try_fold(0u64, |last, e| e.map(|e| last.max(e)))
            .filter(|_| !leases.is_empty());
        let verdict = match last_end {
            _ if leases.is_empty() => Verdict::NoLeases,
            None => Verdict::Live,
            Some(end) if end > now => Verdict::Live,
            Some(end) if end.saturating_add(self.grace.secs()) > now => Verdict::InGrace,
            Some(_) => Verdict::Collectable,
        };
        Judgement {
            verdict,
            ended,
            far_future,
            last_end,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400;
    const DURATION: u64 = 31 * DAY;

    fn lease(n: u8, expires_at: u64) -> Lease {
        Lease {
            renew_secret: [n; 32],
            cancel_secret: [n; 32],
            expires_at,
        }
    }

    fn age() -> ExpiryPolicy {
        ExpiryPolicy {
            enabled: true,
            ..ExpiryPolicy::default()
        }
    }

    #[test]
    fn age_mode_collects_only_after_every_lease_and_the_grace() {
        let p = age();
        let now = 1_000 * DAY;
        let live = [lease(1, now - 40 * DAY), lease(2, now + DAY)];
        let j = p.judge(&live, now, DURATION);
        assert_eq!((j.verdict, j.ended), (Verdict::Live, 1));
        // One day past the last expiry: within the grace.
        let late = [lease(1, now - 40 * DAY), lease(2, now - DAY)];
        assert_eq!(p.judge(&late, now, DURATION).verdict, Verdict::InGrace);
        let gone = [lease(1, now - 40 * DAY), lease(2, now - 7 * DAY - 1)];
        let j = p.judge(&gone, now, DURATION);
        assert_eq!((j.verdict, j.ended), (Verdict::Collectable, 2));
        assert_eq!(j.last_end, Some(now - 7 * DAY - 1));
        assert_eq!(p.judge(&[], now, DURATION).verdict, Verdict::NoLeases);
    }

    #[test]
    fn override_measures_from_the_grant() {
        let p = ExpiryPolicy {
            mode: ExpiryMode::Age {
                override_duration: Some(Span::days(60)),
            },
            grace: Span(0),
            ..age()
        };
        let now = 1_000 * DAY;
        // Granted 50 days ago: expired by its own date, alive for 60 days.
        let l = [lease(1, now - 50 * DAY + DURATION)];
        assert_eq!(p.judge(&l, now, DURATION).verdict, Verdict::Live);
        let l = [lease(1, now - 61 * DAY + DURATION)];
        assert_eq!(p.judge(&l, now, DURATION).verdict, Verdict::Collectable);
    }

    #[test]
    fn cutoff_mode_ends_leases_granted_before_it() {
        let cutoff = 900 * DAY;
        let p = ExpiryPolicy {
            mode: ExpiryMode::CutoffDate { cutoff },
            ..age()
        };
        let now = 1_000 * DAY;
        let renewed_since = [lease(1, cutoff + DURATION + DAY)];
        let j = p.judge(&renewed_since, now, DURATION);
        assert_eq!((j.verdict, j.last_end), (Verdict::Live, None));
        let old = [lease(1, cutoff + DURATION - DAY)];
        assert_eq!(p.judge(&old, now, DURATION).verdict, Verdict::Collectable);
        // The grace runs from the cutoff.
        assert_eq!(
            p.judge(&old, cutoff + DAY, DURATION).verdict,
            Verdict::InGrace
        );
    }

    #[test]
    fn far_future_leases_live_and_are_reported() {
        let now = 1_000 * DAY;
        let l = [lease(1, u64::MAX), lease(2, now - 100 * DAY)];
        let j = age().judge(&l, now, DURATION);
        assert_eq!((j.verdict, j.far_future, j.ended), (Verdict::Live, 1, 1));
        // A clock that jumped back to 1970 sees every lease alive.
        let j = age().judge(&[lease(1, now - 100 * DAY)], 0, DURATION);
        assert_eq!(j.verdict, Verdict::Live);
    }
}
