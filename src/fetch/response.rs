//! Turning one reqwest response (or error) into our outcome types: status mapping, validators,
//! Retry-After, redirect targets and the size-capped body read.

use std::error::Error as _;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use reqwest::header::{self, HeaderMap};
use url::Url;

use super::{
    FetchError, FetchLimits, FetchOutcome, FetchRequest, FetchedFeed, MAX_RETRY_AFTER, Validators,
    check_http_url, header_value,
};

/// Maps the final (non-redirect) response to an outcome, reading the body within the limit.
pub(super) async fn finish(
    mut response: reqwest::Response,
    request: &FetchRequest,
    url: Url,
    permanent_redirect: Option<String>,
    limits: &FetchLimits,
) -> Result<FetchOutcome, FetchError> {
    let status = response.status().as_u16();
    let headers = response.headers();
    match status {
        304 => {
            // Only a conditional request can be answered 304 (RFC 9110 §15.4.5): without
            // validators sent, taking it as "unchanged" would leave the source empty for good.
            if header_value(request.etag.as_deref()).is_none()
                && header_value(request.last_modified.as_deref()).is_none()
            {
                return Err(FetchError::UnaskedNotModified);
            }
            // A 304 may omit validators it did not change (RFC 9110 §15.4.5): keep ours.
            let mut validators = validators(headers, permanent_redirect);
            validators.etag = validators.etag.or_else(|| request.etag.clone());
            validators.last_modified = validators
                .last_modified
                .or_else(|| request.last_modified.clone());
            return Ok(FetchOutcome::NotModified(validators));
        }
        410 => return Err(FetchError::Gone),
        429 | 503 => {
            let retry_after = headers
                .get(header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| parse_retry_after(value, Utc::now()));
            return Err(FetchError::RateLimited {
                status,
                retry_after,
            });
        }
        200..=299 => {}
        _ => return Err(FetchError::Status(status)),
    }

    let limit = limits.max_body_bytes;
    // The declared length (compressed, if encoded) is checked before reading anything: a body
    // that is already too large on the wire will not get smaller by inflating.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(FetchError::TooLarge { limit });
    }
    let validators = validators(headers, permanent_redirect);
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    // Left in place by the client only when it did not decode the coding itself.
    let content_encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);

    // Never trust the declared length for more than the limit, and start modestly otherwise.
    let initial = response
        .content_length()
        .unwrap_or(0)
        .min(limit)
        .min(1024 * 1024);
    let mut body = Vec::with_capacity(usize::try_from(initial).unwrap_or(0));
    // `chunk` yields decompressed bytes, so a small gzip bomb stops at the limit, not at its
    // inflated size.
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| classify(&error, limits))?
    {
        if body.len() as u64 + chunk.len() as u64 > limit {
            return Err(FetchError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    if still_gzipped(content_encoding.as_deref(), &body) {
        // Up to `limit` bytes of inflating: CPU work, kept off the async threads.
        body = tokio::task::spawn_blocking(move || gunzip(&body, limit))
            .await
            .map_err(|error| {
                FetchError::Transport(format!("inflating the gzip body failed: {error}"))
            })??;
    }
    tracing::Span::current().record("bytes", body.len());
    Ok(FetchOutcome::Fetched(FetchedFeed {
        final_url: url.to_string(),
        content_type,
        body,
        validators,
    }))
}

/// The first two bytes of every gzip member (RFC 1952 §2.3.1).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Whether the body still carries a gzip layer after the client's own decoding.
///
/// The client inflates only a `Content-Encoding` of exactly `gzip`. Coding names are
/// case-insensitive and `x-gzip` is `gzip` (RFC 9110 §8.4.1, §8.4.1.3), so `GZIP` or `x-gzip`
/// arrive compressed. A body that starts with the gzip magic is one too, whatever the headers
/// say: a `.xml.gz` file served with no coding, or a feed compressed twice. No feed can start
/// with byte 0x1f (neither XML nor JSON may), so the magic cannot be the start of a plain feed.
fn still_gzipped(content_encoding: Option<&str>, body: &[u8]) -> bool {
    if body.is_empty() {
        return false;
    }
    body.starts_with(&GZIP_MAGIC) || content_encoding.is_some_and(names_only_gzip)
}

/// A Content-Encoding list whose one coding, besides `identity`, is gzip in any spelling.
fn names_only_gzip(value: &str) -> bool {
    let mut codings = value
        .split(',')
        .map(str::trim)
        .filter(|coding| !coding.is_empty() && !coding.eq_ignore_ascii_case("identity"));
    match (codings.next(), codings.next()) {
        (Some(coding), None) => {
            coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip")
        }
        _ => false,
    }
}

/// Inflates one gzip layer (all members of it), stopping as soon as the output passes `limit`:
/// a bomb costs its compressed size plus the limit, never its inflated size.
fn gunzip(compressed: &[u8], limit: u64) -> Result<Vec<u8>, FetchError> {
    use std::io::Read as _;
    let mut decoder = flate2::read::MultiGzDecoder::new(compressed);
    let mut inflated = Vec::with_capacity(compressed.len().saturating_mul(4).min(1024 * 1024));
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = match decoder.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => {
                return Err(FetchError::Transport(format!(
                    "error decoding gzip-compressed body: {error}"
                )));
            }
        };
        if inflated.len() as u64 + read as u64 > limit {
            return Err(FetchError::TooLarge { limit });
        }
        inflated.extend_from_slice(&buffer[..read]);
    }
    Ok(inflated)
}

/// The absolute redirect target, if the response has a Location header.
pub(super) fn location(
    response: &reqwest::Response,
    base: &Url,
) -> Result<Option<Url>, FetchError> {
    let Some(value) = response.headers().get(header::LOCATION) else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| {
        FetchError::InvalidUrl(format!("redirect from {base} to a non-ASCII Location"))
    })?;
    resolve_location(base, text).map(Some)
}

/// Resolves a Location value (relative references allowed, RFC 9110 §10.2.2) against `base`.
fn resolve_location(base: &Url, location: &str) -> Result<Url, FetchError> {
    let target = base.join(location.trim()).map_err(|error| {
        FetchError::InvalidUrl(format!("redirect from {base} to {location:?}: {error}"))
    })?;
    check_http_url(target)
}

/// ETag and Last-Modified of a response, plus the redirect fact.
fn validators(headers: &HeaderMap, permanent_redirect: Option<String>) -> Validators {
    let text = |name| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
            .filter(|value| !value.is_empty())
            .map(str::to_string)
    };
    Validators {
        etag: text(header::ETAG),
        last_modified: text(header::LAST_MODIFIED),
        permanent_redirect,
    }
}

/// Parses `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP date, as an absolute time
/// at most [`MAX_RETRY_AFTER`] after `now`.
///
/// Delay-seconds is any run of digits, so a number too large for any integer type is still a
/// well-formed value asking for longer than a week: it gets the week. A value that is neither
/// form (`soon`, `-5`, `1.5`, a date that does not parse) says nothing about when, and is
/// ignored as an invalid field value is (RFC 9110 §5.5; curl and most pollers do the same):
/// the source's usual backoff applies, which a server that really is down keeps growing.
pub(super) fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let value = value.trim();
    let at = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Past u64 (or chrono's range) it is longer than the cap in any case.
        let seconds = value
            .parse::<u64>()
            .ok()
            .and_then(|s| i64::try_from(s).ok())
            .and_then(chrono::TimeDelta::try_seconds)
            .unwrap_or(MAX_RETRY_AFTER);
        now.checked_add_signed(seconds.min(MAX_RETRY_AFTER))?
    } else {
        let date: SystemTime = httpdate::parse_http_date(value).ok()?;
        DateTime::<Utc>::from(date)
    };
    let latest = now
        .checked_add_signed(MAX_RETRY_AFTER)
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    Some(at.min(latest))
}

/// Maps a reqwest error to our error, keeping the cause chain in the message.
pub(super) fn classify(error: &reqwest::Error, limits: &FetchLimits) -> FetchError {
    if super::guard::refused_by_resolver(error) {
        return FetchError::PrivateRedirect;
    }
    if error.is_timeout() {
        return FetchError::Timeout(if error.is_connect() {
            limits.connect_timeout
        } else {
            limits.total_timeout
        });
    }
    let chain = error_chain(error);
    if error.is_connect() {
        FetchError::Connect(chain)
    } else if error.is_builder() {
        FetchError::InvalidUrl(chain)
    } else {
        FetchError::Transport(chain)
    }
}

/// `error: cause: cause ...`, skipping a cause whose text the previous one already contains.
pub(super) fn error_chain(error: &reqwest::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_an_http_date() {
        let now = at(2026, 11, 27, 12, 0, 0);
        let cases: &[(&str, Option<DateTime<Utc>>)] = &[
            ("120", Some(at(2026, 11, 27, 12, 2, 0))),
            ("0", Some(now)),
            (" 3600 ", Some(at(2026, 11, 27, 13, 0, 0))),
            (
                "Fri, 27 Nov 2026 12:30:00 GMT",
                Some(at(2026, 11, 27, 12, 30, 0)),
            ),
            // The obsolete forms an HTTP date may take.
            (
                "Friday, 27-Nov-26 12:30:00 GMT",
                Some(at(2026, 11, 27, 12, 30, 0)),
            ),
            (
                "Fri Nov 27 12:30:00 2026",
                Some(at(2026, 11, 27, 12, 30, 0)),
            ),
            // A date in the past is reported as is; the caller decides.
            (
                "Thu, 01 Jan 2026 00:00:00 GMT",
                Some(at(2026, 1, 1, 0, 0, 0)),
            ),
            // Not delay-seconds nor a date: no time given, the usual backoff applies.
            ("", None),
            ("-5", None),
            ("1.5", None),
            ("soon", None),
            ("120s", None),
            ("Fri, 27 Nov 2026", None),
            // Numbers too large for any type still ask for longer than a week: the week.
            ("99999999999999999999", Some(at(2026, 12, 4, 12, 0, 0))),
            ("99999999999999999999999", Some(at(2026, 12, 4, 12, 0, 0))),
            ("9223372036854775807", Some(at(2026, 12, 4, 12, 0, 0))),
            ("18446744073709551616", Some(at(2026, 12, 4, 12, 0, 0))),
            ("999999999", Some(at(2026, 12, 4, 12, 0, 0))),
        ];
        for (value, expected) in cases {
            assert_eq!(parse_retry_after(value, now), *expected, "{value:?}");
        }
    }

    #[test]
    fn a_retry_after_more_than_a_week_ahead_is_cut_to_a_week_and_the_message_says_so() {
        let now = at(2026, 11, 27, 12, 0, 0);
        let week = at(2026, 12, 4, 12, 0, 0);
        for value in ["8208452427198", "604801", "Fri, 31 Dec 9999 23:59:59 GMT"] {
            let retry_after = parse_retry_after(value, now);
            assert_eq!(retry_after, Some(week), "{value:?}");
            let error = FetchError::RateLimited {
                status: 429,
                retry_after,
            };
            assert_eq!(
                error.to_string(),
                "HTTP 429, retry after 2026-12-04 12:00:00 UTC"
            );
        }
        assert_eq!(
            parse_retry_after("604800", now),
            Some(week),
            "a week exactly"
        );
        // Near the end of time the cap saturates rather than panics.
        let end = DateTime::<Utc>::MAX_UTC;
        assert_eq!(
            parse_retry_after("86400", end),
            None,
            "past the end of time"
        );
        assert_eq!(
            parse_retry_after(
                "Fri, 31 Dec 9999 23:59:59 GMT",
                end - chrono::Duration::days(1)
            ),
            Some(at(9999, 12, 31, 23, 59, 59))
        );
    }

    #[test]
    fn locations_resolve_against_the_current_url() {
        let base = Url::parse("https://example.org/news/feed.xml?x=1").unwrap();
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("https://other.example/rss", Ok("https://other.example/rss")),
            ("/feeds/all.atom", Ok("https://example.org/feeds/all.atom")),
            ("atom.xml", Ok("https://example.org/news/atom.xml")),
            ("../top.xml", Ok("https://example.org/top.xml")),
            ("//cdn.example/feed", Ok("https://cdn.example/feed")),
            ("?page=2", Ok("https://example.org/news/feed.xml?page=2")),
            ("http://example.org/feed", Ok("http://example.org/feed")),
            ("ftp://example.org/feed", Err("invalid_url")),
            ("javascript:alert(1)", Err("invalid_url")),
            ("http://[::1", Err("invalid_url")),
        ];
        for (location, expected) in cases {
            let result = resolve_location(&base, location);
            match expected {
                Ok(url) => assert_eq!(result.as_ref().map(Url::as_str), Ok(*url), "{location:?}"),
                Err(kind) => assert_eq!(
                    result.as_ref().map_err(FetchError::kind).err(),
                    Some(*kind),
                    "{location:?}"
                ),
            }
        }
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write as _;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn gzip_in_any_spelling_or_by_its_magic_is_still_to_be_inflated() {
        let compressed = gzip(b"<rss/>");
        let cases: &[(Option<&str>, &[u8], bool)] = &[
            (None, b"<rss/>", false),
            (None, &compressed, true),
            // What the client decodes itself never reaches us with its header.
            (Some("x-gzip"), &compressed, true),
            (Some("GZIP"), &compressed, true),
            (Some(" X-Gzip "), &compressed, true),
            (Some("identity, x-gzip"), &compressed, true),
            // Claimed but not gzip: inflating it reports the broken body.
            (Some("x-gzip"), b"<rss/>", true),
            (Some("identity"), b"<rss/>", false),
            (Some("br"), b"<rss/>", false),
            (Some("DEFLATE"), b"<rss/>", false),
            (Some("x-gzip, br"), b"<rss/>", false),
            (Some(""), b"<rss/>", false),
            (Some("x-gzip"), b"", false),
        ];
        for (coding, body, expected) in cases {
            assert_eq!(still_gzipped(*coding, body), *expected, "{coding:?}");
        }
    }

    #[test]
    fn gunzip_allows_exactly_the_limit_and_not_a_byte_more() {
        let data = vec![b'x'; 200_000];
        let compressed = gzip(&data);
        assert_eq!(gunzip(&compressed, 200_000), Ok(data));
        assert_eq!(
            gunzip(&compressed, 199_999),
            Err(FetchError::TooLarge { limit: 199_999 })
        );
        let broken = gunzip(&compressed[..compressed.len() / 2], 200_000);
        assert_eq!(broken.as_ref().map_err(FetchError::kind), Err("transport"));
    }

    #[test]
    fn validators_are_read_from_headers_and_blank_ones_ignored() {
        let mut headers = HeaderMap::new();
        headers.insert(header::ETAG, "\"v1\"".parse().unwrap());
        headers.insert(header::LAST_MODIFIED, "  ".parse().unwrap());
        let validators = validators(&headers, Some("https://example.org/new".to_string()));
        assert_eq!(
            validators,
            Validators {
                etag: Some("\"v1\"".to_string()),
                last_modified: None,
                permanent_redirect: Some("https://example.org/new".to_string()),
            }
        );
    }
}
