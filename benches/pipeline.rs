//! Per-stage micro-benchmarks of the ingest pipeline, against the parse-only floor.
//!
//! Input: a synthetic RSS 2.0 feed of 50 items of ~300 words each (deterministic text written
//! here, so the numbers do not depend on a corpus). `parse_floor` is feed-rs alone over the same
//! bytes: the limit the whole pipeline is measured against (`pipeline_cpu`: every CPU stage of
//! a cold fetch, parse to cluster, store excepted).
//!
//! Run: `cargo bench --bench pipeline`.

use std::hint::black_box;

use chrono::Utc;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tradefeed::classify::Classifier;
use tradefeed::cluster::{ClusterConfig, Signature, StoryIndex};
use tradefeed::domain::Entry;
use tradefeed::normalize::{NormalizeContext, normalize_item};
use tradefeed::store::{Access, EntryWrite, PollOutcome, PollRecord, Store};

const ITEMS: usize = 50;
const WORDS: usize = 300;

const VOCABULARY: &[&str] = &[
    "the",
    "government",
    "said",
    "on",
    "tuesday",
    "that",
    "tariffs",
    "on",
    "imported",
    "steel",
    "would",
    "rise",
    "to",
    "25",
    "percent",
    "from",
    "next",
    "month",
    "officials",
    "in",
    "brussels",
    "and",
    "washington",
    "continued",
    "talks",
    "over",
    "export",
    "controls",
    "semiconductor",
    "equipment",
    "while",
    "exporters",
    "warned",
    "of",
    "retaliation",
    "markets",
    "fell",
    "as",
    "investors",
    "weighed",
    "the",
    "outlook",
    "for",
    "growth",
    "quarterly",
    "figures",
    "showed",
    "a",
    "trade",
    "deficit",
    "of",
    "billion",
    "dollars",
    "negotiators",
    "agreed",
    "rules",
    "origin",
];

/// A deterministic pseudo-random word stream (xorshift), so every run sees the same text.
fn words(seed: u64, n: usize) -> String {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = String::with_capacity(n * 7);
    for i in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if i > 0 {
            out.push(' ');
        }
        out.push_str(VOCABULARY[(x % VOCABULARY.len() as u64) as usize]);
    }
    out
}

fn synthetic_feed() -> Vec<u8> {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><rss version=\"2.0\"><channel>\
         <title>Bench</title><link>https://bench.example/</link><description>b</description>",
    );
    for i in 0..ITEMS {
        xml.push_str(&format!(
            "<item><guid>bench-{i}</guid><link>https://bench.example/story/{i}?utm_source=rss</link>\
             <title>{}</title><description>&lt;p&gt;{}&lt;/p&gt;&lt;p&gt;{}&lt;/p&gt;</description>\
             <pubDate>Tue, 10 Nov 2026 09:{:02}:00 GMT</pubDate></item>",
            words(i as u64 + 1000, 8),
            words(i as u64, WORDS / 2),
            words(i as u64 + 500, WORDS / 2),
            i % 60
        ));
    }
    xml.push_str("</channel></rss>");
    xml.into_bytes()
}

fn entries(feed: &[u8]) -> Vec<Entry> {
    let parsed = tradefeed::parse::parse_feed(feed, None).unwrap();
    let ctx = NormalizeContext::new(Utc::now(), "https://bench.example/feed");
    parsed
        .items
        .iter()
        .map(|i| normalize_item(i, &ctx).unwrap())
        .collect()
}

fn stages(c: &mut Criterion) {
    // As the daemon does: headline terms stemmed through the classifier's stem caches.
    tradefeed::cluster::use_stem_hash(tradefeed::classify::stem_hash_of_word);
    let feed = synthetic_feed();
    let mut group = c.benchmark_group("stage");
    group.throughput(Throughput::Elements(ITEMS as u64));

    group.bench_function("parse_floor_feed_rs", |b| {
        b.iter(|| feed_rs::parser::parse(black_box(&feed[..])).unwrap())
    });
    group.bench_function("parse", |b| {
        b.iter(|| tradefeed::parse::parse_feed(black_box(&feed), None).unwrap())
    });
    let parsed = tradefeed::parse::parse_feed(&feed, None).unwrap();
    let ctx = NormalizeContext::new(Utc::now(), "https://bench.example/feed");
    group.bench_function("normalize", |b| {
        b.iter(|| {
            for item in &parsed.items {
                black_box(normalize_item(item, &ctx).unwrap());
            }
        })
    });
    let entries = entries(&feed);
    group.bench_function("fingerprint", |b| {
        b.iter(|| {
            for e in &entries {
                black_box(tradefeed::normalize::fingerprint(&e.title, &e.text));
            }
        })
    });
    group.bench_function("signature", |b| {
        b.iter(|| {
            for e in &entries {
                black_box(Signature::of(e));
            }
        })
    });
    let signatures: Vec<Signature> = entries.iter().map(Signature::of).collect();
    group.bench_function("cluster_find_insert", |b| {
        b.iter_batched(
            || StoryIndex::new(ClusterConfig::default()),
            |mut index| {
                for (i, (e, s)) in entries.iter().zip(&signatures).enumerate() {
                    if index.find(s, e.published).is_none() {
                        index.insert(i as i64, s, e.published);
                    }
                }
                index
            },
            criterion::BatchSize::SmallInput,
        )
    });
    let classifier = Classifier::builtin();
    group.bench_function("classify", |b| {
        b.iter(|| {
            for e in &entries {
                black_box(classifier.score(&e.title, &e.text));
            }
        })
    });

    // Every CPU stage of a cold fetch of this feed, store excepted: what the issue's
    // "within 3x of the parse-only floor" target is about (the store has its own bench).
    group.bench_function("pipeline_cpu", |b| {
        b.iter_batched(
            || StoryIndex::new(ClusterConfig::default()),
            |mut index| {
                let parsed = tradefeed::parse::parse_feed(black_box(&feed), None).unwrap();
                for (i, item) in parsed.items.iter().enumerate() {
                    let e = normalize_item(item, &ctx).unwrap();
                    let s = Signature::of(&e);
                    black_box(classifier.score(&e.title, &e.text));
                    black_box(s.to_bytes());
                    if index.find(&s, e.published).is_none() {
                        index.insert(i as i64, &s, e.published);
                    }
                }
                index
            },
            criterion::BatchSize::SmallInput,
        )
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("bench.db"), Access::ReadWrite).unwrap();
    let source = tradefeed::domain::Source {
        name: "bench".into(),
        url: "https://bench.example/feed".into(),
        schedule: tradefeed::domain::Schedule::parse("@hourly").unwrap(),
        enabled: true,
        tags: vec![],
        priority: 0,
        cluster: true,
        allow_private_redirects: false,
    };
    runtime
        .block_on(store.sync_sources(std::slice::from_ref(&source), |_, last, _| last))
        .unwrap();
    let mut round = 0u64;
    // Scores and signatures are computed in the untimed setup: this measures the store alone.
    group.bench_function("store_batch", |b| {
        b.iter_batched(
            || {
                // Fresh identities each round: every iteration inserts 50 new entries and stories.
                round += 1;
                entries
                    .iter()
                    .map(|e| {
                        let mut e = e.clone();
                        e.identity = format!("{}#{round}", e.identity);
                        e.fingerprint = format!("{}{round}", e.fingerprint);
                        e.canonical_url = None;
                        EntryWrite {
                            scores: Some(classifier.score(&e.title, &e.text)),
                            signature: Some(Signature::of(&e).to_bytes()),
                            near_matches: Vec::new(),
                            headline: None,
                            replaces_hash: None,
                            entry: e,
                        }
                    })
                    .collect()
            },
            |writes| {
                runtime
                    .block_on(store.record_poll(PollRecord {
                        source: "bench".into(),
                        url: "https://bench.example/feed".into(),
                        source_row: None,
                        started_at: Utc::now(),
                        duration: std::time::Duration::ZERO,
                        outcome: PollOutcome::Fetched {
                            http_status: 200,
                            bytes: feed.len() as u64,
                            etag: None,
                            last_modified: None,
                            listed_pruned: Some(Vec::new()),
                            read_whole: true,
                        },
                        next_due: Utc::now(),
                        due_jitter: None,
                        moved_to: None,
                        base_url: None,
                        entries: writes,
                        listed: Default::default(),
                        cluster_window: chrono::Duration::days(7),
                    }))
                    .unwrap()
            },
            criterion::BatchSize::PerIteration,
        )
    });
    let stories = runtime
        .block_on(store.stories(tradefeed::store::StoryQuery {
            limit: 50,
            ..Default::default()
        }))
        .unwrap();
    let meta = tradefeed::http::render::FeedMeta {
        title: "bench".into(),
        topic: "all".into(),
        base_url: "http://127.0.0.1:8080".into(),
        instance: store.instance().to_string(),
        query: String::new(),
    };
    for (name, format) in [
        ("render_atom", tradefeed::http::Format::Atom),
        ("render_rss", tradefeed::http::Format::Rss),
        ("render_json", tradefeed::http::Format::Json),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| black_box(tradefeed::http::render::render(format, &meta, &stories)))
        });
    }
    group.finish();
    runtime.block_on(store.close());
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(5));
    targets = stages
}
criterion_main!(benches);
