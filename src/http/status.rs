//! The status page: latest stories of the default topic and every source's health.
//! Server-rendered HTML, no script, no external assets; every value is escaped.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

use super::{HttpError, HttpState};
use crate::classify::DEFAULT_TOPIC;
use crate::store::{Idle, StoreError, StoryQuery};

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

/// The `?q=` search text, if any, validated as on the feeds (given twice, it is refused).
fn search_text(raw: Option<&str>) -> Result<Option<String>, String> {
    let mut given = url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .filter(|(k, _)| k == "q")
        .map(|(_, v)| v);
    match (given.next(), given.next()) {
        (Some(_), Some(_)) => Err("q may be given only once".into()),
        (Some(v), None) => super::search_param(&v),
        (None, _) => Ok(None),
    }
}

/// The feeds a reader finds when given this page's address (feed autodiscovery, as `discover`
/// reads it too): on a search, that search's feeds; else the default topic's first (readers
/// that take one take the first), then the other topics' and `all`. Relative, as the page's
/// links are, so that they hold behind a proxy serving tradefeed under a path.
fn push_feed_alternates(
    html: &mut String,
    site_title: &str,
    search: Option<&str>,
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
        push(
            "all",
            &format!("?q={encoded}"),
            &format!("{site_title}: “{q}”"),
        );
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
    let search = match search_text(query.as_deref()) {
        Ok(search) => search,
        Err(message) => return HttpError(StatusCode::BAD_REQUEST, message).into_response(),
    };
    let topics = state
        .classifier
        .read()
        .expect("classifier lock poisoned")
        .topic_names();
    let topic = if topics.iter().any(|t| t == DEFAULT_TOPIC) {
        DEFAULT_TOPIC.to_string()
    } else {
        topics.first().cloned().unwrap_or_else(|| "all".into())
    };
    let stories = state
        .store
        .stories(StoryQuery {
            // A search looks through every story; otherwise show the default topic's latest.
            topic: (search.is_none() && topic != "all").then(|| topic.clone()),
            search: search.clone(),
            limit: if search.is_some() { 100 } else { 30 },
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
    // The same links as the feeds serve: no user-info, no tracking parameters.
    stories.iter_mut().for_each(super::redact::redact_story);
    let site = state.site.read().expect("site lock poisoned").clone();
    let now = Utc::now();

    let mut html = String::with_capacity(32 * 1024);
    html.push_str("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">");
    html.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    html.push_str(&format!("<title>{} — status</title>", esc(&site.title)));
    push_feed_alternates(&mut html, &site.title, search.as_deref(), &topic, &topics);
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
    html.push_str("</p>");

    html.push_str(&format!(
        "<form method=\"get\" action=\"./\" role=\"search\"><input type=\"search\" name=\"q\" \
         value=\"{}\" placeholder=\"Search stories (e.g. steel tariffs)\" size=\"40\"> \
         <button type=\"submit\">Search</button></form>",
        html_escape::encode_double_quoted_attribute(search.as_deref().unwrap_or(""))
    ));
    match &search {
        Some(q) => {
            let encoded: String = url::form_urlencoded::byte_serialize(q.as_bytes()).collect();
            html.push_str(&format!(
                "<h2>Stories matching “{}”</h2><p>Subscribe to this search: \
                 <a href=\"feeds/all.atom?q={encoded}\">Atom</a> \
                 <a href=\"feeds/all.rss?q={encoded}\">RSS</a> \
                 <a href=\"feeds/all.json?q={encoded}\">JSON</a></p><table>",
                esc(q)
            ));
        }
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
        let score = s.topics.iter().find(|t| t.topic == topic);
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
        let moved = s.moved_to.as_deref().map_or_else(String::new, |to| {
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
