//! Merkle trees as Tahoe builds them.
//!
//! A tree is complete and binary, stored as an array: node 0 is the root,
//! the children of node i are 2i+1 and 2i+2, and the leaves fill the last
//! level. The leaf list is padded to a power of two with
//! `tagged_hash("Merkle tree empty leaf", decimal index)`; an interior node
//! is `tagged_pair_hash("Merkle tree internal node", left, right)`. A tree of
//! one leaf is that leaf.
//!
//! Building needs the whole leaf list (shares carry whole trees); checking a
//! leaf needs only the siblings along its path, which is how downloads
//! verify a block without trusting anything but the root.

use crate::error::{Error, Result};
use crate::format::hash::{HASH_LEN, Hash, tagged_hash, tagged_pair_hash, tags};

/// The number of leaves after padding: the next power of two (at least 1).
pub fn padded_leaves(leaves: usize) -> usize {
    leaves.max(1).next_power_of_two()
}

/// The number of nodes of a tree over `leaves` leaves.
pub fn node_count(leaves: usize) -> usize {
    2 * padded_leaves(leaves) - 1
}

/// The hash of padding leaf `i`.
pub fn empty_leaf_hash(i: usize) -> Hash {
    tagged_hash(tags::MERKLE_EMPTY_LEAF, i.to_string().as_bytes())
}

/// The hash of an interior node.
fn pair_hash(left: &Hash, right: &Hash) -> Hash {
    tagged_pair_hash(tags::MERKLE_INTERNAL, left, right)
}

/// A complete tree, all nodes present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashTree {
    nodes: Vec<Hash>,
}

impl HashTree {
    /// Build the tree over `leaves`.
    pub fn new(leaves: &[Hash]) -> Self {
        let width = padded_leaves(leaves.len());
        let first_leaf = width - 1;
        let mut nodes = vec![[0u8; 32]; 2 * width - 1];
        for i in 0..width {
            nodes[first_leaf + i] = match leaves.get(i) {
                Some(h) => *h,
                None => empty_leaf_hash(i),
            };
        }
        for i in (0..first_leaf).rev() {
            nodes[i] = pair_hash(&nodes[2 * i + 1], &nodes[2 * i + 2]);
        }
        HashTree { nodes }
    }

    /// The root hash.
    pub fn root(&self) -> Hash {
        self.nodes[0]
    }

    /// Every node, root first (the order shares store them in).
    pub fn nodes(&self) -> &[Hash] {
        &self.nodes
    }

    /// Node `i`.
    pub fn node(&self, i: usize) -> Option<&Hash> {
        self.nodes.get(i)
    }

    /// The index of leaf `leaf`.
    pub fn leaf_index(&self, leaf: usize) -> usize {
        self.nodes.len() / 2 + leaf
    }

    /// The node indexes needed to check leaf `leaf` against the root: the
    /// sibling of every node on its path, plus the leaf itself when
    /// `include_leaf`; sorted.
    pub fn needed_for(&self, leaf: usize, include_leaf: bool) -> Vec<usize> {
        let mut out = self.chain(leaf, include_leaf);
        out.sort_unstable();
        out
    }

    /// The same nodes in the order Tahoe-LAFS writes them into a share: it
    /// puts the siblings from the leaf up (then the leaf) into a Python set
    /// and writes the set in its iteration order, so matching Tahoe's bytes
    /// means following CPython's set layout (`cpython_set_order`).
    pub fn tahoe_chain_order(&self, leaf: usize) -> Vec<usize> {
        let mut chain = self.chain(leaf, false);
        chain.push(self.leaf_index(leaf));
        cpython_set_order(&chain)
    }

    /// Siblings from the leaf up to the root's children, then the leaf.
    fn chain(&self, leaf: usize, include_leaf: bool) -> Vec<usize> {
        let mut i = self.leaf_index(leaf);
        let mut out = Vec::new();
        let here = i;
        while i > 0 {
            out.push(sibling(i));
            i = (i - 1) / 2;
        }
        if include_leaf {
            out.push(here);
        }
        out
    }
}

/// The iteration order of a CPython (3.x) `set` of small non-negative ints
/// built by adding `items` in order: open addressing on `hash(i) = i` in a
/// table of 8 slots to start, 9 linear probes then a perturbed jump, and a
/// resize to the next power of two above 4 × used once 3/5 full, whose
/// re-insertion follows the old table's slot order. Tahoe-LAFS writes share
/// hash chains in this order; readers accept any.
fn cpython_set_order(items: &[usize]) -> Vec<usize> {
    const MIN_SIZE: usize = 8;
    const LINEAR_PROBES: usize = 9;
    const PERTURB_SHIFT: u32 = 5;
    fn insert(table: &mut [Option<usize>], key: usize) {
        let mask = table.len() - 1;
        let mut perturb = key;
        let mut i = key & mask;
        loop {
            let probes = if i + LINEAR_PROBES <= mask {
                LINEAR_PROBES
            } else {
                0
            };
            for slot in &mut table[i..=i + probes] {
                match *slot {
                    None => {
                        *slot = Some(key);
                        return;
                    }
                    Some(k) if k == key => return,
                    Some(_) => {}
                }
            }
            perturb >>= PERTURB_SHIFT;
            i = (i * 5 + 1 + perturb) & mask;
        }
    }
    let mut table: Vec<Option<usize>> = vec![None; MIN_SIZE];
    let mut used = 0;
    for &key in items {
        if table.contains(&Some(key)) {
            continue;
        }
        insert(&mut table, key);
        used += 1;
        if used * 5 >= (table.len() - 1) * 3 {
            let mut size = MIN_SIZE;
            while size <= used * 4 {
                size <<= 1;
            }
            let old = std::mem::replace(&mut table, vec![None; size]);
            for k in old.into_iter().flatten() {
                insert(&mut table, k);
            }
        }
    }
    table.into_iter().flatten().collect()
}

fn sibling(i: usize) -> usize {
    if i % 2 == 1 { i + 1 } else { i - 1 }
}

/// Check that every interior node of a whole stored tree (root first, as
/// [`HashTree::nodes`]) is the hash of its children, so that a checked
/// root vouches for every leaf.
pub fn check_interior_nodes(nodes: &[Hash]) -> Result<()> {
    let first_leaf = nodes.len() / 2;
    for i in 0..first_leaf {
        if nodes[i] != pair_hash(&nodes[2 * i + 1], &nodes[2 * i + 2]) {
            return Err(Error::corrupt(format!(
                "hash tree node {i} does not match its children"
            )));
        }
    }
    Ok(())
}

/// Check that `leaf_hash` is leaf `leaf` of a tree of `leaves` leaves with
/// root `root`, given the tree's nodes through `get(index)`.
///
/// `get` returns the claimed hash of a node (from a share, unverified) or
/// `None` when it is missing. Any claimed node that does not hash up to the
/// root makes the check fail with `Corrupt`.
pub fn verify_leaf(
    root: &Hash,
    leaves: usize,
    leaf: usize,
    leaf_hash: &Hash,
    get: impl Fn(usize) -> Option<Hash>,
) -> Result<()> {
    let width = padded_leaves(leaves);
    if leaf >= width {
        return Err(Error::corrupt(format!(
            "leaf {leaf} is outside a tree of {leaves} leaves"
        )));
    }
    let mut i = width - 1 + leaf;
    let mut h = *leaf_hash;
    while i > 0 {
        let sib = get(sibling(i))
            .ok_or_else(|| Error::corrupt(format!("hash tree node {} is missing", sibling(i))))?;
        h = if i % 2 == 1 {
            pair_hash(&h, &sib)
        } else {
            pair_hash(&sib, &h)
        };
        i = (i - 1) / 2;
    }
    if &h != root {
        return Err(Error::corrupt(format!(
            "leaf {leaf} does not hash up to the tree's root"
        )));
    }
    Ok(())
}

/// Bytes of one share-hash entry (a share hash chain, as CHK and SSK
/// shares store it: a 2-byte node number and its hash).
pub const SHARE_HASH_ENTRY: u64 = 2 + HASH_LEN as u64;

/// Serialize share-hash-chain entries.
pub fn pack_share_hashes(entries: &[(u16, Hash)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * SHARE_HASH_ENTRY as usize);
    for (i, h) in entries {
        out.extend_from_slice(&i.to_be_bytes());
        out.extend_from_slice(h);
    }
    out
}

/// Parse share-hash-chain entries.
pub fn parse_share_hashes(bytes: &[u8]) -> Result<Vec<(u16, Hash)>> {
    if !bytes.len().is_multiple_of(SHARE_HASH_ENTRY as usize) {
        return Err(Error::corrupt("share hash chain has a partial entry"));
    }
    Ok(bytes
        .chunks_exact(SHARE_HASH_ENTRY as usize)
        .map(|c| {
            let mut h = [0u8; HASH_LEN];
            h.copy_from_slice(&c[2..]);
            (u16::from_be_bytes([c[0], c[1]]), h)
        })
        .collect())
}

/// Parse the `count` nodes of a stored hash tree (32 bytes each, nothing
/// more or less).
pub fn parse_hash_nodes(bytes: &[u8], count: usize) -> Result<Vec<Hash>> {
    if bytes.len() != count * HASH_LEN {
        return Err(Error::corrupt(format!(
            "hash tree of {} bytes, expected {}",
            bytes.len(),
            count * HASH_LEN
        )));
    }
    Ok(bytes
        .chunks_exact(HASH_LEN)
        .map(|c| {
            let mut h = [0u8; HASH_LEN];
            h.copy_from_slice(c);
            h
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::hash::tagged_hash;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| tagged_hash(b"leaf", &[i as u8])).collect()
    }

    #[test]
    fn shapes() {
        assert_eq!(node_count(1), 1);
        assert_eq!(node_count(2), 3);
        assert_eq!(node_count(3), 7);
        assert_eq!(node_count(8), 15);
        assert_eq!(node_count(9), 31);
        let one = leaves(1);
        assert_eq!(HashTree::new(&one).root(), one[0]);
    }

    #[test]
    fn padding_and_pairs() {
        let l = leaves(3);
        let t = HashTree::new(&l);
        let right = pair_hash(&l[2], &empty_leaf_hash(3));
        let left = pair_hash(&l[0], &l[1]);
        assert_eq!(t.root(), pair_hash(&left, &right));
        assert_eq!(t.needed_for(0, true), vec![2, 3, 4]);
    }

    #[test]
    fn verify_every_leaf_and_reject_tampering() {
        for n in [1usize, 2, 3, 5, 8, 13] {
            let l = leaves(n);
            let t = HashTree::new(&l);
            for (i, leaf) in l.iter().enumerate() {
                verify_leaf(&t.root(), n, i, leaf, |j| t.node(j).copied()).unwrap();
                let wrong = tagged_hash(b"x", b"y");
                assert!(verify_leaf(&t.root(), n, i, &wrong, |j| t.node(j).copied()).is_err());
                if n > 1 {
                    let bad = |j: usize| {
                        let mut h = *t.node(j)?;
                        h[0] ^= 1;
                        Some(h)
                    };
                    assert!(verify_leaf(&t.root(), n, i, leaf, bad).is_err());
                    assert!(verify_leaf(&t.root(), n, i, leaf, |_| None).is_err());
                }
            }
        }
    }

    #[test]
    fn chains_follow_cpython_set_order() {
        // Orders the real Tahoe-LAFS 1.20 wrote (share 0).
        let order = |n: usize| HashTree::new(&vec![[0u8; 32]; n]).tahoe_chain_order(0);
        assert_eq!(order(10), vec![2, 4, 8, 15, 16]);
        assert_eq!(order(6), vec![8, 2, 4, 7]);
        assert_eq!(order(100), vec![128, 32, 64, 2, 4, 8, 16, 127]);
        for n in [1usize, 2, 3, 5, 17, 33, 100, 256] {
            let t = HashTree::new(&vec![[0u8; 32]; n]);
            for leaf in 0..n {
                let mut a = t.tahoe_chain_order(leaf);
                a.sort_unstable();
                assert_eq!(a, t.needed_for(leaf, true), "same nodes, n={n} leaf={leaf}");
            }
        }
    }
}
