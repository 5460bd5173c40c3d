//! Encode and decode cost of a small (16-byte) and a 1 KiB message.
//!
//! Run with `cargo bench -p legume-core --bench codec`; figures are recorded
//! in `docs/PERFORMANCE.md`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use legume_core::{Encode, Message, MessageFactory};
use legume_derive::Message;

/// 16 bytes of fields: a typical per-entity state update.
#[derive(Debug, PartialEq, Message)]
#[legume(crate = "legume_core")]
#[message(id = 30)]
struct Small {
    entity: u32,
    x: f32,
    y: f32,
    heading: u16,
    kind: u8,
    alive: bool,
}

/// About 1 KiB of fields: a snapshot with text, floats and a blob.
#[derive(Debug, PartialEq, Message)]
#[legume(crate = "legume_core")]
#[message(id = 31)]
struct Big {
    tick: u32,
    #[field(max_len = 64)]
    name: String,
    samples: Vec<f32>,
    blob: Vec<u8>,
}

fn small() -> Small {
    Small {
        entity: 42,
        x: 1.5,
        y: -3.25,
        heading: 270,
        kind: 3,
        alive: true,
    }
}

fn big() -> Big {
    Big {
        tick: 123_456,
        name: "snapshot of the north arena".into(),
        samples: (0..128).map(|i| i as f32 * 0.5).collect(),
        blob: (0..=255u8).cycle().take(460).collect(),
    }
}

fn bench_message<M: Message + PartialEq>(c: &mut Criterion, label: &str, msg: M) {
    let mut factory = MessageFactory::new();
    factory.register::<M>().expect("bench types do not clash");
    let len = msg.message_len();
    let bytes = msg.to_bytes().expect("bench message encodes");
    let mut group = c.benchmark_group(label);
    group.throughput(Throughput::Bytes(len as u64));
    let mut buf = vec![0u8; len];
    group.bench_function("encode", |b| {
        b.iter(|| black_box(&msg).encode_message(black_box(&mut buf)))
    });
    group.bench_function("decode", |b| {
        b.iter(|| M::decode_message(black_box(&bytes)))
    });
    group.bench_function("encode+decode", |b| {
        b.iter(|| {
            let n = black_box(&msg).encode_message(&mut buf).expect("fits");
            M::decode_message(black_box(&buf[..n]))
        })
    });
    group.bench_function("factory decode", |b| {
        b.iter(|| factory.decode(black_box(&bytes)))
    });
    group.finish();
}

fn codecs(c: &mut Criterion) {
    let s = small();
    assert_eq!(s.encoded_len(), 16);
    bench_message(c, "small 16 B", s);
    let b = big();
    assert!(
        (1000..1100).contains(&b.encoded_len()),
        "{}",
        b.encoded_len()
    );
    bench_message(c, "big 1 KiB", b);
}

criterion_group!(benches, codecs);
criterion_main!(benches);
