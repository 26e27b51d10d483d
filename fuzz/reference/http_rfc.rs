//! A reference HTTP/1.1 request framer, written straight from RFC 9112's
//! ABNF and kept deliberately simple: the whole input at once, no state
//! carried between calls, no speed. It is the oracle of the differential
//! fuzz target (`http_differential`) and of the http_server example's
//! tests: for any bytes, it and the server's decoder must find the same
//! request boundaries.
//!
//! It applies the server's documented policy (docs/protocols.md) with code
//! of its own: CRLF only; `Content-Length = 1*DIGIT`, once;
//! `Transfer-Encoding: chunked` alone, once, never with `Content-Length`,
//! never in HTTP/1.0; `Host` once (required in HTTP/1.1); `Expect` only
//! `100-continue`; the request-target visible ASCII; the same size limits.
//!
//! ```text
//! HTTP-message   = start-line CRLF *( field-line CRLF ) CRLF [ message-body ]
//! request-line   = method SP request-target SP HTTP-version
//! method         = token
//! HTTP-version   = "HTTP/1.0" / "HTTP/1.1"        ; the versions served
//! field-line     = field-name ":" OWS field-value OWS
//! field-value    = *( VCHAR / obs-text / SP / HTAB )
//! chunked-body   = *chunk last-chunk trailer-section CRLF
//! chunk          = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//! chunk-ext      = *( BWS ";" BWS token [ BWS "=" BWS ( token / quoted-string ) ] )
//! ```

/// The limits the server's decoder is given.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Request line and fields, leading empty lines included; also the
    /// bound on the trailer section.
    pub max_header: usize,
    /// Body data (chunk data, for a chunked body).
    pub max_body: usize,
}

/// Most field lines in one head.
pub const MAX_FIELDS: usize = 64;
/// Longest chunk-size line, extensions included, without its CRLF.
pub const MAX_CHUNK_LINE: usize = 4096;

/// How the framing of a whole input ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Framed {
    /// Every byte is in a request.
    Exact,
    /// The bytes after the last request are not a whole one yet.
    Waiting,
    /// The bytes after the last request break the rules.
    Refused,
}

/// Where each request of `input` ends (as offsets into it), and how the
/// rest was judged. A request sent with `Expect: 100-continue` that ends
/// exactly at its head (its body not begun) counts its head as one frame,
/// as the server's decoder frames it, and its body as the next.
pub fn frame_all(input: &[u8], limits: Limits) -> (Vec<usize>, Framed) {
    let mut ends = Vec::new();
    let mut pos = 0;
    let mut pending_body: Option<Body> = None;
    loop {
        if pos == input.len() {
            return (ends, Framed::Exact);
        }
        let rest = &input[pos..];
        let step = match pending_body.take() {
            Some(body) => body_end(rest, 0, body, limits).map(|end| end.map(|n| (n, None))),
            None => one_request(rest, limits, true),
        };
        match step {
            Ok(Some((length, awaiting))) => {
                pos += length;
                ends.push(pos);
                pending_body = awaiting;
            }
            Ok(None) => return (ends, Framed::Waiting),
            Err(()) => return (ends, Framed::Refused),
        }
    }
}

/// How a body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Body {
    Length(usize),
    Chunked,
}

/// The length of the request at the start of `buf` (and, for a head
/// framed alone, the body still to come); `Ok(None)` if it is not whole;
/// `Err` if it breaks the rules.
#[allow(clippy::type_complexity)]
fn one_request(
    buf: &[u8],
    limits: Limits,
    split_expect: bool,
) -> Result<Option<(usize, Option<Body>)>, ()> {
    // The head ends at the first empty line after the request line; empty
    // lines before the request line are skipped (RFC 9112 2.2).
    let mut lines = Vec::new();
    let mut at = 0;
    let head_end = loop {
        let Some(newline) = buf[at..].iter().position(|&b| b == b'\n') else {
            return Ok(None);
        };
        let end = at + newline;
        if end == at || buf[end - 1] != b'\r' {
            return Err(()); // a bare LF
        }
        let line = &buf[at..end - 1];
        at = end + 1;
        if line.is_empty() {
            if lines.is_empty() {
                continue; // before the request line
            }
            break at;
        }
        lines.push(line);
    };
    if head_end > limits.max_header || lines.len() - 1 > MAX_FIELDS {
        return Err(());
    }
    let version_1_1 = request_line(lines[0])?;
    let mut fields = Vec::new();
    for line in &lines[1..] {
        fields.push(field_line(line)?);
    }
    let body = framing(&fields, version_1_1, limits)?;
    let expects_continue = version_1_1
        && fields
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case(b"expect"));
    if split_expect && expects_continue && body != Body::Length(0) && buf.len() == head_end {
        return Ok(Some((head_end, Some(body))));
    }
    Ok(body_end(buf, head_end, body, limits)?.map(|end| (end, None)))
}

/// `method SP request-target SP HTTP-version`: whether it is HTTP/1.1.
fn request_line(line: &[u8]) -> Result<bool, ()> {
    let parts: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    let [method, target, version] = parts[..] else {
        return Err(());
    };
    let target_ok = !target.is_empty() && target.iter().all(|&b| (0x21..=0x7e).contains(&b));
    if !is_token(method) || !target_ok {
        return Err(());
    }
    match version {
        b"HTTP/1.1" => Ok(true),
        b"HTTP/1.0" => Ok(false),
        _ => Err(()),
    }
}

/// `field-name ":" OWS field-value OWS`: the name, and the value without
/// its surrounding whitespace.
fn field_line(line: &[u8]) -> Result<(&[u8], &[u8]), ()> {
    let colon = line.iter().position(|&b| b == b':').ok_or(())?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    let value_ok = value
        .iter()
        .all(|&b| b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80);
    if !is_token(name) || !value_ok {
        return Err(());
    }
    let start = value
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |e| e + 1);
    Ok((name, &value[start..end]))
}

fn is_token(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The body's framing from the fields, or `Err` where the server's policy
/// refuses them.
fn framing(fields: &[(&[u8], &[u8])], version_1_1: bool, limits: Limits) -> Result<Body, ()> {
    let named = |name: &str| -> Vec<&[u8]> {
        fields
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| *v)
            .collect()
    };
    let hosts = named("host");
    let lengths = named("content-length");
    let codings = named("transfer-encoding");
    let expects = named("expect");
    if hosts.len() > 1 || (version_1_1 && hosts.is_empty()) {
        return Err(());
    }
    if let Some(host) = hosts.first() {
        if !host_ok(host) {
            return Err(());
        }
    }
    if version_1_1
        && expects
            .iter()
            .any(|e| !e.eq_ignore_ascii_case(b"100-continue"))
    {
        return Err(());
    }
    match (&codings[..], &lengths[..]) {
        ([], []) => Ok(Body::Length(0)),
        ([], [length]) => {
            if length.is_empty() || !length.iter().all(u8::is_ascii_digit) {
                return Err(());
            }
            // Past the limit is refused; so is a number past any limit.
            let digits = length.iter().skip_while(|&&b| b == b'0').count();
            if digits > 19 {
                return Err(());
            }
            let value: usize = std::str::from_utf8(length)
                .map_err(|_| ())?
                .parse()
                .map_err(|_| ())?;
            if value > limits.max_body {
                return Err(());
            }
            Ok(Body::Length(value))
        }
        ([coding], []) if version_1_1 && coding.eq_ignore_ascii_case(b"chunked") => {
            Ok(Body::Chunked)
        }
        _ => Err(()),
    }
}

/// `uri-host [ ":" port ]`: an IP literal in brackets or a reg-name
/// (unreserved, pct-encoded, sub-delims), then decimal digits.
fn host_ok(host: &[u8]) -> bool {
    let (name, port) = if host.first() == Some(&b'[') {
        let Some(close) = host.iter().position(|&b| b == b']') else {
            return false;
        };
        let literal = &host[1..close];
        if literal.is_empty()
            || !literal
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b":.vV".contains(&b))
        {
            return false;
        }
        (&host[..0], &host[close + 1..])
    } else {
        match host.iter().position(|&b| b == b':') {
            Some(colon) => (&host[..colon], &host[colon..]),
            None => (host, &host[host.len()..]),
        }
    };
    let name_ok = name
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=%".contains(&b));
    let port_ok = port.is_empty() || (port[0] == b':' && port[1..].iter().all(u8::is_ascii_digit));
    name_ok && port_ok
}

/// Where a body that starts at `start` of `buf` ends.
fn body_end(buf: &[u8], start: usize, body: Body, limits: Limits) -> Result<Option<usize>, ()> {
    match body {
        Body::Length(length) => Ok((buf.len() >= start + length).then_some(start + length)),
        Body::Chunked => chunked_end(buf, start, limits),
    }
}

/// The line starting at `at`: its bytes without CRLF and where the next
/// starts; `Ok(None)` if its end has not come and it may still fit in
/// `max`; `Err` for a bare LF or a line too long.
fn line(buf: &[u8], at: usize, max: usize) -> Result<Option<(&[u8], usize)>, ()> {
    match buf[at..].iter().position(|&b| b == b'\n') {
        Some(newline) if newline > max + 1 => Err(()),
        Some(newline) if newline == 0 || buf[at + newline - 1] != b'\r' => Err(()),
        Some(newline) => Ok(Some((&buf[at..at + newline - 1], at + newline + 1))),
        None if buf.len() - at >= max + 2 => Err(()),
        None => Ok(None),
    }
}

/// `chunked-body`, from `start`.
fn chunked_end(buf: &[u8], start: usize, limits: Limits) -> Result<Option<usize>, ()> {
    let mut at = start;
    let mut data = 0usize;
    loop {
        let Some((size_line, next)) = line(buf, at, MAX_CHUNK_LINE)? else {
            return Ok(None);
        };
        let size = chunk_size(size_line)?;
        data = data.checked_add(size).ok_or(())?;
        if data > limits.max_body {
            return Err(());
        }
        at = next;
        if size == 0 {
            break;
        }
        if buf.len() < at + size + 2 {
            return Ok(None);
        }
        if &buf[at + size..at + size + 2] != b"\r\n" {
            return Err(());
        }
        at += size + 2;
    }
    // trailer-section CRLF
    let trailers_start = at;
    loop {
        let room = limits.max_header - (at - trailers_start);
        let Some((field, next)) = line(buf, at, room)? else {
            return Ok(None);
        };
        if field.is_empty() {
            return Ok(Some(next));
        }
        if next - trailers_start > limits.max_header {
            return Err(());
        }
        field_line(field)?;
        at = next;
    }
}

/// `chunk-size [ chunk-ext ]`: the size.
fn chunk_size(line: &[u8]) -> Result<usize, ()> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(());
    }
    let text = std::str::from_utf8(&line[..digits]).map_err(|_| ())?;
    let trimmed = text.trim_start_matches('0');
    if trimmed.len() > 16 {
        return Err(());
    }
    let size = if trimmed.is_empty() {
        0
    } else {
        u64::from_str_radix(trimmed, 16).map_err(|_| ())?
    };
    let size = usize::try_from(size).map_err(|_| ())?;
    extensions(&line[digits..])?;
    Ok(size)
}

/// `*( BWS ";" BWS token [ BWS "=" BWS ( token / quoted-string ) ] )`,
/// read by splitting: each `;` starts an extension.
fn extensions(mut ext: &[u8]) -> Result<(), ()> {
    let trim_start =
        |b: &[u8]| -> usize { b.iter().take_while(|&&c| c == b' ' || c == b'\t').count() };
    while !ext.is_empty() {
        ext = &ext[trim_start(ext)..];
        // Whitespace is only ever before a `;`: at the end it is refused.
        if ext.first() != Some(&b';') {
            return Err(()); // whitespace not before a `;`, or other bytes
        }
        ext = &ext[1..];
        ext = &ext[trim_start(ext)..];
        let name_len = ext.iter().take_while(|&&b| is_token(&[b])).count();
        if name_len == 0 {
            return Err(());
        }
        ext = &ext[name_len..];
        let space = trim_start(ext);
        if ext.get(space) != Some(&b'=') {
            continue;
        }
        ext = &ext[space + 1..];
        ext = &ext[trim_start(ext)..];
        if ext.first() == Some(&b'"') {
            let mut i = 1;
            loop {
                match ext.get(i) {
                    None => return Err(()),
                    Some(b'"') => break,
                    Some(b'\\') => {
                        let escaped = *ext.get(i + 1).ok_or(())?;
                        if !(escaped == b'\t'
                            || escaped == b' '
                            || (0x21..=0x7e).contains(&escaped)
                            || escaped >= 0x80)
                        {
                            return Err(());
                        }
                        i += 2;
                    }
                    Some(&b)
                        if b == b'\t'
                            || b == b' '
                            || b == 0x21
                            || (0x23..=0x5b).contains(&b)
                            || (0x5d..=0x7e).contains(&b)
                            || b >= 0x80 =>
                    {
                        i += 1
                    }
                    Some(_) => return Err(()),
                }
            }
            ext = &ext[i + 1..];
        } else {
            let value_len = ext.iter().take_while(|&&b| is_token(&[b])).count();
            if value_len == 0 {
                return Err(());
            }
            ext = &ext[value_len..];
        }
    }
    Ok(())
}
