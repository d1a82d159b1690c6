//! Wire copies through a whole fetch pass against feeds on a loopback server: one story run by
//! two outlets under their own headline suffix and credit line is stored once, and two
//! templated notices of different issuers (other coupon, price and dates) stay two stories.

mod common;

use std::collections::BTreeMap;

use common::{FeedServer, Resource, row_pairs, write_config};
use tradefeed::config::Config;

/// A feed of one outlet carrying one item with this HTML.
fn outlet_feed(outlet: &str, slug: &str, title: &str, html: &str) -> Resource {
    Resource::feed(common::rss(
        outlet,
        &[(
            &format!("{outlet}-{slug}"),
            &format!("https://www.{outlet}.example/business/{slug}"),
            title,
            &html_escape::encode_text(html),
            "Tue, 10 Nov 2026 08:00:00 GMT",
        )],
    ))
}

/// Polls the two feeds once and returns each stored story's entry titles.
async fn stories_of(feeds: [(&str, Resource); 2]) -> Vec<Vec<String>> {
    let server = FeedServer::start().await;
    let mut sources = Vec::new();
    for (name, feed) in feeds {
        server.put(&format!("{name}.xml"), feed);
        sources.push((name, server.url(&format!("{name}.xml"))));
    }
    let dir = tempfile::tempdir().unwrap();
    let config = Config::load(&write_config(dir.path(), &sources, "")).unwrap();
    for report in common::fetch_pass(&config).await {
        assert!(report.is_ok(), "{report:?}");
    }
    let rows: Vec<(i64, String)> = row_pairs(
        &dir.path().join("tradefeed.db"),
        "SELECT story_id, title FROM entries ORDER BY id",
    );
    let mut stories: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for (story, title) in rows {
        stories.entry(story).or_default().push(title);
    }
    stories.into_values().collect()
}

const BRIEF: &str = "Standard and Poor's Corp said it lowered its ratings on about 1.3 billion \
    dlrs of debt of Northfield Bancorp, citing rising non-performing assets and net charge-offs \
    in real estate and energy loans. The agency said the bank still has high liquidity and is \
    less exposed to Latin American borrowers than its peers.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wire_brief_under_two_outlet_suffixes_and_credit_lines_is_one_story() {
    let title = "Northfield Bancorp Debt Downgraded By S/P";
    let stories = stories_of([
        (
            "outlet0009",
            outlet_feed(
                "outlet0009",
                "northfield-debt-downgraded",
                &format!("{title} | Outlet 0009"),
                &format!(
                    "<p>{BRIEF}</p><p>This story was provided by a wire service and has not \
                     been edited by Outlet 0009 staff.</p>"
                ),
            ),
        ),
        (
            "outlet0066",
            outlet_feed(
                "outlet0066",
                "northfield-bancorp-downgrade",
                &format!("{title} | Outlet 0066"),
                &format!(
                    "<p>{BRIEF}</p><p>This story was provided by a wire service and has not \
                     been edited by Outlet 0066 staff.</p>"
                ),
            ),
        ),
    ])
    .await;
    assert_eq!(stories.len(), 1, "one story: {stories:?}");
    assert_eq!(stories[0].len(), 2, "{stories:?}");
}

/// A eurobond notice as a wire sends many a day: all but these details the same.
fn bond_notice(issuer: &str, due: &str, coupon: &str, price: &str, manager: &str) -> String {
    format!(
        "<p>{issuer} is issuing a 50 mln Australian dlr eurobond due {due} paying {coupon} pct \
         and priced at {price} pct, lead manager {manager} said.</p><p>The non-callable bond is \
         available in denominations of 1,000 and 10,000 Australian dlrs and will be listed in \
         Luxembourg. The selling concession is one pct while management and underwriting \
         combined pays 1/2 pct.</p><p>The payment date is in the spring and there will be a \
         long first coupon.</p>"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templated_bond_notices_of_two_issuers_stay_two_stories() {
    let stories = stories_of([
        (
            "wire-a",
            outlet_feed(
                "wire-a",
                "harbour-bond",
                "Harbour Banking Issues 50 Mln Australian Dlr Bond",
                &bond_notice(
                    "Harbour Banking Corp",
                    "May 6, 1990",
                    "14-1/2",
                    "101-1/4",
                    "Nordbank Capital Markets",
                ),
            ),
        ),
        (
            "wire-b",
            outlet_feed(
                "wire-b",
                "lindqvist-bond",
                "Lindqvist Finance Issues 50 Mln Australian Dlr Bond",
                &bond_notice(
                    "Lindqvist Finance NV",
                    "July 5, 1990",
                    "14-3/4",
                    "101-3/8",
                    "Carrow Sachs International",
                ),
            ),
        ),
    ])
    .await;
    assert_eq!(stories.len(), 2, "two stories: {stories:?}");
}
