//! Wall-clock time as the node's long-running duties see it: a [`Clock`]
//! that tests can replace (a simulated year runs in minutes), and the
//! spans and dates configuration is written in.
//!
//! Durations in `tahoe.toml` are a number of seconds (`600`) or a number and
//! a unit (`"10s"`, `"12 hours"`, `"31 days"`, `"2 weeks"`; Tahoe's
//! `"60 days"` reads as it does there, a month is 31 days and a year 365),
//! so that a test can make a lease last seconds and an operator write
//! days. Dates are `YYYY-MM-DD`, midnight UTC.

use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// Seconds since the Unix epoch, from the system clock or a stand-in.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> u64 + Send + Sync>);

impl Clock {
    /// The system clock (a clock set before 1970 reads as 0).
    pub fn system() -> Self {
        Clock(Arc::new(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        }))
    }

    /// A clock that reads whatever `now` says (tests, simulations).
    pub fn from_fn(now: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        Clock(Arc::new(now))
    }

    /// Now, in seconds since the Unix epoch.
    pub fn now(&self) -> u64 {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Clock(now = {})", self.now())
    }
}

/// A span of time in whole seconds, read from configuration as a number
/// of seconds or a number and a unit (see the module docs); written back
/// as seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Span(pub u64);

impl Span {
    /// `n` days.
    pub const fn days(n: u64) -> Span {
        Span(n * 86_400)
    }

    /// The seconds.
    pub fn secs(self) -> u64 {
        self.0
    }

    /// As a [`std::time::Duration`].
    pub fn duration(self) -> std::time::Duration {
        std::time::Duration::from_secs(self.0)
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        match s {
            _ if s >= 86_400 && s.is_multiple_of(86_400) => write!(f, "{} days", s / 86_400),
            _ if s >= 3600 && s.is_multiple_of(3600) => write!(f, "{} hours", s / 3600),
            _ => write!(f, "{s} seconds"),
        }
    }
}

/// Parse a span: `"600"`, `"10s"`, `"5 min"`, `"12 hours"`, `"31 days"`,
/// `"2 weeks"`, `"1 month"` (31 days), `"1 year"` (365 days).
pub fn parse_span(text: &str) -> Result<Span> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let bad = || {
        Error::invalid_input(format!(
            "{text:?} is not a duration: write seconds (600) or a number and a unit (10s, 5 min, 12 hours, 31 days, 2 weeks, 1 month, 1 year)"
        ))
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let unit = unit.trim().to_ascii_lowercase();
    let per = match unit.as_str() {
        "" | "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        "w" | "week" | "weeks" => 7 * 86_400,
        "month" | "months" => 31 * 86_400,
        "y" | "year" | "years" => 365 * 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(per).map(Span).ok_or_else(bad)
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(n) => Ok(Span(n)),
            Raw::Text(t) => parse_span(&t).map_err(serde::de::Error::custom),
        }
    }
}

/// Midnight UTC of a `YYYY-MM-DD` date, in seconds since the Unix epoch.
pub fn parse_date(text: &str) -> Result<u64> {
    let bad = || Error::invalid_input(format!("{text:?} is not a date: write YYYY-MM-DD"));
    let mut parts = text.trim().split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let (y, m, d): (i64, u32, u32) = (
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        d.parse().map_err(|_| bad())?,
    );
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1970..=9999).contains(&y)
        || !(1..=12).contains(&m)
        || d < 1
        || d > month_days[m as usize - 1]
    {
        return Err(bad());
    }
    // Days since the epoch of a civil date (the proleptic Gregorian
    // calendar), counted in 400-year eras from March 1st.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400).map_err(|_| bad())
}

/// A date written `YYYY-MM-DD` (what [`parse_date`] reads), from seconds
/// since the epoch.
pub fn format_date(secs: u64) -> String {
    let days = (secs / 86_400) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_as_written() {
        for (text, secs) in [
            ("600", 600),
            ("10s", 10),
            ("5 min", 300),
            ("12 hours", 43_200),
            ("31 days", 2_678_400),
            ("60 days", 5_184_000),
            ("2 weeks", 1_209_600),
            ("1 month", 2_678_400),
            ("1 year", 31_536_000),
        ] {
            assert_eq!(parse_span(text).unwrap(), Span(secs), "{text}");
        }
        for bad in [
            "",
            "days",
            "-1",
            "1.5 days",
            "3 fortnights",
            "99999999999999999999 years",
        ] {
            assert!(parse_span(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn dates_are_midnight_utc() {
        // `date -u -d 2009-06-01 +%s`
        assert_eq!(parse_date("2009-06-01").unwrap(), 1_243_814_400);
        assert_eq!(parse_date("1970-01-01").unwrap(), 0);
        assert_eq!(parse_date("2024-02-29").unwrap(), 1_709_164_800);
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-1",
            "yesterday",
            "1969-12-31",
        ] {
            assert!(parse_date(bad).is_err(), "{bad:?} was accepted");
        }
        for t in [0, 1_243_814_400, 1_709_164_800, 4_102_444_800] {
            assert_eq!(parse_date(&format_date(t)).unwrap(), t);
        }
    }
}
