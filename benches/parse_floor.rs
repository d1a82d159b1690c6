//! The parse-only floor of the feed farm: feed-rs alone over the very bytes a cold `fetch` pass
//! downloads, on one thread. `benches/farm.sh` runs it and sets the cold pass's CPU time against
//! it (the "whole cold pipeline within 3× of the parse-only floor").
//!
//! Run: `FARM_DIR=<folder of feed files> cargo bench --bench parse_floor`. It prints one line,
//! `parse_floor files=N items=N best_secs=S rounds=R`: the best of `ROUNDS` (default 5) passes
//! over every file, so a busy moment on a shared machine does not count against the floor.
//! Without `FARM_DIR` it says so and exits, so `cargo bench` alone still runs the other benches.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn main() {
    let Some(dir) = std::env::var_os("FARM_DIR").map(PathBuf::from) else {
        eprintln!(
            "parse_floor: FARM_DIR is not set (benches/farm.sh sets it to the farm's feeds); skipped"
        );
        return;
    };
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .filter(|&r| r > 0)
        .unwrap_or(5);
    let feeds = match read_feeds(&dir) {
        Ok(feeds) if !feeds.is_empty() => feeds,
        Ok(_) => {
            eprintln!("parse_floor: no .xml files in {}", dir.display());
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("parse_floor: reading {}: {e}", dir.display());
            std::process::exit(1);
        }
    };

    let mut best = Duration::MAX;
    let mut items = 0;
    for _ in 0..rounds {
        let started = Instant::now();
        items = 0;
        for (path, bytes) in &feeds {
            match feed_rs::parser::parse(black_box(&bytes[..])) {
                Ok(feed) => items += black_box(feed).entries.len(),
                Err(e) => {
                    // Every farm feed must parse: a floor over fewer items would flatter it.
                    eprintln!("parse_floor: {}: {e}", path.display());
                    std::process::exit(1);
                }
            }
        }
        best = best.min(started.elapsed());
    }
    println!(
        "parse_floor files={} items={items} best_secs={:.6} rounds={rounds}",
        feeds.len(),
        best.as_secs_f64()
    );
}

/// Every `.xml` file directly in `dir`, in name order, read into memory before timing starts.
fn read_feeds(dir: &Path) -> std::io::Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "xml") {
            paths.push(path);
        }
    }
    paths.sort();
    paths
        .into_iter()
        .map(|path| std::fs::read(&path).map(|bytes| (path, bytes)))
        .collect()
}
