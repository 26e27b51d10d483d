//! Decode throughput of each codec on 64 B and 4 KiB messages.
//!
//! `cargo bench -p selectloop-bench --bench codec`

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use selectloop::codec::{Chunks, Codec, LengthPrefixed, Lines};

/// About 1 MiB of back-to-back messages of `size` bytes, framed by `codec`.
fn wire(codec: &Codec, size: usize) -> Vec<u8> {
    let body: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
    let mut wire = Vec::new();
    while wire.len() < 1024 * 1024 {
        codec.encode(&body, &mut wire).expect("encodable");
    }
    wire
}

fn decode_all(codec: &Codec, mut buf: &[u8]) -> usize {
    let mut messages = 0;
    while let Some(frame) = codec.decode(buf).expect("valid") {
        black_box(&buf[frame.payload()]);
        buf = &buf[frame.consumed()..];
        messages += 1;
    }
    messages
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for size in [64usize, 4096] {
        let codecs = [
            ("lines", Codec::from(Lines::new(64 * 1024))),
            (
                "length_prefixed",
                Codec::from(LengthPrefixed::new(64 * 1024)),
            ),
        ];
        for (name, codec) in codecs {
            let wire = wire(&codec, size);
            group.throughput(Throughput::Bytes(wire.len() as u64));
            group.bench_with_input(BenchmarkId::new(name, size), &wire, |b, wire| {
                b.iter(|| decode_all(&codec, wire))
            });
        }
        // Chunks: a "message" is whatever one read returned, so decoding is
        // taking each read whole; measured over reads of `size` bytes.
        let codec = Codec::from(Chunks::new(size));
        let wire = vec![b'x'; 1024 * 1024];
        group.throughput(Throughput::Bytes(wire.len() as u64));
        group.bench_with_input(BenchmarkId::new("chunks", size), &wire, |b, wire| {
            b.iter(|| {
                wire.chunks(size)
                    .filter_map(|read| codec.decode(read).expect("valid"))
                    .count()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
