//! Issue 4 end to end: 40 feeds in which about a third of the stories are edited copies of
//! wire stories run by several outlets. After one polling pass, each story is stored (and
//! served) once with all its appearances. Pairwise precision and recall are measured over the
//! whole pipeline (HTML → normalize → exact keys → near-duplicate index → store), not just the
//! cluster module. Skips with a notice when the Reuters corpus is absent.

mod common;
#[path = "common/syndicate.rs"]
#[allow(dead_code)] // The generator also serves tests/cluster_quality.rs, which reads more of it.
mod syndicate;

use std::collections::HashMap;

use common::{FeedServer, Resource, write_config};
use syndicate::{Mode, drop_resends, generate, load_corpus, pairwise};
use tradefeed::app::{self, FetchPassResult, Pipeline};
use tradefeed::config::Config;
use tradefeed::store::StoryQuery;

const FEEDS_PER_OUTLET: usize = 4;

fn rss_item(e: &tradefeed::domain::Entry) -> String {
    let esc = |s: &str| html_escape::encode_text(s).into_owned();
    format!(
        "<item><guid isPermaLink=\"true\">{link}</guid><link>{link}</link><title>{title}</title>\
         <author>{author}</author><description>{html}</description><pubDate>{date}</pubDate></item>\n",
        link = esc(e.link.as_deref().unwrap()),
        title = esc(&e.title),
        author = esc(&e.authors[0]),
        html = esc(&e.html),
        date = e.published.to_rfc2822(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_feeds_of_syndicated_copies_yield_each_story_once_with_all_its_appearances() {
    let Some(docs) = load_corpus(&syndicate::data_dir().join("reuters21578/trade.jsonl.gz")) else {
        eprintln!("notice: Reuters-21578 corpus not found (set TRADEFEED_DATA); skipping");
        return;
    };
    let (docs, _) = drop_resends(docs);
    let sample = generate(&docs, Mode::Standard, 0x5EED_4040, 240, 12, 20);

    // Each outlet's copies are spread over four feeds (e.g. its sections): 40 feeds.
    let mut feeds: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, copy) in sample.copies.iter().enumerate() {
        let link = copy.entry.link.as_deref().unwrap();
        let outlet = link.split('.').nth(1).unwrap().to_string();
        let section = copy.story % FEEDS_PER_OUTLET;
        feeds
            .entry(format!("{outlet}-{section}"))
            .or_default()
            .push(i);
    }
    assert!(feeds.len() >= 35, "about 40 feeds, got {}", feeds.len());
    let server = FeedServer::start().await;
    let mut sources = Vec::new();
    for (name, copies) in &feeds {
        let mut xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><rss version=\"2.0\"><channel>\
             <title>{name}</title><link>https://{name}.example/</link><description>d</description>\n"
        );
        for &i in copies {
            xml.push_str(&rss_item(&sample.copies[i].entry));
        }
        xml.push_str("</channel></rss>");
        server.put(&format!("{name}.xml"), Resource::feed(xml));
        sources.push((name.as_str(), server.url(&format!("{name}.xml"))));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &sources,
        "max_items_per_poll = 5000\n\n[cluster]\nwindow_days = 7\n",
    );
    let config = Config::load(&path).unwrap();
    let pipeline = Pipeline::start(&config).await.unwrap();
    let results = app::fetch_once(&pipeline, config.sources.clone(), 8).await;
    for r in &results {
        match r {
            FetchPassResult::Polled(p) => assert!(p.is_ok(), "{p:?}"),
            FetchPassResult::Skipped { source, reason }
            | FetchPassResult::Stopped { source, reason } => panic!("{source}: {reason}"),
        }
    }

    let stories = pipeline
        .store
        .stories(StoryQuery {
            limit: 100_000,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut story_of_link: HashMap<String, i64> = HashMap::new();
    for s in &stories {
        for a in &s.appearances {
            let previous = story_of_link.insert(a.url.clone().unwrap(), s.id);
            assert!(
                previous.is_none(),
                "an appearance is listed in one story only"
            );
        }
    }
    let truth: Vec<usize> = sample.copies.iter().map(|c| c.story).collect();
    let predicted: Vec<i64> = sample
        .copies
        .iter()
        .map(|c| story_of_link[c.entry.link.as_deref().unwrap()])
        .collect();
    let true_stories = truth.iter().collect::<std::collections::HashSet<_>>().len();
    let (precision, recall, both, predicted_pairs, true_pairs) = pairwise(&truth, &predicted);
    let syndicated = {
        let mut per_story: HashMap<usize, usize> = HashMap::new();
        for &t in &truth {
            *per_story.entry(t).or_default() += 1;
        }
        per_story.values().filter(|&&n| n > 1).count()
    };
    eprintln!(
        "syndication through the pipeline: {} feeds, {} copies of {} true stories ({} run by \
         several outlets) → {} stories; pairwise precision {precision:.4} ({both}/{predicted_pairs}), \
         recall {recall:.4} ({both}/{true_pairs})",
        feeds.len(),
        sample.copies.len(),
        true_stories,
        syndicated,
        stories.len()
    );
    assert!(precision >= 0.98, "precision {precision:.4}");
    assert!(recall >= 0.95, "recall {recall:.4}");

    // The served feed lists each story once with its appearances.
    pipeline.store.close().await;
    drop(pipeline);
    let (base, cancel, handle) = common::start_daemon(config).await;
    let (status, body) = common::get_text(&format!("{base}/feeds/all.json?limit=500")).await;
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let items = json["items"].as_array().unwrap();
    let mut ids = std::collections::HashSet::new();
    for item in items {
        assert!(
            ids.insert(item["id"].as_str().unwrap().to_string()),
            "no story twice"
        );
        let appearances = item["_tradefeed"]["appearances"].as_array().unwrap();
        let story: i64 = item["id"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let expected = story_of_link.values().filter(|&&s| s == story).count();
        assert_eq!(appearances.len(), expected, "every appearance is listed");
    }
    common::stop_daemon(cancel, handle).await;
}
