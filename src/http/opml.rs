//! `GET /sources.opml`: the sources the daemon polls, as an OPML 2.0 subscription list,
//! without the user-info of their URLs.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::HttpState;
use crate::opml::{self, OpmlFeed};

/// Serves every source still listed in the config (the database also remembers removed ones).
/// Tags are not stored in the database, so the list is flat.
pub(super) async fn sources(State(state): State<HttpState>) -> Response {
    let states = match state.store.source_states().await {
        Ok(states) => states,
        Err(e) => {
            tracing::error!(error = %e, "source list query failed");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "the database is unavailable; try again shortly\n",
            )
                .into_response();
        }
    };
    let feeds: Vec<OpmlFeed> = states
        .into_iter()
        .filter(|s| s.in_config)
        .map(|s| OpmlFeed {
            name: s.name,
            // The credentials of a URL such as `http://user:secret@host/feed` stay private.
            url: crate::domain::url_for_display(&s.url),
            tags: Vec::new(),
        })
        .collect();
    let title = state.site.read().expect("site lock poisoned").title.clone();
    let mut response = opml::render(&title, chrono::Utc::now(), &feeds).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/x-opml; charset=utf-8"),
    );
    response
}
