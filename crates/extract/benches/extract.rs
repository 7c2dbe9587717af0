//! Throughput of entity extraction on a mix of typical posts.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const POSTS: &[&str] = &[
    "Just setting up my deck",
    "RT @deck: new release is out! #rust #release https://example.com/releases/1.2?ref=feed",
    "#방탄소년단 #BTS進撃 오늘 무대 최고였어요 ✌️#army",
    "$AAPL and $TSLA.X up again today, see t.co/abcdef for details",
    "これは日本語のポストです。example.com を見てください #日本語ハッシュタグ",
    "no entities here, only a sentence. And another one.",
];

fn bench_extract(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("extract");
    group.throughput(Throughput::Elements(POSTS.len() as u64));
    group.bench_function("mixed_posts", |bencher| {
        bencher.iter(|| {
            for post in POSTS {
                std::hint::black_box(extract::extract(std::hint::black_box(post)));
            }
        });
    });
    // Long runs that a naive scanner would revisit from every position.
    let adversarial = [
        format!("{}.{}", "日本語の文章です".repeat(17), "テスト".repeat(20)),
        "a.".repeat(140),
        "http://".repeat(40),
        "#".repeat(280),
        "@a".repeat(140),
        "$A.".repeat(90),
    ];
    group.throughput(Throughput::Elements(adversarial.len() as u64));
    group.bench_function("adversarial_posts", |bencher| {
        bencher.iter(|| {
            for post in &adversarial {
                std::hint::black_box(extract::extract(std::hint::black_box(post)));
            }
        });
    });
    group.finish();
}

criterion_group!(benches, bench_extract);
criterion_main!(benches);
