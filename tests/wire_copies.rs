//! Wire copies through a whole fetch pass against feeds on a loopback server: one story run by
//! two outlets under their own headline suffix and credit line is stored once, and two
//! templated notices of different issuers (other coupon, price and dates) stay two stories;
//! both whether the copies come in two feeds or in one poll of one feed.

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

/// An RSS feed `name` of these (guid, link, title, escaped HTML) items, all published at `date`.
fn feed_of(name: &str, items: &[(String, String, String, String)], date: &str) -> Resource {
    let items: Vec<(&str, &str, &str, &str, &str)> = items
        .iter()
        .map(|(guid, link, title, html)| {
            (
                guid.as_str(),
                link.as_str(),
                title.as_str(),
                html.as_str(),
                date,
            )
        })
        .collect();
    Resource::feed(common::rss(name, &items))
}

/// An item for [`feed_of`]: its guid, link and title, and its text as one escaped paragraph.
fn paragraph_item(
    guid: &str,
    link: &str,
    title: &str,
    text: &str,
) -> (String, String, String, String) {
    (
        guid.to_string(),
        link.to_string(),
        title.to_string(),
        html_escape::encode_text(&format!("<p>{text}</p>")).into_owned(),
    )
}

/// A config of these sources in a new temporary folder, which holds its database.
fn config_of(sources: &[(&str, String)]) -> (tempfile::TempDir, Config) {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::load(&write_config(dir.path(), sources, "")).unwrap();
    (dir, config)
}

/// One polling pass over every configured source, each poll fine.
async fn poll_all(config: &Config) {
    for report in common::fetch_pass(config).await {
        assert!(report.is_ok(), "{report:?}");
    }
}

/// Polls every source once in a running pipeline, as the daemon does: its near-duplicate
/// index stays in memory from one pass to the next (a `fetch` rebuilds it from the store).
/// Returns how many new entries the CPU workers found in that index and left unscored.
async fn poll_all_in(pipeline: &tradefeed::app::Pipeline, config: &Config) -> usize {
    let mut unscored = 0;
    for result in tradefeed::app::fetch_once(pipeline, config.sources.clone(), 8).await {
        match result {
            tradefeed::app::FetchPassResult::Polled(report) => {
                assert!(report.is_ok(), "{report:?}");
                unscored += report.unscored_copies;
            }
            other => panic!("not polled: {other:?}"),
        }
    }
    unscored
}

/// Polls the feeds once and returns each stored story's entry titles.
async fn stories_of<'a>(feeds: impl IntoIterator<Item = (&'a str, Resource)>) -> Vec<Vec<String>> {
    let server = FeedServer::start().await;
    let mut sources = Vec::new();
    for (name, feed) in feeds {
        server.put(&format!("{name}.xml"), feed);
        sources.push((name, server.url(&format!("{name}.xml"))));
    }
    let (dir, config) = config_of(&sources);
    poll_all(&config).await;
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

/// One feed carrying two outlets' copies of a wire brief beside two templated notices of
/// different issuers, as an aggregator's feed (or any feed's first poll, its backlog) does.
/// The copies join, as they do when polled apart; the notices stay two stories. Until the
/// near-duplicate lookup looked at the poll's own earlier entries, copies that came in one
/// poll stayed apart for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_in_one_poll_of_one_feed_join_and_templated_notices_stay_apart() {
    let title = "Northfield Bancorp Debt Downgraded By S/P";
    let brief = |outlet: &str| {
        html_escape::encode_text(&format!(
            "<p>{BRIEF}</p><p>This story was provided by a wire service and has not been \
             edited by {outlet} staff.</p>"
        ))
        .into_owned()
    };
    let notice = |issuer, due, coupon, price, manager| {
        html_escape::encode_text(&bond_notice(issuer, due, coupon, price, manager)).into_owned()
    };
    let date = "Tue, 10 Nov 2026 08:00:00 GMT";
    let items = [
        (
            "a1".to_string(),
            "https://news.example/outlet0009/northfield".to_string(),
            format!("{title} | Outlet 0009"),
            brief("Outlet 0009"),
        ),
        (
            "a2".into(),
            "https://news.example/harbour-bond".into(),
            "Harbour Banking Issues 50 Mln Australian Dlr Bond".into(),
            notice(
                "Harbour Banking Corp",
                "May 6, 1990",
                "14-1/2",
                "101-1/4",
                "Nordbank Capital Markets",
            ),
        ),
        (
            "a3".into(),
            "https://news.example/outlet0066/northfield".into(),
            format!("{title} | Outlet 0066"),
            brief("Outlet 0066"),
        ),
        (
            "a4".into(),
            "https://news.example/lindqvist-bond".into(),
            "Lindqvist Finance Issues 50 Mln Australian Dlr Bond".into(),
            notice(
                "Lindqvist Finance NV",
                "July 5, 1990",
                "14-3/4",
                "101-3/8",
                "Carrow Sachs International",
            ),
        ),
    ];
    let mut stories = stories_of([("aggregator", feed_of("aggregator", &items, date))]).await;
    stories.sort_by_key(|titles| std::cmp::Reverse(titles.len()));
    assert_eq!(
        stories.len(),
        3,
        "the brief once, each notice once: {stories:?}"
    );
    assert_eq!(
        stories[0],
        [
            format!("{title} | Outlet 0009"),
            format!("{title} | Outlet 0066")
        ],
        "{stories:?}"
    );
}

/// An EU anti-dumping regulation as an official feed lists them: the same text for every
/// product and country but the two names. Its link sits inside the text, so a stored copy's
/// HTML read as words (not as its text) would not be the same item as its reissue.
fn anti_dumping_notice(product: &str, country: &str) -> String {
    format!(
        "<p>The European Commission has imposed a definitive anti-dumping duty on imports of \
         {product} originating in {country}, following an expiry review initiated under \
         Article 11(2) of <a href=\"https://eur-lex.example/eli/reg/2016/1036/oj\">Regulation \
         (EU) 2016/1036</a> of the European Parliament and of the \
         Council on protection against dumped imports from countries not members of the \
         European Union.</p><p>The Commission found that the expiry of the measures would be \
         likely to lead to a continuation or recurrence of dumping and injury to the Union \
         industry. The duty applies to the net, free-at-Union-frontier price, before duty. \
         Interested parties may request a partial interim review. The regulation enters into \
         force on the day following its publication in the Official Journal of the European \
         Union and is binding in its entirety and directly applicable in all Member States.</p>"
    )
}

/// The official feed's item `n` for this product and country: (guid, link, title, escaped
/// HTML).
fn notice_item(
    n: usize,
    title: &str,
    product: &str,
    country: &str,
) -> (String, String, String, String) {
    (
        format!("reg-{n}"),
        format!("https://eur-lex.example/reg/{n}"),
        title.to_string(),
        html_escape::encode_text(&anti_dumping_notice(product, country)).into_owned(),
    )
}

/// The same feed's templated notices across polls: the next day's regulation for another
/// product nearly repeats the text of one the feed listed before, under another headline. It
/// is the feed's next notice, not a copy: a story of its own, served as a new item. The feed's
/// own reissue of a notice under a new id (an `UPDATE 1-` headline) still joins it, and so
/// does another feed's copy under a headline of its own (the cross-feed rule is the text's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feeds_templated_notice_of_a_later_poll_is_a_story_of_its_own() {
    let recent = (chrono::Utc::now() - chrono::Duration::hours(2)).to_rfc2822();
    let tableware =
        "Commission imposes definitive anti-dumping duty on ceramic tableware from China";
    let first = notice_item(
        0,
        tableware,
        "ceramic tableware",
        "the People's Republic of China",
    );
    let server = FeedServer::start().await;
    server.put(
        "eurlex.xml",
        feed_of("eurlex", std::slice::from_ref(&first), &recent),
    );
    server.put(
        "trade-law-digest.xml",
        feed_of("trade-law-digest", &[], &recent),
    );
    let sources = [
        ("eurlex", server.url("eurlex.xml")),
        ("trade-law-digest", server.url("trade-law-digest.xml")),
    ];
    let (dir, config) = config_of(&sources);
    poll_all(&config).await;

    // The next day's feed: a notice for another product and country, the first notice
    // reissued under a new id, and a law firm's digest carrying the first notice under its
    // own headline.
    let foil = notice_item(
        1,
        "Commission imposes definitive anti-dumping duty on aluminium foil from Brazil",
        "aluminium foil",
        "Brazil",
    );
    // The reissue adds a line, so it is no exact copy: the writer judges it on the texts,
    // the stored notice's read from its HTML.
    let mut reissue = notice_item(
        2,
        &format!("UPDATE 1-{tableware}"),
        "ceramic tableware",
        "the People's Republic of China",
    );
    reissue.3.push_str(&html_escape::encode_text(
        "<p>This version corrects the publication reference.</p>",
    ));
    server.put(
        "eurlex.xml",
        feed_of("eurlex", &[foil, reissue, first], &recent),
    );
    let mut digest = notice_item(
        9,
        "EU keeps duties on Chinese dinnerware for five more years",
        "ceramic tableware",
        "the People's Republic of China",
    );
    digest.0 = "digest-9".into();
    server.put(
        "trade-law-digest.xml",
        feed_of("trade-law-digest", &[digest], &recent),
    );
    poll_all(&config).await;

    // The third day's: a notice for a third product and, in the same poll, its reissue with a
    // clause added. Both nearly repeat the stored notices' text, whose stories the feed's own
    // items hold under other headlines: both are refused there, and the reissue joins the
    // new notice, the earlier entry of its poll under the same headline.
    let rod_title =
        "Commission imposes definitive anti-dumping duty on steel wire rod from Russia and Ukraine";
    let rod = notice_item(3, rod_title, "steel wire rod", "Russia and Ukraine");
    let rod_update = notice_item(
        4,
        &format!("UPDATE 2-{rod_title}, ends review"),
        "steel wire rod",
        "Russia and Ukraine",
    );
    server.put("eurlex.xml", feed_of("eurlex", &[rod, rod_update], &recent));
    poll_all(&config).await;

    let rows: Vec<(i64, String)> = row_pairs(
        &dir.path().join("tradefeed.db"),
        "SELECT story_id, title FROM entries ORDER BY id",
    );
    let story_of = |title: &str| rows.iter().find(|(_, t)| t == title).map(|(s, _)| *s);
    let tableware_story = story_of(tableware).unwrap();
    let foil_story =
        story_of("Commission imposes definitive anti-dumping duty on aluminium foil from Brazil")
            .unwrap();
    assert_ne!(
        foil_story, tableware_story,
        "the next notice is a story of its own: {rows:?}"
    );
    assert_eq!(
        story_of(&format!("UPDATE 1-{tableware}")),
        Some(tableware_story),
        "the feed's reissue joins its notice: {rows:?}"
    );
    assert_eq!(
        story_of("EU keeps duties on Chinese dinnerware for five more years"),
        Some(tableware_story),
        "another feed's copy joins on its text: {rows:?}"
    );
    let rod_story = story_of(rod_title).unwrap();
    assert!(
        rod_story != tableware_story && rod_story != foil_story,
        "the third notice is a story of its own: {rows:?}"
    );
    assert_eq!(
        story_of(&format!("UPDATE 2-{rod_title}, ends review")),
        Some(rod_story),
        "its reissue in the same poll joins it: {rows:?}"
    );
    assert_eq!(rows.len(), 6, "{rows:?}");
}

/// A wire's story as its own feed sends it: the first take, then revisions under new ids
/// whose headlines the wire rewords as the story moves ("UPDATE 1-", "UPDATE 2-"), each
/// keeping the text before it and adding to it. They declare themselves revisions: one
/// story, polled apart or in one poll, though a feed's items under other headlines are
/// otherwise its next templated notices.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wires_updates_under_reworded_headlines_join_their_story() {
    let recent = (chrono::Utc::now() - chrono::Duration::hours(2)).to_rfc2822();
    let take = "Canada will impose a 25 percent surtax on imports of steel and aluminium from \
        the United States from next month, Finance Minister Jean Tremblay said on Tuesday, in \
        retaliation for the doubled US duties on Canadian metals. The surtax covers about 12.6 \
        billion Canadian dollars of goods, from flat-rolled steel to aluminium extrusions, and \
        will stay in place until Washington lifts its measures, Tremblay told reporters in \
        Ottawa. Canadian steelmakers welcomed the move, while importers warned of higher costs \
        for builders and manufacturers already struggling with supply delays.";
    let more = " The US Trade Representative's office said it was reviewing the Canadian \
        measures and would respond as appropriate.";
    let further = " A White House spokesman later said the United States would answer dollar \
        for dollar.";
    let item = |n: usize, title: &str, text: String| {
        (
            format!("wire-{n}"),
            format!("https://wire.example/story/{n}"),
            title.to_string(),
            html_escape::encode_text(&format!("<p>{text}</p>")).into_owned(),
        )
    };
    let first = item(
        1,
        "Canada to impose 25% surtax on U.S. steel, aluminium in retaliation for tariffs",
        take.to_string(),
    );
    let update1 = item(
        2,
        "UPDATE 1-Canada hits back at US metals tariffs with 25% surtax, USTR reviewing",
        format!("{take}{more}"),
    );
    let update2 = item(
        3,
        "UPDATE 2-US vows 'dollar for dollar' response as Canada sets 25% metals surtax",
        format!("{take}{more}{further}"),
    );
    let server = FeedServer::start().await;
    let (dir, config) = config_of(&[("wire", server.url("wire.xml"))]);
    for feed in [
        feed_of("wire", std::slice::from_ref(&first), &recent),
        feed_of("wire", &[update1, first.clone()], &recent),
    ] {
        server.put("wire.xml", feed);
        poll_all(&config).await;
    }
    let rows: Vec<(i64, String)> = row_pairs(
        &dir.path().join("tradefeed.db"),
        "SELECT story_id, evidence FROM entries ORDER BY id",
    );
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0].0, rows[1].0, "the update joins its story: {rows:?}");

    // The first take and its second update in one poll of another feed.
    let stories = stories_of([("desk", feed_of("desk", &[update2, first], &recent))]).await;
    assert_eq!(stories.len(), 1, "one story: {stories:?}");
}

/// A wire corrects a figure in its item in place after an outlet ran the first version, then
/// issues "UPDATE 2-" of the corrected text under a new id: the update joins the story, in a
/// running daemon (the edit's signature reaches the index in memory) and in `fetch` passes
/// (the index rebuilt from the store). The story's copies then disagree on the figure, and
/// the update, matched against the outlet's earlier copy alone, was a second story.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wires_update_after_a_corrected_figure_joins_its_story() {
    let recent = (chrono::Utc::now() - chrono::Duration::hours(2)).to_rfc2822();
    let text = |share: &str| {
        format!(
            "The United States will raise tariffs on steel imports from China to 50 percent from \
             next month, the Commerce Department said on Tuesday, in a move aimed at what \
             officials called chronic overcapacity. Chinese steel accounts for about {share} \
             percent of US imports by volume, but officials said shipments routed through third \
             countries had grown sharply. The decision follows a review under Section 232 of the \
             1962 Trade Expansion Act. Beijing said it would take all necessary measures to \
             defend its companies, and the Commerce Ministry called the move protectionism. \
             Domestic producers welcomed the duties, while automakers warned of higher costs."
        )
    };
    let added = " The US Trade Representative's office said it would seek talks with allies \
        on coordinated action against subsidised steel.";
    let item = |id: &str, title: &str, text: String| {
        paragraph_item(
            id,
            &format!("https://wire.example/story/{id}"),
            title,
            &text,
        )
    };
    let title = "US raises tariffs on Chinese steel imports to 50%";
    let first = item("1", &format!("UPDATE 1-{title}"), text("2"));
    let fixed = item("1", &format!("UPDATE 1-{title}"), text("3"));
    let update2 = item(
        "2",
        &format!("UPDATE 2-{title}"),
        format!("{}{added}", text("3")),
    );
    let outlet = paragraph_item(
        "outlet-1",
        "https://outlet.example/steel",
        title,
        &text("2"),
    );
    for running in [true, false] {
        let server = FeedServer::start().await;
        server.put(
            "outlet.xml",
            feed_of("outlet", std::slice::from_ref(&outlet), &recent),
        );
        let (dir, config) = config_of(&[
            ("wire", server.url("wire.xml")),
            ("outlet", server.url("outlet.xml")),
        ]);
        let pipeline = match running {
            true => Some(tradefeed::app::Pipeline::start(&config).await.unwrap()),
            false => None,
        };
        for wire in [
            vec![first.clone()],
            vec![fixed.clone()],
            vec![update2.clone(), fixed.clone()],
        ] {
            server.put("wire.xml", feed_of("wire", &wire, &recent));
            match &pipeline {
                Some(pipeline) => {
                    poll_all_in(pipeline, &config).await;
                }
                None => poll_all(&config).await,
            }
        }
        if let Some(pipeline) = pipeline {
            pipeline.store.close().await;
        }
        let rows: Vec<(i64, String)> = row_pairs(
            &dir.path().join("tradefeed.db"),
            "SELECT story_id, title FROM entries ORDER BY id",
        );
        assert_eq!(rows.len(), 3, "running {running}: {rows:?}");
        assert!(
            rows.iter().all(|(story, _)| *story == rows[0].0),
            "running {running}: one story: {rows:?}"
        );
    }
}

/// A feed reissues its item as "CORRECTED-" under a new id and link, a word or a figure
/// changed: the correction joins the story as the same item and, being the feed's latest
/// version of it, represents it (its title, link and text are served, the story's update time
/// moves), whether or not another outlet ran the first version. Before, a changed word left
/// the first version served, with the correction listed under "Also reported by" as if
/// another outlet had run it, and a changed figure ("figures differ" to the near-duplicate
/// index) made the correction a second story beside the item it corrects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feeds_correction_under_a_new_id_represents_its_story() {
    let recent = (chrono::Utc::now() - chrono::Duration::hours(2)).to_rfc2822();
    let text = |who: &str, share: &str| {
        format!(
            "Mexico and Japan signed a customs agreement on Monday that simplifies rules of \
             origin for car parts and steel, cutting paperwork for exporters on both sides. \
             {who} said the pact would take effect in March and cover about {share} percent of \
             bilateral trade. The deal allows exporters to certify origin themselves and sets up \
             a joint committee to settle disputes over tariff classification. Business groups in \
             both countries welcomed the agreement, which follows two years of talks."
        )
    };
    let item = |id: &str, title: &str, text: String| {
        paragraph_item(id, &format!("https://wire.example/{id}"), title, &text)
    };
    let title = "Mexico and Japan sign customs pact on rules of origin";
    let first = item("pact", title, text("Officials", "40"));
    let corrected_title = format!("CORRECTED-{title}");
    let corrections = [
        ("a word", text("Ministers", "40"), "Ministers said"),
        ("a figure", text("Officials", "45"), "about 45 percent"),
    ];
    let other = paragraph_item(
        "other-pact",
        "https://other.example/pact",
        title,
        &text("Officials", "40"),
    );
    for (changed, corrected_text, said) in corrections {
        let corrected = item("pact-corrected", &corrected_title, corrected_text);
        for with_other_outlet in [false, true] {
            let case = format!("{changed} changed, another outlet: {with_other_outlet}");
            let server = FeedServer::start().await;
            server.put("other.xml", feed_of("other", &[], &recent));
            let (dir, config) = config_of(&[
                ("wire", server.url("wire.xml")),
                ("other", server.url("other.xml")),
            ]);
            let db = dir.path().join("tradefeed.db");
            server.put(
                "wire.xml",
                feed_of("wire", std::slice::from_ref(&first), &recent),
            );
            poll_all(&config).await;
            // The other outlet's copy of the first version, after it.
            if with_other_outlet {
                server.put(
                    "other.xml",
                    feed_of("other", std::slice::from_ref(&other), &recent),
                );
                poll_all(&config).await;
            }
            let before: Vec<(i64, i64)> = row_pairs(&db, "SELECT id, updated FROM stories");
            server.put(
                "wire.xml",
                feed_of("wire", std::slice::from_ref(&corrected), &recent),
            );
            poll_all(&config).await;
            let stories: Vec<(String, String)> = row_pairs(&db, "SELECT title, link FROM stories");
            assert_eq!(
                stories,
                [(corrected.2.clone(), corrected.1.clone())],
                "{case}: one story, the correction represents it"
            );
            let text: Vec<(i64, String)> = row_pairs(&db, "SELECT id, text FROM stories");
            assert!(text[0].1.contains(said), "{case}: {text:?}");
            let after: Vec<(i64, i64)> = row_pairs(&db, "SELECT id, updated FROM stories");
            assert!(
                after[0].1 > before[0].1,
                "{case}: updated moves: {before:?} {after:?}"
            );
        }
    }
}

/// An Entity List rule as the export-control agency's feed lists them: every rule under the
/// same headline, the same text but for the four entities it adds.
fn entity_list_rule(
    n: usize,
    entities: [&str; 4],
    effective: &str,
) -> (String, String, String, String) {
    let [a, b, c, d] = entities;
    let text = format!(
        "<p>The Bureau of Industry and Security is amending the Export Administration \
         Regulations by adding four entities to the Entity List: {a}, {b}, {c} and {d}. These \
         entities have been determined by the End-User Review Committee to be acting contrary \
         to the national security or foreign policy interests of the United States, for \
         supporting the modernization of the People's Liberation Army through the acquisition \
         of items subject to the regulations.</p><p>A license is required for all items \
         subject to the EAR, and applications will be reviewed under a presumption of denial. \
         This rule is effective {effective}. For further information contact the Office of \
         the Assistant Secretary for Export Enforcement.</p>"
    );
    (
        format!("bis-rule-{n}"),
        format!("https://www.federalregister.example/documents/bis-{n}"),
        "Additions to the Entity List".to_string(),
        html_escape::encode_text(&text).into_owned(),
    )
}

/// One feed's templated rules under one headline, polled apart and together: each adds other
/// entities, so each is its own story, though the headlines are the same (the same item needs
/// one item's text too: `cluster::one_item_of_a_feed`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feeds_rules_under_one_headline_for_other_entities_stay_apart() {
    let recent = (chrono::Utc::now() - chrono::Duration::hours(3)).to_rfc2822();
    let server = FeedServer::start().await;
    let first = entity_list_rule(
        1,
        [
            "Nanjing Starwave Electronics",
            "Hefei Brightline Photonics",
            "Xi'an Tianhe Navigation",
            "Chengdu Redpeak Avionics",
        ],
        "December 2, 2026",
    );
    server.put(
        "bis.xml",
        feed_of("bis", std::slice::from_ref(&first), &recent),
    );
    let (dir, config) = config_of(&[("bis", server.url("bis.xml"))]);
    poll_all(&config).await;
    let second = entity_list_rule(
        2,
        [
            "Guangzhou Brightpath Semiconductor",
            "Wuhan Silverline Materials",
            "Shenyang Northstar Machinery",
            "Tianjin Harborview Logistics",
        ],
        "December 2, 2026",
    );
    let third = entity_list_rule(
        3,
        [
            "Kunming Highland Optics",
            "Harbin Frostline Aerospace",
            "Changsha Redriver Drones",
            "Qingdao Bluewave Marine",
        ],
        "December 3, 2026",
    );
    server.put("bis.xml", feed_of("bis", &[third, second, first], &recent));
    poll_all(&config).await;
    let rows: Vec<(i64, String)> = row_pairs(
        &dir.path().join("tradefeed.db"),
        "SELECT story_id, evidence FROM entries ORDER BY id",
    );
    let stories: std::collections::BTreeSet<i64> = rows.iter().map(|(s, _)| *s).collect();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(stories.len(), 3, "one story per rule: {rows:?}");
}

/// An official feed's batch of templated notices in one poll: the same regulation text but
/// for another product and country, under headlines that say which. They share most of their
/// text, but one feed's items under other headlines are not copies of each other: they stay
/// stories of their own. (Two feeds' notices are judged on the text: see the README's known
/// errors.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feeds_batch_of_templated_notices_in_one_poll_stays_apart() {
    let date = "Tue, 10 Nov 2026 08:00:00 GMT";
    let cases = [
        ("ceramic tableware", "the People's Republic of China"),
        ("steel wire rod", "Russia and Ukraine"),
        ("aluminium foil", "Brazil"),
    ];
    let items: Vec<(String, String, String, String)> = cases
        .iter()
        .enumerate()
        .map(|(n, (product, country))| {
            (
                format!("reg-{n}"),
                format!("https://eur-lex.example/reg/{n}"),
                format!(
                    "Commission imposes definitive anti-dumping duty on {product} from {country}"
                ),
                html_escape::encode_text(&anti_dumping_notice(product, country)).into_owned(),
            )
        })
        .collect();
    let stories = stories_of([("eurlex", feed_of("eurlex", &items, date))]).await;
    assert_eq!(stories.len(), 3, "one story per notice: {stories:?}");
}

/// Two feeds' templated notices: the same regulation text for another country (the shingles
/// of the two overlap as much as an edited copy's). A digest's notice for Kazakhstan is not
/// a copy of the official feed's for Angola: names swapped in place (`templated_siblings`),
/// two stories. A mirror's copy of the Angola notice, under its own headline and with its
/// credit line, still joins the Angola story, in whatever order the three are written: when
/// the Kazakhstan story is the best match of a later copy of the Angola notice, the next
/// candidate is the Angola story.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_feeds_templated_notices_for_other_countries_stay_apart() {
    siblings_stay_apart_in_three_orders("silicon metal", "Angola", "Kazakhstan").await;
}

/// A notice widened to another country: the digest's regulation on yarn from Brazil and
/// India is another action than the official feed's on yarn from Brazil alone (the name
/// added beside a shared one, in the text and the headline), and the mirror's copy of the
/// Brazil notice joins the Brazil story, in three orders of writing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_feeds_notice_widened_to_another_country_stays_apart() {
    siblings_stay_apart_in_three_orders("polyester yarn", "Brazil", "Brazil and India").await;
}

/// The official feed's notice on `product` from `country`, a mirror's edited copy of it under
/// its own headline, and a digest's notice for `other` (its templated sibling), polled in
/// three orders, each by passes of `fetch` (the near-duplicate index rebuilt from the store
/// each time) and by one running pipeline (the index kept in memory, and the copies the
/// CPU workers find in it left unscored, as in the daemon): two stories, the copy with the
/// official notice, and the notice that started the second story names the story it was
/// kept apart from.
async fn siblings_stay_apart_in_three_orders(product: &str, country: &str, other: &str) {
    let recent = (chrono::Utc::now() - chrono::Duration::hours(2)).to_rfc2822();
    let official_title =
        format!("Commission imposes definitive anti-dumping duty on {product} from {country}");
    let sibling_title =
        format!("Commission imposes definitive anti-dumping duty on {product} from {other}");
    let mirror_title = format!("{product} from {country}: EU duty imposed after expiry review");
    let official = notice_item(1, &official_title, product, country);
    // The mirror edits a few words and adds its credit line: the official notice is nearer
    // to its sibling (a word or two apart) than to this copy, so when both are stored the
    // sibling is its best match and this copy's story the runner-up.
    let mirror_html = anti_dumping_notice(product, country)
        .replace("has imposed a definitive", "imposed a definitive")
        .replace("The Commission found that", "It found that")
        .replace("Interested parties may request", "Parties can ask for")
        .replace("is binding in its entirety and", "is")
        + "<p>Republished by the Trade Law Mirror from the Official Journal.</p>";
    let mirror = (
        "mirror-2".to_string(),
        "https://mirror.example/2".to_string(),
        mirror_title.clone(),
        html_escape::encode_text(&mirror_html).into_owned(),
    );
    let mut sibling = notice_item(3, &sibling_title, product, other);
    (sibling.0, sibling.1) = ("digest-3".into(), "https://digest.example/3".into());
    // Each order of writing: the official notice, the mirror's copy and the digest's sibling
    // polled in three passes.
    let orders: [[usize; 3]; 3] = [[0, 1, 2], [2, 1, 0], [2, 0, 1]];
    for (order, running) in orders.into_iter().flat_map(|o| [(o, false), (o, true)]) {
        let feeds = [
            (
                "eurlex",
                feed_of("eurlex", std::slice::from_ref(&official), &recent),
            ),
            (
                "mirror",
                feed_of("mirror", std::slice::from_ref(&mirror), &recent),
            ),
            (
                "digest",
                feed_of("digest", std::slice::from_ref(&sibling), &recent),
            ),
        ];
        let server = FeedServer::start().await;
        let mut sources = Vec::new();
        for (name, _) in &feeds {
            server.put(&format!("{name}.xml"), feed_of(name, &[], &recent));
            sources.push((*name, server.url(&format!("{name}.xml"))));
        }
        let (dir, config) = config_of(&sources);
        let pipeline = match running {
            true => Some(tradefeed::app::Pipeline::start(&config).await.unwrap()),
            false => None,
        };
        let mut unscored = 0;
        for &i in &order {
            let (name, feed) = feeds[i].clone();
            server.put(&format!("{name}.xml"), feed);
            match &pipeline {
                Some(pipeline) => unscored += poll_all_in(pipeline, &config).await,
                None => poll_all(&config).await,
            }
        }
        if let Some(pipeline) = pipeline {
            pipeline.store.close().await;
            // The later notices met the index in memory, before the writer.
            assert!(unscored > 0, "{order:?}: no copy found by the CPU workers");
        }
        let order = (order, if running { "running" } else { "fetch" });
        let rows: Vec<(i64, String)> = row_pairs(
            &dir.path().join("tradefeed.db"),
            "SELECT story_id, title FROM entries ORDER BY id",
        );
        let story_of = |title: &str| rows.iter().find(|(_, t)| t == title).map(|(s, _)| *s);
        assert_eq!(rows.len(), 3, "{order:?}: {rows:?}");
        assert_ne!(
            story_of(&official_title),
            story_of(&sibling_title),
            "{order:?}: the notice for {other} is a story of its own: {rows:?}"
        );
        assert_eq!(
            story_of(&mirror_title),
            story_of(&official_title),
            "{order:?}: the mirror's copy joins the {country} notice: {rows:?}"
        );
        // The notice that started the second story says which story it was kept apart from.
        let evidence: Vec<(i64, String)> = row_pairs(
            &dir.path().join("tradefeed.db"),
            "SELECT story_id, evidence FROM entries WHERE evidence LIKE '%templated sibling%'",
        );
        assert_eq!(evidence.len(), 1, "{order:?}: {evidence:?}");
        let (own, why) = &evidence[0];
        let other_story = if Some(*own) == story_of(&official_title) {
            story_of(&sibling_title)
        } else {
            story_of(&official_title)
        };
        assert!(
            why.starts_with(&format!(
                "first appearance (not story {}:",
                other_story.unwrap()
            )),
            "{order:?}: {why}"
        );
    }
}
