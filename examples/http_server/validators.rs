//! Conditional and range requests for static files, as nginx answers them
//! (RFC 9110 sections 13 and 14): `ETag` and `Last-Modified` on every
//! file, `If-None-Match` and `If-Modified-Since` answered 304, and one
//! byte range (`Range: bytes=...`, guarded by `If-Range`) answered 206, or
//! 416 when it lies past the end. So `curl -C -` resumes a download and a
//! browser revalidates its cache.
//!
//! Several ranges in one request are answered with the whole file (200), which
//! RFC 9110 section 14.2 allows: a multipart answer is more code than this
//! example needs.

use std::time::{SystemTime, UNIX_EPOCH};

/// The request headers that make a file request conditional or partial.
#[derive(Clone, Copy, Debug, Default)]
pub struct Conditions<'a> {
    pub if_none_match: Option<&'a [u8]>,
    pub if_modified_since: Option<&'a [u8]>,
    pub range: Option<&'a [u8]>,
    pub if_range: Option<&'a [u8]>,
}

impl<'a> Conditions<'a> {
    /// Which of these headers `name` is, as an index for [`from_slots`]
    /// (`None`: another header).
    ///
    /// [`from_slots`]: Conditions::from_slots
    pub fn slot(name: &str) -> Option<usize> {
        ["if-none-match", "if-modified-since", "range", "if-range"]
            .iter()
            .position(|wanted| name.eq_ignore_ascii_case(wanted))
    }

    /// The headers' values, as `value` gives them by [`slot`](Conditions::slot).
    pub fn from_slots(value: impl Fn(usize) -> Option<&'a [u8]>) -> Conditions<'a> {
        Conditions {
            if_none_match: value(0),
            if_modified_since: value(1),
            range: value(2),
            if_range: value(3),
        }
    }
}

/// What identifies one version of a file.
#[derive(Clone, Debug)]
pub struct Validators {
    /// A strong entity tag, quotes included: modification time and
    /// length, in hex, as nginx makes it.
    pub etag: String,
    /// `Last-Modified`, as HTTP writes dates.
    pub last_modified: String,
    /// The modification time in whole seconds (HTTP dates have no finer).
    modified: SystemTime,
}

impl Validators {
    pub fn new(length: u64, modified: SystemTime) -> Validators {
        let seconds = modified
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        let modified = UNIX_EPOCH + std::time::Duration::from_secs(seconds);
        Validators {
            etag: format!("\"{seconds:x}-{length:x}\""),
            last_modified: httpdate::fmt_http_date(modified),
            modified,
        }
    }

    /// The header lines that go with every answer for this file.
    pub fn headers(&self) -> String {
        format!(
            "Last-Modified: {}\r\nETag: {}\r\nAccept-Ranges: bytes\r\n",
            self.last_modified, self.etag
        )
    }
}

/// How to answer a request for a file of `length` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// 200: the whole file.
    Whole,
    /// 304: the client's copy is current.
    NotModified,
    /// 206: the bytes `first..=last`.
    Part { first: u64, last: u64 },
    /// 416: the range lies past the end.
    Unsatisfiable,
}

/// Decides the answer, in RFC 9110 section 13.2.2's order: `If-None-Match`,
/// else `If-Modified-Since`; then, for GET, `If-Range` and `Range`.
pub fn answer(get: bool, length: u64, file: &Validators, asked: &Conditions<'_>) -> Answer {
    let current = match (asked.if_none_match, asked.if_modified_since) {
        (Some(tags), _) => matches_any_tag(tags, &file.etag),
        (None, Some(date)) => parse_date(date).is_some_and(|since| file.modified <= since),
        (None, None) => false,
    };
    if current {
        return Answer::NotModified;
    }
    let Some(range) = asked.range.filter(|_| get) else {
        return Answer::Whole;
    };
    if let Some(validator) = asked.if_range {
        // A strong tag compared strongly, or exactly the Last-Modified date.
        let same = if validator.starts_with(b"\"") {
            validator == file.etag.as_bytes()
        } else {
            validator == file.last_modified.as_bytes()
        };
        if !same {
            return Answer::Whole;
        }
    }
    match byte_range(range, length) {
        Some(Some((first, last))) => Answer::Part { first, last },
        Some(None) => Answer::Unsatisfiable,
        None => Answer::Whole, // not a range this server reads: ignored
    }
}

/// `If-None-Match`: `*`, or a list of tags compared weakly (`W/` ignored).
fn matches_any_tag(list: &[u8], etag: &str) -> bool {
    let list = crate::framing::trim_whitespace(list);
    if list == b"*" {
        return true;
    }
    list.split(|&b| b == b',')
        .map(crate::framing::trim_whitespace)
        .map(|tag| tag.strip_prefix(b"W/").unwrap_or(tag))
        .any(|tag| tag == etag.as_bytes())
}

fn parse_date(value: &[u8]) -> Option<SystemTime> {
    httpdate::parse_http_date(std::str::from_utf8(value).ok()?).ok()
}

/// One `bytes=` range against a file of `length` bytes: `Some(Some(first,
/// last))` inclusive, `Some(None)` if it is unsatisfiable, `None` if it is
/// not one range in this grammar (then the header is ignored).
fn byte_range(value: &[u8], length: u64) -> Option<Option<(u64, u64)>> {
    let value = std::str::from_utf8(value).ok()?;
    let (unit, spec) = value.split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return None;
    }
    let (first, last) = spec.trim().split_once('-')?;
    let number = |text: &str| -> Option<u64> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok()
    };
    if first.is_empty() {
        // The last `suffix` bytes.
        let suffix = number(last)?;
        if suffix == 0 || length == 0 {
            return Some(None);
        }
        return Some(Some((length - suffix.min(length), length - 1)));
    }
    let first = number(first)?;
    let last = if last.is_empty() {
        u64::MAX
    } else {
        number(last)?
    };
    if last < first {
        return None; // invalid: ignored
    }
    if first >= length {
        return Some(None);
    }
    Some(Some((first, last.min(length - 1))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> Validators {
        Validators::new(
            1000,
            UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000),
        )
    }

    fn ask(
        if_none_match: Option<&'static str>,
        if_modified_since: Option<&'static str>,
        range: Option<&'static str>,
        if_range: Option<&'static str>,
    ) -> Conditions<'static> {
        Conditions {
            if_none_match: if_none_match.map(str::as_bytes),
            if_modified_since: if_modified_since.map(str::as_bytes),
            range: range.map(str::as_bytes),
            if_range: if_range.map(str::as_bytes),
        }
    }

    #[test]
    fn validators_look_like_nginx_s() {
        let file = file();
        assert_eq!(file.etag, "\"6553f100-3e8\"");
        assert_eq!(file.last_modified, "Tue, 14 Nov 2023 22:13:20 GMT");
    }

    #[test]
    fn conditional_requests_answer_304_when_current() {
        let file = file();
        let etag: &'static str = Box::leak(file.etag.clone().into_boxed_str());
        let date: &'static str = Box::leak(file.last_modified.clone().into_boxed_str());
        let cases = [
            (ask(Some(etag), None, None, None), Answer::NotModified),
            (
                ask(Some("\"x\", W/\"6553f100-3e8\""), None, None, None),
                Answer::NotModified,
            ),
            (ask(Some("*"), None, None, None), Answer::NotModified),
            (ask(Some("\"other\""), None, None, None), Answer::Whole),
            (ask(None, Some(date), None, None), Answer::NotModified),
            (
                ask(None, Some("Wed, 15 Nov 2023 00:00:00 GMT"), None, None),
                Answer::NotModified,
            ),
            (
                ask(None, Some("Mon, 13 Nov 2023 00:00:00 GMT"), None, None),
                Answer::Whole,
            ),
            (ask(None, Some("yesterday"), None, None), Answer::Whole),
            // If-None-Match wins over If-Modified-Since.
            (
                ask(Some("\"other\""), Some(date), None, None),
                Answer::Whole,
            ),
        ];
        for (asked, want) in cases {
            assert_eq!(answer(true, 1000, &file, &asked), want, "{asked:?}");
        }
    }

    #[test]
    fn one_range_is_answered_206_or_416() {
        let file = file();
        let part = |first, last| Answer::Part { first, last };
        let cases = [
            ("bytes=0-99", part(0, 99)),
            ("bytes=900-", part(900, 999)),
            ("bytes=900-5000", part(900, 999)),
            ("bytes=-100", part(900, 999)),
            ("bytes=-5000", part(0, 999)),
            ("bytes=999-999", part(999, 999)),
            ("bytes=1000-", Answer::Unsatisfiable),
            ("bytes=-0", Answer::Unsatisfiable),
            ("bytes=5-1", Answer::Whole),
            ("bytes=0-1,5-6", Answer::Whole),
            ("items=0-1", Answer::Whole),
            ("bytes=+1-2", Answer::Whole),
            ("bytes=a-", Answer::Whole),
        ];
        for (range, want) in cases {
            assert_eq!(
                answer(true, 1000, &file, &ask(None, None, Some(range), None)),
                want,
                "{range}"
            );
        }
        // HEAD ignores Range; If-Range that does not match gives the whole file.
        assert_eq!(
            answer(
                false,
                1000,
                &file,
                &ask(None, None, Some("bytes=0-1"), None)
            ),
            Answer::Whole
        );
        let stale = ask(None, None, Some("bytes=0-1"), Some("\"old\""));
        assert_eq!(answer(true, 1000, &file, &stale), Answer::Whole);
        let etag: &'static str = Box::leak(file.etag.clone().into_boxed_str());
        let fresh = ask(None, None, Some("bytes=0-1"), Some(etag));
        assert_eq!(answer(true, 1000, &file, &fresh), part(0, 1));
        // If-Range with a date: exactly Last-Modified, or the whole file.
        let date: &'static str = Box::leak(file.last_modified.clone().into_boxed_str());
        let same_date = ask(None, None, Some("bytes=0-1"), Some(date));
        assert_eq!(answer(true, 1000, &file, &same_date), part(0, 1));
        let later = Some("Tue, 14 Nov 2023 22:13:21 GMT");
        let other_date = ask(None, None, Some("bytes=0-1"), later);
        assert_eq!(answer(true, 1000, &file, &other_date), Answer::Whole);
        assert_eq!(
            answer(true, 0, &file, &ask(None, None, Some("bytes=-1"), None)),
            Answer::Unsatisfiable
        );
    }
}
