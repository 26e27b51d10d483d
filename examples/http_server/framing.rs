//! What a request head says about where the request ends, checked as RFC
//! 9112 sections 2.2, 3.2 and 6 require. The rule throughout: where the
//! same bytes could be read two ways (by this server and by a proxy in
//! front of it), refuse them, answer 400 and close.
//!
//! - Lines end in CRLF only. RFC 9112 section 2.2 lets a recipient take a
//!   bare LF as a line end; this server refuses it everywhere (head, chunk
//!   lines, trailers), because a proxy that does not would see another
//!   request boundary. A bare CR is refused too, as the RFC requires.
//! - `Content-Length` is `1*DIGIT`, given once. No sign, no Unicode
//!   space, no list.
//! - `Transfer-Encoding` is `chunked` alone, given once, never beside
//!   `Content-Length`, never in HTTP/1.0 (section 6.1 calls that faulty
//!   framing). Another coding is 501: this server decodes none.
//! - `Host` appears exactly once in HTTP/1.1 (at most once in 1.0), with a
//!   valid value (section 3.2).
//! - `Expect` is `100-continue` or 417 (RFC 9110 section 10.1.1).

/// A request refused: the status to answer and why, in words for the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal(pub u16, pub &'static str);

/// How the body of a request is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// `Content-Length` bytes (0: no body).
    Length(usize),
    /// The chunked transfer coding.
    Chunked,
}

/// What the head of a request says about its framing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadFraming {
    pub body: BodyFraming,
    /// `Expect: 100-continue` in an HTTP/1.1 request.
    pub expect_continue: bool,
}

/// `tchar` of RFC 9110 section 5.6.2.
pub fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `token = 1*tchar`.
pub fn is_token(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.iter().all(|&b| is_tchar(b))
}

/// Refuses a head with a line ending other than CRLF. `head` may be the
/// start of a head still arriving: a CR as its last byte waits for its LF.
pub fn check_line_endings(head: &[u8]) -> Result<(), Refusal> {
    for (at, &b) in head.iter().enumerate() {
        match b {
            b'\n' if at == 0 || head[at - 1] != b'\r' => return Err(Refusal(400, "bare LF")),
            b'\r' if at + 1 < head.len() && head[at + 1] != b'\n' => {
                return Err(Refusal(400, "bare CR"))
            }
            _ => {}
        }
    }
    Ok(())
}

/// The framing the headers of an HTTP/1.`minor_version` request announce.
pub fn head_framing(
    minor_version: u8,
    headers: &[httparse::Header<'_>],
    max_body: usize,
) -> Result<HeadFraming, Refusal> {
    let mut content_length = None;
    let mut transfer_encoding = None;
    let mut hosts = 0;
    let mut expect_continue = false;
    for header in headers {
        let value = trim_whitespace(header.value);
        let name = header.name;
        if name.eq_ignore_ascii_case("content-length") {
            if content_length.replace(value).is_some() {
                return Err(Refusal(400, "Content-Length repeated"));
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if transfer_encoding.replace(value).is_some() {
                return Err(Refusal(400, "Transfer-Encoding repeated"));
            }
        } else if name.eq_ignore_ascii_case("host") {
            hosts += 1;
            if hosts > 1 {
                return Err(Refusal(400, "Host repeated"));
            }
            if !is_valid_host(value) {
                return Err(Refusal(400, "invalid Host"));
            }
        } else if name.eq_ignore_ascii_case("expect") && minor_version == 1 {
            // An HTTP/1.0 client cannot wait for a 100 (RFC 9110 10.1.1).
            if !value.eq_ignore_ascii_case(b"100-continue") {
                return Err(Refusal(417, "only Expect: 100-continue"));
            }
            expect_continue = true;
        }
    }
    if minor_version == 1 && hosts == 0 {
        return Err(Refusal(400, "Host missing"));
    }
    let body = match (transfer_encoding, content_length) {
        (Some(_), _) if minor_version == 0 => {
            return Err(Refusal(400, "Transfer-Encoding in HTTP/1.0"))
        }
        (Some(_), Some(_)) => {
            return Err(Refusal(400, "both Transfer-Encoding and Content-Length"))
        }
        (Some(codings), None) => transfer_coding(codings)?,
        (None, Some(length)) => BodyFraming::Length(content_length_value(length, max_body)?),
        (None, None) => BodyFraming::Length(0),
    };
    Ok(HeadFraming {
        body,
        expect_continue,
    })
}

/// `Transfer-Encoding`'s value: `chunked`, and only that.
fn transfer_coding(codings: &[u8]) -> Result<BodyFraming, Refusal> {
    if codings.eq_ignore_ascii_case(b"chunked") {
        return Ok(BodyFraming::Chunked);
    }
    let list: Vec<&[u8]> = codings.split(|&b| b == b',').map(trim_whitespace).collect();
    if list.iter().any(|coding| !is_token(coding)) {
        return Err(Refusal(400, "bad Transfer-Encoding"));
    }
    if list
        .iter()
        .any(|coding| coding.eq_ignore_ascii_case(b"chunked"))
    {
        // Chunked twice, or not last: either way no length can be known.
        return Err(Refusal(400, "chunked must be the only transfer coding"));
    }
    Err(Refusal(501, "only the chunked transfer coding"))
}

/// `Content-Length = 1*DIGIT`; past `max_body`, 413.
fn content_length_value(value: &[u8], max_body: usize) -> Result<usize, Refusal> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(Refusal(400, "bad Content-Length"));
    }
    let mut length: usize = 0;
    for &digit in value {
        length = length
            .checked_mul(10)
            .and_then(|length| length.checked_add(usize::from(digit - b'0')))
            .ok_or(Refusal(413, "body too large"))?;
    }
    if length > max_body {
        return Err(Refusal(413, "body too large"));
    }
    Ok(length)
}

/// `Host = uri-host [ ":" port ]` (RFC 9110 section 7.2, RFC 3986 3.2.2):
/// a bracketed IP literal or a reg-name, then an optional decimal port.
fn is_valid_host(value: &[u8]) -> bool {
    let (host, port) = match value.first() {
        Some(b'[') => match value.iter().position(|&b| b == b']') {
            Some(close) => {
                let literal = &value[1..close];
                let literal_ok = !literal.is_empty()
                    && literal
                        .iter()
                        .all(|&b| b.is_ascii_hexdigit() || b":.vV".contains(&b));
                if !literal_ok {
                    return false;
                }
                (&value[..0], &value[close + 1..])
            }
            None => return false,
        },
        _ => match value.iter().position(|&b| b == b':') {
            Some(colon) => (&value[..colon], &value[colon..]),
            None => (value, &value[value.len()..]),
        },
    };
    let reg_name_ok = host
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=%".contains(&b));
    let port_ok = match port.split_first() {
        None => true,
        Some((b':', digits)) => digits.iter().all(u8::is_ascii_digit),
        Some(_) => false,
    };
    reg_name_ok && port_ok
}

/// The path (and query) of a request target: itself in origin-form
/// (`/a?b`), the part after the authority in absolute-form
/// (`http://host/a?b`, RFC 9112 section 3.2.2, which a server must
/// accept); `None` for the other forms and for anything else.
pub fn target_path(target: &str) -> Option<&str> {
    if target.starts_with('/') {
        return Some(target);
    }
    let scheme_end = target.find("://")?;
    let scheme = &target[..scheme_end];
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    let rest = &target[scheme_end + 3..];
    let path_start = rest.find(['/', '?']).unwrap_or(rest.len());
    if path_start == 0 || !is_valid_host(&rest.as_bytes()[..path_start]) {
        return None;
    }
    match &rest[path_start..] {
        "" => Some("/"),
        path if path.starts_with('?') => None, // "/?q" spelled without its slash
        path => Some(path),
    }
}

/// OWS trimmed from both ends: spaces and tabs only (`str::trim` would
/// also take Unicode spaces, which no field grammar allows).
pub fn trim_whitespace(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framing(minor: u8, headers: &[Field]) -> Result<HeadFraming, Refusal> {
        let headers: Vec<httparse::Header<'_>> = headers
            .iter()
            .map(|&(name, value)| httparse::Header { name, value })
            .collect();
        head_framing(minor, &headers, 1000)
    }

    fn status(result: Result<HeadFraming, Refusal>) -> u16 {
        match result {
            Ok(_) => 200,
            Err(Refusal(status, _)) => status,
        }
    }

    /// A header line: its name and value.
    type Field = (&'static str, &'static [u8]);

    const HOST: Field = ("Host", b"a");

    #[test]
    fn content_length_is_digits_only() {
        for good in [&b"5"[..], b"0005", b"0"] {
            assert_eq!(status(framing(1, &[HOST, ("Content-Length", good)])), 200);
        }
        let bad: [&[u8]; 8] = [
            b"+5",
            b"-5",
            b"5\xc2\xa0",
            b"\xe3\x80\x805",
            b"5, 5",
            b"0x5",
            b"",
            b"5 5",
        ];
        for value in bad {
            let got = framing(1, &[HOST, ("Content-Length", value)]);
            assert_eq!(status(got), 400, "{:?}", String::from_utf8_lossy(value));
        }
        assert_eq!(
            status(framing(1, &[HOST, ("Content-Length", b"1001")])),
            413
        );
        let at_the_limit = framing(1, &[HOST, ("Content-Length", b"1000")]);
        assert_eq!(status(at_the_limit), 200, "the limit itself is allowed");
        let huge = framing(1, &[HOST, ("Content-Length", b"99999999999999999999999")]);
        assert_eq!(status(huge), 413);
        let twice = framing(
            1,
            &[HOST, ("Content-Length", b"5"), ("content-length", b"5")],
        );
        assert_eq!(status(twice), 400);
    }

    #[test]
    fn transfer_encoding_is_chunked_alone_once_in_1_1() {
        let chunked: Field = ("Transfer-Encoding", b"chunked");
        assert_eq!(
            framing(1, &[HOST, chunked]).unwrap().body,
            BodyFraming::Chunked
        );
        assert_eq!(
            framing(1, &[HOST, ("transfer-encoding", b"CHUNKED")])
                .unwrap()
                .body,
            BodyFraming::Chunked
        );
        let refused: [(&[Field], u8, u16); 9] = [
            (&[HOST, chunked, chunked], 1, 400),
            (&[HOST, ("Transfer-Encoding", b"chunked, chunked")], 1, 400),
            (&[HOST, ("Transfer-Encoding", b"chunked, gzip")], 1, 400),
            (&[HOST, ("Transfer-Encoding", b"gzip, chunked")], 1, 400),
            (&[HOST, ("Transfer-Encoding", b"gzip")], 1, 501),
            (&[HOST, ("Transfer-Encoding", b"xchunked")], 1, 501),
            (&[HOST, ("Transfer-Encoding", b"chunked;q=1")], 1, 400),
            (&[HOST, chunked, ("Content-Length", b"3")], 1, 400),
            (&[chunked], 0, 400),
        ];
        for (headers, minor, want) in refused {
            assert_eq!(status(framing(minor, headers)), want, "{headers:?}");
        }
    }

    #[test]
    fn host_once_and_valid() {
        assert_eq!(status(framing(1, &[])), 400);
        assert_eq!(status(framing(0, &[])), 200);
        assert_eq!(status(framing(1, &[HOST, HOST])), 400);
        assert_eq!(status(framing(0, &[HOST, HOST])), 400);
        for good in [
            &b"example.com"[..],
            b"example.com:8080",
            b"[::1]:80",
            b"127.0.0.1",
            b"",
        ] {
            assert_eq!(status(framing(1, &[("Host", good)])), 200, "{good:?}");
        }
        for bad in [
            &b"a b"[..],
            b"a/b",
            b"a:8o",
            b"[::1",
            b"[zz]",
            b"a@b",
            b"a:1:2",
            b"[::1]x",
        ] {
            assert_eq!(status(framing(1, &[("Host", bad)])), 400, "{bad:?}");
        }
    }

    #[test]
    fn expect_is_100_continue_or_417() {
        let expect = |value: &'static [u8]| framing(1, &[HOST, ("Expect", value)]);
        assert!(expect(b"100-continue").unwrap().expect_continue);
        assert!(expect(b"100-Continue").unwrap().expect_continue);
        assert_eq!(status(expect(b"200-ok")), 417);
        // HTTP/1.0: ignored.
        assert!(
            !framing(0, &[("Expect", b"200-ok")])
                .unwrap()
                .expect_continue
        );
    }

    #[test]
    fn line_endings_are_crlf() {
        assert!(check_line_endings(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").is_ok());
        assert!(check_line_endings(b"GET / HTTP/1.1\nHost: a\r\n\r\n").is_err());
        assert!(check_line_endings(b"GET / HTTP/1.1\r\nHost: a\r\n\n").is_err());
        assert!(check_line_endings(b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n").is_err());
        assert!(
            check_line_endings(b"GET / HTTP/1.1\r").is_ok(),
            "its LF is on its way"
        );
    }

    #[test]
    fn targets_give_their_path() {
        assert_eq!(target_path("/a?b"), Some("/a?b"));
        assert_eq!(target_path("http://example.com/json"), Some("/json"));
        assert_eq!(target_path("HTTP://example.com:80"), Some("/"));
        assert_eq!(target_path("http://example.com?x"), None);
        assert_eq!(target_path("ftp://example.com/"), None);
        assert_eq!(target_path("http:///x"), None);
        assert_eq!(target_path("*"), None);
        assert_eq!(target_path("example.com:443"), None);
    }
}
