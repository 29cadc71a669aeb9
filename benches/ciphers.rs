//! Cipher throughput over 1 MiB buffers, from offset 0 and from an
//! unaligned offset (a seek into the middle of a file).
//!
//! Run: `cargo bench --bench ciphers`.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tahoe_cipher_aes_ctr::AesCtr;
use tahoe_core::kinds::cipher::Cipher;
use tahoe_core::testing::pseudo_random_bytes;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("cipher/1MiB");
    let len = 1 << 20;
    g.throughput(Throughput::Bytes(len as u64));
    for (name, cipher) in [
        ("aes-128-ctr", AesCtr::aes128()),
        ("aes-256-ctr", AesCtr::aes256()),
    ] {
        let key = pseudo_random_bytes(1, cipher.key_len());
        let mut buf = pseudo_random_bytes(2, len);
        for offset in [0u64, 1_000_003] {
            g.bench_function(BenchmarkId::new(name, format!("offset-{offset}")), |b| {
                b.iter(|| {
                    cipher
                        .apply_keystream(&key, offset, &mut buf)
                        .expect("apply")
                })
            });
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
