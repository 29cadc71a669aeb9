//! Codec throughput: encode and worst-case decode, side by side.
//!
//! Worst case means decoding with as many data blocks missing as the code
//! allows (min(k, n-k) of them replaced by parity), so the codec must do
//! real arithmetic instead of copying primary blocks. Throughput is counted
//! in segment bytes (k × block size). The `-portable` variants force the
//! kernel a CPU without AVX2 gets.
//!
//! Run: `cargo bench --bench codecs` (add a filter such as `encode/crs`).

use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tahoe_codec_crs::Crs;
use tahoe_codec_leopard::Leopard;
use tahoe_codec_reed_solomon::ReedSolomonCodec;
use tahoe_core::kinds::codec::{Block, Codec, CodecParams};
use tahoe_core::testing::pseudo_random_bytes;
use tahoe_gf256::Kernel;

type Make = fn(CodecParams) -> tahoe_core::Result<Arc<dyn Codec>>;

const CODECS: &[(&str, Make)] = &[
    ("crs", |p| Ok(Arc::new(Crs::new(p, Kernel::detect())?))),
    ("crs-portable", |p| {
        Ok(Arc::new(Crs::new(p, Kernel::Portable)?))
    }),
    ("reed-solomon", |p| {
        Ok(Arc::new(ReedSolomonCodec::new(p, Kernel::detect())?))
    }),
    ("reed-solomon-portable", |p| {
        Ok(Arc::new(ReedSolomonCodec::new(p, Kernel::Portable)?))
    }),
    ("leopard", |p| Ok(Arc::new(Leopard::new(p)?))),
];

const PARAMS: &[(u16, u16)] = &[(3, 10), (10, 14), (32, 48)];
const BLOCK_SIZES: &[(usize, &str)] = &[(64 << 10, "64KiB"), (1 << 20, "1MiB")];

fn bench(c: &mut Criterion) {
    for &(block, block_name) in BLOCK_SIZES {
        for &(k, n) in PARAMS {
            let params = CodecParams::new(k, n).expect("params");
            let data = pseudo_random_bytes(1, usize::from(k) * block);
            let mut enc = c.benchmark_group(format!("encode/{k}-of-{n}/{block_name}"));
            enc.throughput(Throughput::Bytes(data.len() as u64));
            for &(name, make) in CODECS {
                let Ok(codec) = make(params) else { continue };
                enc.bench_function(BenchmarkId::from_parameter(name), |b| {
                    b.iter(|| codec.encode(&data).expect("encode"))
                });
            }
            enc.finish();
            let mut dec = c.benchmark_group(format!("decode-worst/{k}-of-{n}/{block_name}"));
            dec.throughput(Throughput::Bytes(data.len() as u64));
            for &(name, make) in CODECS {
                let Ok(codec) = make(params) else { continue };
                let blocks = codec.encode(&data).expect("encode");
                let missing = usize::from(k.min(n - k));
                let chosen: Vec<Block<'_>> = (missing..usize::from(n))
                    .take(usize::from(k))
                    .map(|i| Block {
                        index: i,
                        data: &blocks[i],
                    })
                    .collect();
                dec.bench_function(BenchmarkId::from_parameter(name), |b| {
                    b.iter(|| codec.decode(&chosen, data.len()).expect("decode"))
                });
            }
            dec.finish();
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
