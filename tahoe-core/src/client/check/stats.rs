//! Deep statistics of a tree, counted as Tahoe-LAFS's `DeepStats` counts
//! them (`t=start-deep-stats`, the last unit of a deep check or manifest).

use std::collections::BTreeMap;

use crate::format::cap::Cap;

/// What a walk counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeepStats {
    /// Counters by Tahoe's names (every one present, zero or not).
    pub counts: BTreeMap<&'static str, u64>,
    /// Files by size bucket: (smallest, largest) -> count.
    pub histogram: BTreeMap<(u64, u64), u64>,
}

const KEYS: [&str; 12] = [
    "count-immutable-files",
    "count-mutable-files",
    "count-literal-files",
    "count-files",
    "count-directories",
    "count-unknown",
    "size-immutable-files",
    "size-literal-files",
    "size-directories",
    "largest-directory",
    "largest-directory-children",
    "largest-immutable-file",
];

impl DeepStats {
    /// Nothing counted yet.
    pub fn new() -> DeepStats {
        DeepStats {
            counts: KEYS.iter().map(|k| (*k, 0)).collect(),
            histogram: BTreeMap::new(),
        }
    }

    fn add(&mut self, key: &'static str, n: u64) {
        *self.counts.entry(key).or_default() += n;
    }

    fn max(&mut self, key: &'static str, n: u64) {
        let v = self.counts.entry(key).or_default();
        *v = (*v).max(n);
    }

    /// Count an object reached (`None`: a cap of a kind this version does
    /// not know).
    pub fn add_node(&mut self, cap: Option<&Cap>) {
        match cap {
            None => self.add("count-unknown", 1),
            Some(Cap::Dir(_)) => self.add("count-directories", 1),
            Some(Cap::SskWrite(_) | Cap::SskRead(_) | Cap::SskVerifier(_)) => {
                self.add("count-files", 1);
                self.add("count-mutable-files", 1);
            }
            Some(Cap::Lit(l)) => {
                let size = l.data.len() as u64;
                self.add("count-files", 1);
                self.add("count-literal-files", 1);
                self.add("size-literal-files", size);
                *self.histogram.entry(bucket(size)).or_default() += 1;
            }
            Some(Cap::Chk(c)) => self.immutable(c.size),
            Some(Cap::ChkVerifier(v)) => self.immutable(v.size),
        }
    }

    fn immutable(&mut self, size: u64) {
        self.add("count-files", 1);
        self.add("count-immutable-files", 1);
        self.add("size-immutable-files", size);
        self.max("largest-immutable-file", size);
        *self.histogram.entry(bucket(size)).or_default() += 1;
    }

    /// Count a directory read: its size in bytes (its packed entries, as
    /// read) and its number of children.
    pub fn enter_directory(&mut self, bytes: u64, children: usize) {
        self.add("size-directories", bytes);
        self.max("largest-directory", bytes);
        self.max("largest-directory-children", children as u64);
    }
}

/// Tahoe's size bucket of `size`: (0,0), (1,3), (4,10), (11,31), (32,100),
/// ..., two per decade, each upper bound the next power of the square
/// root of ten (as Tahoe computes it, in floating point).
pub fn bucket(size: u64) -> (u64, u64) {
    if size == 0 {
        return (0, 0);
    }
    let (mut lower, mut upper) = (1u64, 3u64);
    while size > upper {
        lower = upper + 1;
        upper = next_power_of_root10(lower);
    }
    (lower, upper)
}

/// Tahoe's `next_power_of_k(n, sqrt(10))`, truncated to an integer.
fn next_power_of_root10(n: u64) -> u64 {
    let k = 10f64.sqrt();
    let x = ((n as f64).ln() / k.ln() + 0.5).trunc();
    let p = k.powf(x);
    let p = if p < n as f64 { k.powf(x + 1.0) } else { p };
    p as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_tahoes() {
        // The buckets Tahoe-LAFS 1.20 printed for files of these sizes
        // (tests/data/tahoe-deep-check.jsonl's stats unit).
        assert_eq!(bucket(2), (1, 3));
        assert_eq!(bucket(18), (11, 31));
        assert_eq!(bucket(100_000), (31623, 100_000));
        assert_eq!(bucket(1_048_576), (1_000_001, 3_162_277));
        assert_eq!(bucket(0), (0, 0));
        assert_eq!(bucket(4), (4, 10));
        assert_eq!(bucket(101), (101, 316));
    }
}
