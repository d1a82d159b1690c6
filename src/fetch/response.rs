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
    // Left in place by the client only when it did not decode the coding itself. Field lines
    // of one name make one list (RFC 9110 5.3): `deflate` then `gzip` on two lines is the
    // list `deflate, gzip`.
    let content_encoding = headers
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .fold(None, |list: Option<String>, value| {
            Some(list.map_or_else(|| value.to_string(), |list| format!("{list}, {value}")))
        });

    // Never trust the declared length for more than the limit, and start modestly otherwise.
    let initial = response
        .content_length()
        .unwrap_or(0)
        .min(limit)
        .min(1024 * 1024);
    let mut body = Vec::with_capacity(usize::try_from(initial).unwrap_or(0));
    // `chunk` yields the bytes as sent for gzip and deflate (inflated below, within the same
    // limit) and decompressed ones for brotli, so a small brotli bomb stops at the limit, not
    // at its inflated size.
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
    if needs_decoding(content_encoding.as_deref(), &body) {
        // Up to `limit` bytes of inflating per layer: CPU work, kept off the async threads.
        body = tokio::task::spawn_blocking(move || {
            decode_body(content_encoding.as_deref(), body, limit)
        })
        .await
        .map_err(|error| FetchError::Transport(format!("inflating the body failed: {error}")))??;
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

/// Whether [`decode_body`] has anything to do: a content coding the client left to us (all
/// but a lone `br`, which it decodes as it reads and removes from the headers), or a body that
/// starts with the gzip magic.
fn needs_decoding(content_encoding: Option<&str>, body: &[u8]) -> bool {
    !body.is_empty()
        && (body.starts_with(&GZIP_MAGIC)
            || content_encoding.is_some_and(|value| listed_codings(value).next().is_some()))
}

/// The most content codings a body may be decoded through, the gzip file found inside counted
/// (real servers apply one; a proxy compressing again makes two): each layer may inflate up to
/// the size limit, so their number is bounded too.
const MAX_CODING_LAYERS: usize = 4;

/// Removes the body's content codings, each layer inflated within `limit` (a bomb costs its
/// compressed size plus the limit, never its inflated size, however many layers it hides in).
///
/// Content-Encoding lists the codings in the order they were applied (RFC 9110 §8.4), so they
/// are removed last to first, at most [`MAX_CODING_LAYERS`] of them. The clients leave all but
/// a lone `br` to us (that one is decoded as it is read), so that what lenient readers accept
/// can be: coding names are case-insensitive and `x-gzip` is gzip (RFC 9110 §8.4.1,
/// §8.4.1.3); a `deflate` body is meant to be zlib-wrapped (RFC 9110 §8.4.1.2) but some
/// servers send the raw deflate stream, which is inflated as such (see [`inflate_deflate`]); a
/// body labelled gzip or deflate that is neither but starts as a feed does (`<` or `{`, after
/// a byte-order mark and white space) was sent uncompressed with a wrong label, and is taken
/// as sent, and so is one under a coding we do not decode (`none`, `UTF-8` and the like are
/// seen); anything else under such a coding (brotli in a list, `zstd`, `compress`) is an error
/// naming it. Then a body that still starts with the gzip magic is inflated once more,
/// whatever the headers say: a `.xml.gz` file served with no coding, or a feed compressed
/// twice. No feed can start with byte 0x1f (neither XML nor JSON may), so the magic cannot be
/// the start of a plain feed.
fn decode_body(
    content_encoding: Option<&str>,
    mut body: Vec<u8>,
    limit: u64,
) -> Result<Vec<u8>, FetchError> {
    let codings: Vec<&str> =
        content_encoding.map_or_else(Vec::new, |value| listed_codings(value).collect());
    if codings.len() > MAX_CODING_LAYERS {
        return Err(FetchError::Transport(format!(
            "Content-Encoding lists {} codings, more than the {MAX_CODING_LAYERS} layers \
             tradefeed decodes",
            codings.len()
        )));
    }
    for coding in codings.iter().rev() {
        if body.is_empty() {
            break;
        }
        body = decode_layer(coding, body, limit)?;
    }
    // Gzip files inside, each a layer of the [`MAX_CODING_LAYERS`] (a feed compressed three
    // times and labelled once was left with a layer on, review session 28).
    let mut layers = codings.len();
    while body.starts_with(&GZIP_MAGIC) {
        if layers == MAX_CODING_LAYERS {
            return Err(FetchError::Transport(format!(
                "body still gzip-compressed after {MAX_CODING_LAYERS} layers of compression, \
                 the most tradefeed decodes"
            )));
        }
        body = gunzip(&body, limit)?;
        layers += 1;
    }
    Ok(body)
}

/// Removes one layer of content `coding` from `body`, as [`decode_body`] describes.
fn decode_layer(coding: &str, body: Vec<u8>, limit: u64) -> Result<Vec<u8>, FetchError> {
    if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
        if body.starts_with(&GZIP_MAGIC) || !starts_as_a_feed(&body) {
            return gunzip(&body, limit);
        }
        return Ok(body);
    }
    // A gzip file under another label is left to the gzip pass after the listed layers, as
    // one under no label is.
    if body.starts_with(&GZIP_MAGIC) {
        return Ok(body);
    }
    if coding.eq_ignore_ascii_case("deflate") {
        return inflate_deflate(body, limit);
    }
    if starts_as_a_feed(&body) {
        return Ok(body);
    }
    // The client decodes brotli only under a Content-Encoding of exactly `br`.
    let message = if coding.eq_ignore_ascii_case("br") {
        "body brotli-compressed under a Content-Encoding other than `br` alone: tradefeed \
         decodes brotli only as the one coding, spelled `br`"
            .to_string()
    } else {
        let coding: String = coding.chars().take(40).collect();
        format!(
            "body encoded as {coding:?}, a content coding tradefeed does not decode (it \
             decodes gzip, x-gzip, deflate and br)"
        )
    };
    Err(FetchError::Transport(message))
}

/// The codings of a Content-Encoding list, `identity` (no coding) left out, in the order
/// listed.
fn listed_codings(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(',')
        .map(str::trim)
        .filter(|coding| !coding.is_empty() && !coding.eq_ignore_ascii_case("identity"))
}

/// Whether a body starts as an XML or JSON feed does: `<` or `{` after an optional byte-order
/// mark and white space, or a UTF-16 byte-order mark. No gzip or zlib stream starts so (gzip
/// starts 0x1f 0x8b; see [`inflate_deflate`] for zlib, and for the raw deflate streams that
/// may).
fn starts_as_a_feed(body: &[u8]) -> bool {
    if body.starts_with(&[0xff, 0xfe]) || body.starts_with(&[0xfe, 0xff]) {
        return true;
    }
    let body = body.strip_prefix(&[0xef, 0xbb, 0xbf]).unwrap_or(body);
    body.iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'<' || b == b'{')
}

/// Whether `body` starts with a zlib header (RFC 1950 §2.2): deflate, a window of at most
/// 32 KiB, and the check bits right.
fn has_zlib_header(body: &[u8]) -> bool {
    match body {
        [cmf, flg, ..] => {
            cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0
        }
        _ => false,
    }
}

/// Inflates a `deflate` body: zlib-wrapped as RFC 9110 says, else the raw deflate stream some
/// servers send, else, when it is neither and starts as a feed does, the body as sent (a plain
/// feed labelled deflate, as [`decode_body`] takes one labelled gzip).
///
/// A raw stream cannot pass for a zlib header: its first block header would have to be a
/// non-final stored block (the low three bits 0) with its padding bit set, and encoders pad
/// with zeros; nor can a plain feed (`<`, `{`, white space and the byte-order mark are no
/// zlib header). But a raw stream may well start with `<`, `{` or white space (they are valid
/// block headers), so a body is taken as sent only when reading it as raw deflate fails or
/// stops before its end (what follows the final block being more than the white space and
/// zero padding other clients ignore): a real stream ends where the body does.
fn inflate_deflate(body: Vec<u8>, limit: u64) -> Result<Vec<u8>, FetchError> {
    if has_zlib_header(&body) {
        return inflate(
            flate2::read::ZlibDecoder::new(body.as_slice()),
            body.len(),
            limit,
            "deflate",
        );
    }
    let mut inflated = Vec::with_capacity(body.len().saturating_mul(4).min(1024 * 1024));
    // Over a slice, the decoder reads no further than the stream's final block.
    let mut raw = flate2::bufread::DeflateDecoder::new(body.as_slice());
    let read = inflate_into(&mut raw, &mut inflated, limit, "deflate");
    let ended_with_the_body = read.is_ok()
        && raw
            .into_inner()
            .iter()
            .all(|&b| b.is_ascii_whitespace() || b == 0);
    match read {
        Err(too_large @ FetchError::TooLarge { .. }) => Err(too_large),
        _ if !ended_with_the_body && starts_as_a_feed(&body) => Ok(body),
        Ok(()) => Ok(inflated),
        Err(broken) => Err(broken),
    }
}

/// Inflates one gzip layer, member after member while another starts with the gzip magic,
/// stopping as soon as the output passes `limit`: a bomb costs its compressed size plus the
/// limit, never its inflated size. Bytes after the last member (a newline, the zero padding
/// some servers add) are ignored, as other clients ignore them and our HTTP client's own
/// decoder did: read as the start of one more member, they failed a feed that had worked.
fn gunzip(compressed: &[u8], limit: u64) -> Result<Vec<u8>, FetchError> {
    let mut inflated = Vec::with_capacity(compressed.len().saturating_mul(4).min(1024 * 1024));
    let mut rest = compressed;
    loop {
        // Over a slice, the decoder reads no further than its member's trailer.
        let mut member = flate2::bufread::GzDecoder::new(rest);
        inflate_into(&mut member, &mut inflated, limit, "gzip")?;
        rest = member.into_inner();
        if !rest.starts_with(&GZIP_MAGIC) {
            break;
        }
    }
    Ok(inflated)
}

/// Reads `decoder` to its end, stopping as soon as the output passes `limit`; a broken stream is
/// a transport error naming the `coding`.
fn inflate(
    mut decoder: impl std::io::Read,
    compressed_len: usize,
    limit: u64,
    coding: &str,
) -> Result<Vec<u8>, FetchError> {
    let mut inflated = Vec::with_capacity(compressed_len.saturating_mul(4).min(1024 * 1024));
    inflate_into(&mut decoder, &mut inflated, limit, coding)?;
    Ok(inflated)
}

/// [`inflate`] into `inflated`, counting what it already holds against `limit`.
fn inflate_into(
    decoder: &mut impl std::io::Read,
    inflated: &mut Vec<u8>,
    limit: u64,
    coding: &str,
) -> Result<(), FetchError> {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = match decoder.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => {
                return Err(FetchError::Transport(format!(
                    "error decoding {coding}-compressed body: {error}"
                )));
            }
        };
        if inflated.len() as u64 + read as u64 > limit {
            return Err(FetchError::TooLarge { limit });
        }
        inflated.extend_from_slice(&buffer[..read]);
    }
    Ok(())
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
/// the source's usual backoff applies, which a server that really is down keeps growing. A
/// date already past asks for no wait (RFC 9110: a delay of zero or less) and gives no time
/// either: shown, "retry after 1970-01-01" read as if the server had asked for something.
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
        let at = DateTime::<Utc>::from(date);
        if at < now {
            return None;
        }
        at
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
            // A date already past asks for no wait: no time (the usual backoff applies).
            ("Thu, 01 Jan 2026 00:00:00 GMT", None),
            ("Thu, 01 Jan 1970 00:00:00 GMT", None),
            ("Fri, 27 Nov 2026 11:59:59 GMT", None),
            ("Fri, 27 Nov 2026 12:00:00 GMT", Some(now)),
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
        let near_end = end - chrono::Duration::days(1);
        assert_eq!(
            parse_retry_after("3600", near_end),
            Some(near_end + chrono::Duration::hours(1)),
            "the week's cap is past the end of time"
        );
        // Every HTTP date is long past by then: no wait asked.
        assert_eq!(
            parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", near_end),
            None
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

    fn deflate(data: &[u8], zlib: bool) -> Vec<u8> {
        use std::io::Write as _;
        let level = flate2::Compression::default();
        if zlib {
            let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), level);
            encoder.write_all(data).unwrap();
            encoder.finish().unwrap()
        } else {
            let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), level);
            encoder.write_all(data).unwrap();
            encoder.finish().unwrap()
        }
    }

    #[test]
    fn bodies_are_decoded_by_coding_in_any_spelling_by_the_gzip_magic_or_taken_as_sent() {
        let feed = b"<rss/>".as_slice();
        let gzipped = gzip(feed);
        // Content-Encoding, body, and the body decoded or the error's kind.
        type Case<'a> = (Option<&'a str>, Vec<u8>, Result<&'a [u8], &'a str>);
        let cases: &[Case] = &[
            (None, feed.to_vec(), Ok(feed)),
            (None, gzipped.clone(), Ok(feed)),
            (Some("gzip"), gzipped.clone(), Ok(feed)),
            (Some("x-gzip"), gzipped.clone(), Ok(feed)),
            (Some("GZIP"), gzipped.clone(), Ok(feed)),
            (Some(" X-Gzip "), gzipped.clone(), Ok(feed)),
            (Some("identity, x-gzip"), gzipped.clone(), Ok(feed)),
            (Some("gzip"), gzip(&gzipped), Ok(feed)),
            // Bytes after the last member (a newline, zero padding) are ignored, as other
            // clients ignore them; a second member is read on.
            (Some("gzip"), [&gzipped[..], b"\n"].concat(), Ok(feed)),
            (Some("gzip"), [&gzipped[..], &[0u8; 16]].concat(), Ok(feed)),
            (None, [&gzipped[..], b"\r\n"].concat(), Ok(feed)),
            (
                Some("gzip"),
                [gzip(b"<rss>"), gzip(b"</rss>"), b"\n".to_vec()].concat(),
                Ok(b"<rss></rss>"),
            ),
            // Labelled gzip, sent plain: taken as sent when it starts as a feed does.
            (Some("gzip"), feed.to_vec(), Ok(feed)),
            (
                Some("x-gzip"),
                b"\xef\xbb\xbf \n{\"a\":1}".to_vec(),
                Ok(b"\xef\xbb\xbf \n{\"a\":1}"),
            ),
            // Claimed but neither gzip nor a feed: inflating it reports the broken body.
            (Some("gzip"), b"garbage".to_vec(), Err("transport")),
            (
                Some("gzip"),
                gzipped[..gzipped.len() / 2].to_vec(),
                Err("transport"),
            ),
            (Some("deflate"), deflate(feed, true), Ok(feed)),
            (Some("Deflate"), deflate(feed, false), Ok(feed)),
            (
                Some("deflate"),
                [deflate(feed, false), b"\n".to_vec()].concat(),
                Ok(feed),
            ),
            // Labelled deflate, sent plain: taken as sent, as for gzip.
            (Some("deflate"), feed.to_vec(), Ok(feed)),
            (
                Some("deflate"),
                b"\xef\xbb\xbf \n{\"a\":1}".to_vec(),
                Ok(b"\xef\xbb\xbf \n{\"a\":1}"),
            ),
            // Claimed but neither deflate nor a feed: the broken body is reported.
            (Some("deflate"), b"garbage".to_vec(), Err("transport")),
            (
                Some("deflate"),
                deflate(feed, true)[..5].to_vec(),
                Err("transport"),
            ),
            (Some("identity"), feed.to_vec(), Ok(feed)),
            (Some("br"), feed.to_vec(), Ok(feed)),
            (Some("x-gzip, br"), feed.to_vec(), Ok(feed)),
            (Some(""), feed.to_vec(), Ok(feed)),
            // A coding we do not decode: a plain feed under a junk label is taken as sent.
            (Some("UTF-8"), feed.to_vec(), Ok(feed)),
            (Some("zstd"), b"\x28\xb5\x2f\xfd".to_vec(), Err("transport")),
        ];
        for (coding, body, expected) in cases {
            let decoded = if needs_decoding(*coding, body) {
                decode_body(*coding, body.clone(), 1000)
            } else {
                Ok(body.clone())
            };
            assert_eq!(
                decoded.as_deref().map_err(FetchError::kind),
                *expected,
                "{coding:?} {body:?}"
            );
        }
        assert!(!needs_decoding(Some("gzip"), b""));
    }

    #[test]
    fn a_raw_deflate_stream_that_starts_like_a_feed_is_inflated_and_a_feed_that_is_not_one_is_kept()
    {
        // Fixed-Huffman blocks of text that starts with a byte in 0xe0..=0xef (CJK in UTF-8)
        // begin with `{`: the body must be read as deflate before it is judged by its look.
        let text = "中国关税 tariffs rise".as_bytes();
        let raw = deflate(text, false);
        assert_eq!(raw[0], b'{', "the case still tests what it claims");
        assert_eq!(
            decode_body(Some("deflate"), raw.clone(), 1000),
            Ok(text.to_vec())
        );
        // A body that starts as a feed and is not a deflate stream to its end (here a deflate
        // stream followed by more text) is a plain body under a wrong label.
        let plain = [raw, b"\"a\": 1}".to_vec()].concat();
        assert_eq!(decode_body(Some("deflate"), plain.clone(), 1000), Ok(plain));
    }

    #[test]
    fn stacked_codings_are_removed_last_applied_first() {
        let feed = b"<rss version=\"2.0\"><channel><title>T</title></channel></rss>".as_slice();
        let cases: &[(&str, Vec<u8>)] = &[
            ("gzip, gzip", gzip(&gzip(feed))),
            ("deflate, gzip", gzip(&deflate(feed, true))),
            ("deflate, x-gzip", gzip(&deflate(feed, false))),
            ("gzip, deflate", deflate(&gzip(feed), true)),
            ("GZIP,identity,  Deflate", deflate(&gzip(feed), false)),
            (
                "deflate, gzip, deflate, gzip",
                gzip(&deflate(&gzip(&deflate(feed, true)), false)),
            ),
            // A layer sent plain under its label is taken as sent, the rest decoded.
            ("gzip, gzip", gzip(feed)),
            ("deflate, gzip", gzip(feed)),
            // A gzip file inside the listed layers is inflated once more.
            ("deflate", deflate(&gzip(feed), true)),
        ];
        for (coding, body) in cases {
            assert!(needs_decoding(Some(coding), body), "{coding}");
            let decoded = decode_body(Some(coding), body.clone(), 1000);
            assert_eq!(decoded.as_deref(), Ok(feed), "{coding}");
        }
    }

    #[test]
    fn more_than_four_codings_or_one_we_cannot_decode_in_a_list_fail_naming_why() {
        let feed = b"<rss/>".as_slice();
        let message = |coding: &str, body: Vec<u8>| match decode_body(Some(coding), body, 1000) {
            Err(FetchError::Transport(message)) => message,
            other => panic!("{coding}: expected a transport error, got {other:?}"),
        };
        let five = gzip(&gzip(&gzip(&gzip(&gzip(feed)))));
        assert!(
            message("gzip, gzip, gzip, gzip, gzip", five.clone())
                .contains("lists 5 codings, more than the 4 layers"),
        );
        // Four listed layers and a gzip file inside them: five inflations, one too many.
        assert!(message("gzip, gzip, gzip, gzip", five.clone()).contains("after 4 layers"));
        // So are gzip files inside fewer listed layers, counted with them: a feed compressed
        // three or four times and labelled once is read; five times is one too many.
        let thrice = gzip(&gzip(&gzip(feed)));
        assert_eq!(
            decode_body(Some("gzip"), thrice.clone(), 1000).as_deref(),
            Ok(feed)
        );
        assert_eq!(decode_body(None, gzip(&thrice), 1000).as_deref(), Ok(feed));
        assert!(message("gzip", five.clone()).contains("after 4 layers"));
        assert!(message("", five).contains("after 4 layers"));
        assert_eq!(
            decode_body(
                Some("gzip, gzip, gzip, gzip"),
                gzip(&gzip(&gzip(&gzip(feed)))),
                1000
            )
            .as_deref(),
            Ok(feed)
        );
        // A coding we do not decode names itself, wherever it is in the list.
        assert!(message("gzip, zstd", b"\x28\xb5\x2f\xfd".to_vec()).contains("\"zstd\""));
        // Unless the body under it is a gzip file: a wrong label, left to the gzip layers.
        assert_eq!(
            decode_body(Some("gzip, zstd"), gzip(feed), 1000).as_deref(),
            Ok(feed)
        );
        assert!(message("zstd, gzip", gzip(b"\x28\xb5\x2f\xfd")).contains("\"zstd\""));
        // Brotli is the client's, and only alone and spelled `br`: in a list, or spelled
        // otherwise, a brotli body is not taken for anything else.
        let brotli = b"\x0b\x02\x80hello\x03".to_vec();
        for (coding, body) in [
            ("br, gzip", gzip(&brotli)),
            ("gzip, br", brotli.clone()),
            ("BR", brotli.clone()),
        ] {
            assert!(message(coding, body).contains("brotli"), "{coding}");
        }
    }

    #[test]
    fn every_layer_of_stacked_codings_is_held_to_the_limit() {
        // A bomb inside a small outer layer stops at the limit, as it would alone.
        let zeros = vec![0u8; 1_000_000];
        for (coding, body) in [
            ("gzip, gzip", gzip(&gzip(&zeros))),
            ("deflate, gzip", gzip(&deflate(&zeros, true))),
            ("gzip, deflate", deflate(&gzip(&zeros), false)),
        ] {
            assert!(body.len() < 10_000, "{coding}");
            assert_eq!(
                decode_body(Some(coding), body.clone(), 999_999),
                Err(FetchError::TooLarge { limit: 999_999 }),
                "{coding}"
            );
            assert_eq!(
                decode_body(Some(coding), body, 1_000_000).map(|b| b.len()),
                Ok(1_000_000),
                "{coding}"
            );
        }
        // An inner layer larger than the limit fails even when what it holds would fit: each
        // inflation's output is counted, not only the last.
        let text = vec![b'x'; 100];
        let stored = {
            use std::io::Write as _;
            let mut encoder =
                flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::none());
            encoder.write_all(&text).unwrap();
            encoder.finish().unwrap()
        };
        assert!(stored.len() > 101);
        assert_eq!(
            decode_body(Some("deflate, gzip"), gzip(&stored), 101),
            Err(FetchError::TooLarge { limit: 101 })
        );
        assert_eq!(
            decode_body(Some("deflate, gzip"), gzip(&stored), stored.len() as u64),
            Ok(text)
        );
    }

    #[test]
    fn a_deflate_bomb_stops_at_the_limit_raw_or_zlib() {
        let data = vec![0u8; 1_000_000];
        for zlib in [true, false] {
            let compressed = deflate(&data, zlib);
            assert!(compressed.len() < 10_000);
            assert_eq!(
                decode_body(Some("deflate"), compressed.clone(), 999_999),
                Err(FetchError::TooLarge { limit: 999_999 })
            );
            assert_eq!(
                decode_body(Some("deflate"), compressed, 1_000_000),
                Ok(data.clone())
            );
        }
    }

    #[test]
    fn the_limit_counts_every_gzip_member_together() {
        let member = gzip(&[b'x'; 600]);
        let two = [member.clone(), member].concat();
        assert_eq!(gunzip(&two, 1200).map(|b| b.len()), Ok(1200));
        assert_eq!(
            gunzip(&two, 1199),
            Err(FetchError::TooLarge { limit: 1199 })
        );
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
