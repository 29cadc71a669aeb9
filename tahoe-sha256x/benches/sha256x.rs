//! Hashing N equal blocks (an upload's block hashes) with N separate
//! hashers versus side by side. Run: `cargo bench -p tahoe-sha256x`.

#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn blocks(c: &mut Criterion) {
    // One 1 MiB segment as 3-of-10 blocks.
    let block = vec![0x5au8; (1 << 20) / 3 + 1];
    let n = 10;
    let mut g = c.benchmark_group("sha256-10-blocks-of-349526");
    g.throughput(Throughput::Bytes((block.len() * n) as u64));
    g.bench_function("sha2-one-at-a-time", |b| {
        b.iter(|| {
            (0..n)
                .map(|_| {
                    use sha2::Digest;
                    let d: [u8; 32] = sha2::Sha256::digest(&block).into();
                    d
                })
                .collect::<Vec<_>>()
        })
    });
    g.bench_function("sha256x-update-many", |b| {
        b.iter(|| {
            let mut hashers = vec![tahoe_sha256x::Sha256::new(); n];
            let mut refs: Vec<_> = hashers.iter_mut().collect();
            let data = vec![&block[..]; n];
            tahoe_sha256x::update_many(&mut refs, &data);
            hashers
                .into_iter()
                .map(|h| h.finalize())
                .collect::<Vec<_>>()
        })
    });
    g.finish();
}

criterion_group!(benches, blocks);
criterion_main!(benches);
