//! The status page: latest stories of a topic (the default one unless `?topic=` names
//! another) or a search's matches, a page at a time, and every source's health.
//! Server-rendered HTML, no script, no external assets; every value is escaped.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

use super::{HttpError, HttpState};
use crate::classify::DEFAULT_TOPIC;
use crate::store::{Idle, StoreError, StoryCursor, StoryQuery};

/// `s` escaped for HTML text, without characters XML forbids and without the user-info of any
/// URL in it (an error text may quote a source's URL with its credentials).
fn esc(s: &str) -> String {
    html_escape::encode_text(&super::xml_safe(&super::redact_userinfo(s))).into_owned()
}

fn when(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "—".to_string(),
        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

/// Stories a page lists: the latest of a topic, or a search's newest matches.
const LATEST_PAGE: usize = 30;
const SEARCH_PAGE: usize = 100;

/// What the page's query asks for: `q`, `topic` and `before`, each at most once (given twice,
/// refused, as on the feeds); other parameters are ignored.
#[derive(Debug, Default, PartialEq)]
struct PageParams {
    /// A search (`q`), validated as on the feeds; `None` for none or a blank one.
    search: Option<String>,
    /// The topic asked for (`topic`), not yet checked against the configured ones.
    topic: Option<String>,
    /// Where the page starts (`before`): after this story.
    before: Option<StoryCursor>,
}

fn page_params(raw: Option<&str>) -> Result<PageParams, String> {
    let mut params = PageParams::default();
    let mut seen = [false; 3];
    for (key, value) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        let Some(at) = ["q", "topic", "before"].iter().position(|k| *k == key) else {
            continue;
        };
        if seen[at] {
            return Err(format!("{key} may be given only once"));
        }
        seen[at] = true;
        match at {
            0 => params.search = super::search_param(&value)?,
            1 => params.topic = Some(value.into_owned()),
            _ => params.before = Some(parse_cursor(&value)?),
        }
    }
    Ok(params)
}

/// `before`'s text for the story a page ends at: `PUBLISHED.ID`, its publication time in Unix
/// seconds (negative before 1970) and its id, both in decimal. Short, and readable when
/// debugging (`date -d @PUBLISHED`), though only the page's own links need to make it.
fn cursor_text(cursor: &StoryCursor) -> String {
    format!("{}.{}", cursor.published.timestamp(), cursor.id)
}

/// A `before` value read strictly, as [`cursor_text`] writes it: an optional `-` and decimal
/// digits, a `.`, and a story id of decimal digits greater than 0 (no sign, no spaces), each a
/// 64-bit number and the time one a date can hold. Anything else is refused with a message
/// naming `before`, never read as a page it does not name.
fn parse_cursor(text: &str) -> Result<StoryCursor, String> {
    let refused = |why: &str| {
        format!(
            "before must be PUBLISHED.ID as this page's \"Older stories\" link gives it \
             (Unix seconds, a dot, a story id; e.g. 1794301200.42): {why}, got {}",
            super::echoed(text)
        )
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (published, id) = text.split_once('.').ok_or_else(|| refused("no dot"))?;
    if !digits(published.strip_prefix('-').unwrap_or(published)) || !digits(id) {
        return Err(refused("not two whole numbers"));
    }
    let published = published
        .parse::<i64>()
        .ok()
        .and_then(|secs| DateTime::from_timestamp(secs, 0))
        .ok_or_else(|| refused("the time is out of range"))?;
    let id = id
        .parse::<i64>()
        .map_err(|_| refused("the id is out of range"))?;
    if id == 0 {
        return Err(refused("story ids start at 1"));
    }
    Ok(StoryCursor { published, id })
}

/// A link to this page (relative, as the page's other links are, so that it holds behind a
/// proxy serving tradefeed under a path) with these parameters, percent-encoded and escaped
/// for an attribute.
fn page_href(search: Option<&str>, topic: Option<&str>, before: Option<&StoryCursor>) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    if let Some(q) = search {
        query.append_pair("q", q);
    }
    if let Some(topic) = topic {
        query.append_pair("topic", topic);
    }
    if let Some(before) = before {
        query.append_pair("before", &cursor_text(before));
    }
    let query = query.finish();
    let href = if query.is_empty() {
        "./".to_string()
    } else {
        format!("./?{query}")
    };
    html_escape::encode_double_quoted_attribute(&href).into_owned()
}

/// The feeds a reader finds when given this page's address (feed autodiscovery, as `discover`
/// reads it too): on a search, that search's feeds (of the topic it is narrowed to, else of
/// `all`); else the page's topic's first (readers that take one take the first), then the
/// other topics' and `all`. Relative, as the page's links are, so that they hold behind a
/// proxy serving tradefeed under a path.
fn push_feed_alternates(
    html: &mut String,
    site_title: &str,
    search: Option<&str>,
    search_topic: &str,
    topic: &str,
    topics: &[String],
) {
    const FORMATS: [(&str, &str, &str); 3] = [
        ("atom", "application/atom+xml", "Atom"),
        ("rss", "application/rss+xml", "RSS"),
        ("json", "application/feed+json", "JSON Feed"),
    ];
    let mut push = |feed: &str, query: &str, title: &str| {
        for (ext, mime, format) in FORMATS {
            html.push_str(&format!(
                "<link rel=\"alternate\" type=\"{mime}\" title=\"{} ({format})\" \
                 href=\"feeds/{}.{ext}{query}\">",
                html_escape::encode_double_quoted_attribute(&super::xml_safe(title)),
                html_escape::encode_double_quoted_attribute(feed),
            ));
        }
    };
    if let Some(q) = search {
        let encoded: String = url::form_urlencoded::byte_serialize(q.as_bytes()).collect();
        let title = if search_topic == "all" {
            format!("{site_title}: “{q}”")
        } else {
            format!("{site_title}: “{q}” in {search_topic}")
        };
        push(search_topic, &format!("?q={encoded}"), &title);
        return;
    }
    let others = topics.iter().map(String::as_str).filter(|t| *t != topic);
    for feed in std::iter::once(topic)
        .chain(others)
        .chain((topic != "all").then_some("all"))
    {
        push(feed, "", &format!("{site_title}: {feed}"));
    }
}

pub(super) async fn page(State(state): State<HttpState>, RawQuery(query): RawQuery) -> Response {
    let params = match page_params(query.as_deref()) {
        Ok(params) => params,
        Err(message) => return HttpError(StatusCode::BAD_REQUEST, message).into_response(),
    };
    let PageParams {
        search,
        topic: asked_topic,
        before,
    } = params;
    let topics = state
        .classifier
        .read()
        .expect("classifier lock poisoned")
        .topic_names();
    let default_topic = if topics.iter().any(|t| t == DEFAULT_TOPIC) {
        DEFAULT_TOPIC.to_string()
    } else {
        topics.first().cloned().unwrap_or_else(|| "all".into())
    };
    if let Some(asked) = &asked_topic
        && asked != "all"
        && !topics.contains(asked)
    {
        return HttpError(
            StatusCode::NOT_FOUND,
            format!("unknown topic {}", super::echoed(asked)),
        )
        .into_response();
    }
    let topic = asked_topic.clone().unwrap_or_else(|| default_topic.clone());
    // A search looks through every story, or through the topic's when one is asked for too;
    // the latest list is of the topic asked for, else the default one.
    let list_topic = match (&search, &asked_topic) {
        (Some(_), None) => "all".to_string(),
        _ => topic.clone(),
    };
    let page_size = if search.is_some() {
        SEARCH_PAGE
    } else {
        LATEST_PAGE
    };
    let stories = state
        .store
        .stories(StoryQuery {
            topic: (list_topic != "all").then(|| list_topic.clone()),
            search: search.clone(),
            before,
            // One more than shown tells whether there is an older page.
            limit: page_size + 1,
            ..Default::default()
        })
        .await;
    let sources = state.store.source_states().await;
    let (mut stories, sources) = match (stories, sources) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e @ StoreError::Search(_)), _) => return super::query_failed(e).into_response(),
        (Err(e), _) | (_, Err(e)) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "database unavailable: {}\n",
                    super::redact_userinfo(&e.to_string())
                ),
            )
                .into_response();
        }
    };
    let older = if stories.len() > page_size {
        stories.truncate(page_size);
        stories.last().map(StoryCursor::of)
    } else {
        None
    };
    // The same links as the feeds serve: no user-info, no tracking parameters.
    stories.iter_mut().for_each(super::redact::redact_story);
    let site = state.site.read().expect("site lock poisoned").clone();
    let now = Utc::now();
    // The score shown is the page's topic's; on `all`, the default topic's.
    let score_topic = if topic == "all" {
        &default_topic
    } else {
        &topic
    };

    let mut html = String::with_capacity(32 * 1024);
    html.push_str("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">");
    html.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    html.push_str(&format!("<title>{} — status</title>", esc(&site.title)));
    push_feed_alternates(
        &mut html,
        &site.title,
        search.as_deref(),
        &list_topic,
        &topic,
        &topics,
    );
    html.push_str(
        "<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:72rem}\
         table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;\
         padding:.3rem .5rem;text-align:left;vertical-align:top}.bad{color:#b00}\
         .why{color:#555;font-size:.9em}</style></head><body>",
    );
    html.push_str(&format!("<h1>{}</h1>", esc(&site.title)));
    if let Some(err) = &site.config_error {
        html.push_str(&format!(
            "<p class=\"bad\"><strong>Config reload failed; still running on the previous \
             config:</strong> {}</p>",
            esc(err)
        ));
    }
    if let Some(err) = &site.listen_error {
        html.push_str(&format!(
            "<p class=\"bad\"><strong>Not serving where the config says:</strong> {}</p>",
            esc(err)
        ));
    }
    html.push_str("<p>Feeds: ");
    for t in std::iter::once("all".to_string()).chain(topics.iter().cloned()) {
        for ext in ["atom", "rss", "json"] {
            html.push_str(&format!(
                "<a href=\"feeds/{t}.{ext}\">{t}.{ext}</a> ",
                t = esc(&t)
            ));
        }
    }
    html.push_str("</p><p>Topics: ");
    for t in std::iter::once("all").chain(topics.iter().map(String::as_str)) {
        let current = if search.is_none() && t == topic {
            " aria-current=\"page\""
        } else {
            ""
        };
        html.push_str(&format!(
            "<a href=\"{}\"{current}>{}</a> ",
            page_href(None, Some(t), None),
            esc(t)
        ));
    }
    html.push_str("</p>");

    html.push_str(&format!(
        "<form method=\"get\" action=\"./\" role=\"search\"><input type=\"search\" name=\"q\" \
         value=\"{}\" placeholder=\"Search stories (e.g. steel tariffs)\" size=\"40\"> \
         {}<button type=\"submit\">Search</button></form>",
        html_escape::encode_double_quoted_attribute(search.as_deref().unwrap_or("")),
        // On a topic's page, a search is of that topic's stories (the page says so).
        asked_topic.as_deref().map_or_else(String::new, |t| format!(
            "<input type=\"hidden\" name=\"topic\" value=\"{}\"> ",
            html_escape::encode_double_quoted_attribute(t)
        )),
    ));
    match &search {
        Some(q) => {
            let encoded: String = url::form_urlencoded::byte_serialize(q.as_bytes()).collect();
            let feed = esc(&list_topic);
            html.push_str(&format!(
                "<h2>Stories matching “{}”{}</h2><p>{}Subscribe to this search: \
                 <a href=\"feeds/{feed}.atom?q={encoded}\">Atom</a> \
                 <a href=\"feeds/{feed}.rss?q={encoded}\">RSS</a> \
                 <a href=\"feeds/{feed}.json?q={encoded}\">JSON</a></p><table>",
                esc(q),
                if list_topic == "all" {
                    String::new()
                } else {
                    format!(" in {}", esc(&list_topic))
                },
                if list_topic == "all" {
                    String::new()
                } else {
                    format!(
                        "<a href=\"{}\">Search all stories</a>. ",
                        page_href(Some(q), None, None)
                    )
                },
            ));
        }
        None if topic == "all" => html.push_str("<h2>Latest stories</h2><table>"),
        None => html.push_str(&format!("<h2>Latest {} stories</h2><table>", esc(&topic))),
    }
    html.push_str("<tr><th>Published</th><th>Story</th><th>Sources</th><th>Score</th></tr>");
    for s in &stories {
        let title = match &s.link {
            Some(link) if link.starts_with("http://") || link.starts_with("https://") => format!(
                "<a href=\"{}\" rel=\"noopener noreferrer\">{}</a>",
                html_escape::encode_double_quoted_attribute(link),
                esc(&s.title)
            ),
            _ => esc(&s.title),
        };
        let mut names: Vec<&str> = s.appearances.iter().map(|a| a.source.as_str()).collect();
        names.dedup();
        let score = s.topics.iter().find(|t| t.topic == *score_topic);
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}<div class=\"why\">{}</div></td></tr>",
            when(Some(s.published)),
            title,
            esc(&names.join(", ")),
            score.map_or(String::new(), |t| format!("{:.2}", t.score)),
            score.map_or(String::new(), |t| esc(&t.why.join("; "))),
        ));
    }
    html.push_str("</table>");
    // Older pages start after the last story shown, in the list's own order, so a page
    // neither skips nor repeats a story however many share a publication time.
    if before.is_some() || older.is_some() {
        html.push_str("<p>");
        if before.is_some() {
            html.push_str(&format!(
                "<a href=\"{}\">← Newest</a> ",
                page_href(search.as_deref(), asked_topic.as_deref(), None)
            ));
        }
        if let Some(last) = &older {
            html.push_str(&format!(
                "<a href=\"{}\" rel=\"next\">Older stories →</a>",
                page_href(search.as_deref(), asked_topic.as_deref(), Some(last))
            ));
        }
        html.push_str("</p>");
    }

    html.push_str("<h2>Sources</h2><table><tr><th>Name</th><th>Status</th><th>Last success</th>");
    html.push_str("<th>Next due</th><th>Entries</th><th>Failures</th><th>Last error</th></tr>");
    for s in &sources {
        let idle = s.idle_because();
        let status = if let Some(why) = idle {
            match (why, &s.disabled_reason) {
                (Idle::Stopped, Some(reason)) => format!("stopped: {reason}"),
                _ => why.as_str().to_string(),
            }
        } else if s.consecutive_failures > 0 {
            format!("failing ({})", s.last_outcome.as_deref().unwrap_or("error"))
        } else {
            s.last_outcome
                .clone()
                .unwrap_or_else(|| "not polled yet".into())
        };
        // A source that has brought nothing new for 14 days while polling fine is likely dead.
        let stale = idle.is_none()
            && s.last_success.is_some()
            && s.last_new_entry
                .is_none_or(|t| now - t > chrono::Duration::days(14));
        // A 301/308 seen on the source's last redirect: the feed is read, but from elsewhere,
        // and the operator should update the config (as `tradefeed sources` says).
        // Not for a source removed from the config: there is no config entry to update.
        let moved_to = s
            .moved_to
            .as_deref()
            .filter(|_| !matches!(idle, Some(Idle::RemovedFromConfig)));
        let moved = moved_to.map_or_else(String::new, |to| {
            format!(
                "<div class=\"bad\">moved permanently to {}: update the config</div>",
                esc(to)
            )
        });
        html.push_str(&format!(
            "<tr><td>{}</td><td class=\"{}\">{}{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td></tr>",
            esc(&s.name),
            if s.consecutive_failures > 0 || s.disabled_reason.is_some() {
                "bad"
            } else {
                ""
            },
            esc(&status),
            if stale { " (stale)" } else { "" },
            moved,
            when(s.last_success),
            // The stored due time of a source the scheduler skips is no promise: say why.
            idle.map_or_else(
                || when(s.next_due),
                |why| format!("not polled: {}", why.as_str())
            ),
            s.entries,
            s.consecutive_failures,
            esc(s.last_error.as_deref().unwrap_or("")),
        ));
    }
    html.push_str("</table></body></html>");
    let mut response = html.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(super::STATUS_PAGE_POLICY),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor(secs: i64, id: i64) -> StoryCursor {
        StoryCursor {
            published: DateTime::from_timestamp(secs, 0).unwrap(),
            id,
        }
    }

    #[test]
    fn a_cursor_reads_back_as_its_link_writes_it() {
        for (secs, id) in [
            (1_794_301_200, 42),
            (0, 1),
            (-14_182_940, 7),
            (1_794_301_200, i64::MAX),
        ] {
            let c = cursor(secs, id);
            let text = cursor_text(&c);
            assert_eq!(text, format!("{secs}.{id}"));
            assert_eq!(parse_cursor(&text), Ok(c), "{text}");
        }
    }

    #[test]
    fn a_malformed_cursor_is_refused_naming_before_and_saying_why() {
        for (text, why) in [
            ("", "no dot"),
            ("1794301200", "no dot"),
            ("1794301200.", "not two whole numbers"),
            (".42", "not two whole numbers"),
            ("-.42", "not two whole numbers"),
            ("1794301200.42.1", "not two whole numbers"),
            ("+1794301200.42", "not two whole numbers"),
            ("1794301200.+42", "not two whole numbers"),
            ("1794301200.-42", "not two whole numbers"),
            (" 1794301200.42", "not two whole numbers"),
            ("1794301200.42 ", "not two whole numbers"),
            ("1794301200,42", "no dot"),
            ("1e9.42", "not two whole numbers"),
            ("0x10.42", "not two whole numbers"),
            ("１７.42", "not two whole numbers"),
            ("1794301200.0", "story ids start at 1"),
            ("1794301200.000", "story ids start at 1"),
            ("1794301200.9223372036854775808", "the id is out of range"),
            ("9223372036854775808.1", "the time is out of range"),
            ("-9223372036854775809.1", "the time is out of range"),
            // Past what a date can hold (about 262,000 years either way).
            ("9223372036854775807.1", "the time is out of range"),
            ("-9000000000000.1", "the time is out of range"),
        ] {
            let message = parse_cursor(text).unwrap_err();
            assert!(
                message.starts_with("before must be "),
                "{text:?}: {message}"
            );
            assert!(message.contains(why), "{text:?}: {message}");
            assert!(
                message.contains(&format!("{text:?}")),
                "{text:?}: {message}"
            );
        }
    }

    #[test]
    fn page_parameters_are_each_read_once_and_others_are_ignored() {
        let read = |q: &str| page_params(Some(q));
        assert_eq!(read(""), Ok(PageParams::default()));
        assert_eq!(
            read("topic=steel&before=10.3&q=dumping+duties&utm_source=x&utm_source=y"),
            Ok(PageParams {
                search: Some("dumping duties".into()),
                topic: Some("steel".into()),
                before: Some(cursor(10, 3)),
            })
        );
        // A blank search is none, as on the feeds.
        assert_eq!(read("q=+").unwrap().search, None);
        for (query, name) in [
            ("before=10.3&before=10.3", "before"),
            ("before=10.3&q=a&before=9.1", "before"),
            ("topic=all&topic=steel", "topic"),
            ("topic=&topic=", "topic"),
            ("q=a&q=", "q"),
        ] {
            assert_eq!(
                read(query),
                Err(format!("{name} may be given only once")),
                "{query}"
            );
        }
        assert!(read("before=x").unwrap_err().starts_with("before must be"));
    }

    #[test]
    fn page_links_are_relative_percent_encoded_and_escaped() {
        assert_eq!(page_href(None, None, None), "./");
        assert_eq!(page_href(None, Some("steel"), None), "./?topic=steel");
        assert_eq!(
            page_href(Some("\"a&b\" <c> é"), Some("all"), Some(&cursor(-5, 9))),
            "./?q=%22a%26b%22+%3Cc%3E+%C3%A9&amp;topic=all&amp;before=-5.9"
        );
    }
}
