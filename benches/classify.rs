//! Classifier throughput on ~300-word stories (the bar: ≥ 20,000 stories/s on one core),
//! and the time to load the built-in profile and its model, which every start pays (a `fetch`
//! from cron pays it at each pass).
//!
//! Run: `cargo bench --bench classify`. Stories are generated deterministically from sentences
//! written for this benchmark, so the figure is reproducible and no corpus is needed.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tradefeed::classify::Classifier;

const SENTENCES: &[&str] = &[
    "The commerce ministry said exporters of the metals must apply for licences from next month.",
    "Shares of the carmaker traded higher on Wednesday after it reported stronger quarterly sales.",
    "Negotiators met in Ottawa to prepare the review of the trade agreement with Mexico.",
    "The central bank kept its benchmark interest rate unchanged and signalled patience.",
    "The team sent its starting point guard to Boston in a deal that frees salary cap space.",
    "Brussels imposed provisional countervailing duties on electric cars made in China.",
    "Visitors crowded the halls of the consumer electronics show to see foldable phones.",
    "Farmers warned that retaliatory tariffs on soybeans would hurt their income this year.",
    "The company said its profit rose because of higher prices and lower energy costs.",
    "Officials added dozens of firms to the entity list, restricting access to American chips.",
    "Apprenticeships in welding, plumbing and carpentry are attracting more school leavers.",
    "The government's trade deficit narrowed as imports of fuel fell and exports of machinery rose.",
    "Investors bought technology stocks as bond yields slipped ahead of the jobs report.",
    "A World Trade Organization panel found the safeguard measures breached global rules.",
    "Police said the suspects had been charged with insider trading ahead of the merger.",
];

/// A story of about 300 words: 20 sentences picked by a fixed linear congruential sequence.
fn story(seed: u64) -> (String, String) {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize % SENTENCES.len()
    };
    let title = SENTENCES[next()]
        .split(' ')
        .take(8)
        .collect::<Vec<_>>()
        .join(" ");
    let text = (0..22)
        .map(|_| SENTENCES[next()])
        .collect::<Vec<_>>()
        .join(" ");
    (title, text)
}

fn bench(c: &mut Criterion) {
    let classifier = Classifier::builtin();
    let stories: Vec<(String, String)> = (0..1000).map(story).collect();
    let words: usize = stories
        .iter()
        .map(|(_, t)| t.split_whitespace().count())
        .sum();
    eprintln!("average story length: {} words", words / stories.len());
    let mut group = c.benchmark_group("classify");
    group.throughput(Throughput::Elements(stories.len() as u64));
    group.bench_function("builtin trade-policy, 1000 stories of ~300 words", |b| {
        b.iter(|| {
            for (title, text) in &stories {
                black_box(classifier.score(black_box(title), black_box(text)));
            }
        })
    });
    group.bench_function("load the built-in profile and model", |b| {
        b.iter(|| black_box(Classifier::builtin()))
    });
    group.finish();

    // The machine running this may be shared: criterion measures wall time, so also report
    // stories per second of this thread's own CPU time (Linux only), the one-core figure.
    if let Some(before) = thread_cpu_seconds() {
        let wall = std::time::Instant::now();
        let mut scored = 0u64;
        while wall.elapsed().as_secs_f64() < 3.0 {
            for (title, text) in &stories {
                black_box(classifier.score(black_box(title), black_box(text)));
            }
            scored += stories.len() as u64;
        }
        if let Some(after) = thread_cpu_seconds() {
            eprintln!(
                "one core: {:.0} stories per CPU-second ({scored} stories, {:.2} s CPU, {:.2} s wall)",
                scored as f64 / (after - before),
                after - before,
                wall.elapsed().as_secs_f64()
            );
        }
    }
}

/// User + system CPU time of the calling thread, from `/proc/thread-self/stat` (clock ticks,
/// assumed 100 per second as on every mainstream Linux).
fn thread_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

criterion_group!(benches, bench);
criterion_main!(benches);
