//! Criterion view of the immutable pipelines on 16 MiB (in process, ten
//! servers over the memory transport, 3-of-10, 1 MiB segments). The
//! `pipeline` bench binary gives the large-file figures and peak memory.
//!
//! Run: `cargo bench --bench immutable`.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tahoe_core::client::immutable::sink::NullSink;
use tahoe_core::client::source::BytesSource;
use tahoe_core::testing::pseudo_random_bytes;

const SIZE: usize = 16 << 20;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(8)
        .enable_all()
        .build()
        .unwrap();
    let data = Bytes::from(pseudo_random_bytes(1, SIZE));
    let grid = rt.block_on(testkit::MemGrid::new(10));
    let uploader = grid.uploader(3, 10, 1 << 20);
    let mut g = c.benchmark_group("immutable/16MiB");
    g.throughput(Throughput::Bytes(SIZE as u64));
    g.bench_function("upload-null-sink", |b| {
        b.iter(|| {
            rt.block_on(uploader.upload(Arc::new(BytesSource(data.clone())), &NullSink { n: 10 }))
                .unwrap()
        })
    });
    let cap = rt.block_on(async {
        let sink = grid.sink(3, 10);
        uploader
            .upload(Arc::new(BytesSource(data.clone())), &sink)
            .await
            .unwrap()
    });
    let downloader = grid.downloader();
    g.bench_function("download-memory-grid", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut out = tokio::io::sink();
                downloader
                    .download(
                        testkit::vectors::chk(&cap),
                        &grid.refs(),
                        0..u64::MAX,
                        &mut out,
                    )
                    .await
                    .unwrap()
            })
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
