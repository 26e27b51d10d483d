//! HTTP/1.1 requests framed by a `Decoder` (the request line and headers
//! parsed with `httparse`, their framing checked by `framing.rs`, then a
//! `Content-Length` body or a chunked one read by `chunked.rs`), and
//! responses written into a reused buffer.

use std::borrow::Cow;
use std::io::Write;
use std::ops::Range;

use selectloop::codec::{DecodeError, Decoder, Frame};

use crate::chunked::{Chunked, Step};
use crate::framing::{check_line_endings, head_framing, target_path, BodyFraming, Refusal};
use crate::validators::Conditions;

/// Limits on one request, with nginx's defaults where it has one.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Request line and headers: nginx's `large_client_header_buffers`
    /// (8 KiB). Past it: 431.
    pub max_header: usize,
    /// Body: nginx's `client_max_body_size` (1 MiB). Past it: 413.
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_header: 8 * 1024,
            max_body: 1024 * 1024,
        }
    }
}

/// Most headers in one request (past it: 431).
const MAX_HEADERS: usize = 64;

/// Where the decoder is in the request now arriving.
#[derive(Clone, Copy, Debug)]
enum Stage {
    /// Reading the request line and headers.
    Head,
    /// The headers announced a body: the request ends at `end`.
    Body { end: usize },
    /// A chunked body, read by [`Chunked`].
    Chunked(Chunked),
}

/// Frames one request at a time: the frame is the whole request, head and
/// body, and its item ([`HttpItem::Request`]) says where the method, path,
/// body and the headers the server reads lie in it, so the handler never
/// parses it again ([`Request::read`]).
///
/// One exception: a request with `Expect: 100-continue` whose body has not
/// begun to arrive is framed in two. First its head alone (the handler
/// answers `100 Continue` and keeps it; [`Parsed::awaits_body`] says so),
/// then its body alone, framed by what the head announced
/// ([`HttpItem::Body`]).
#[derive(Debug)]
pub struct HttpDecoder {
    limits: Limits,
    stage: Stage,
    /// What the head of the request now arriving said, while its body
    /// arrives (`None` for a body framed apart).
    head: Option<Parsed>,
    /// The data pieces of a chunked body so far.
    pieces: Vec<Range<usize>>,
}

impl HttpDecoder {
    pub fn new(limits: Limits) -> HttpDecoder {
        HttpDecoder {
            limits,
            stage: Stage::Head,
            head: None,
            pieces: Vec::new(),
        }
    }

    /// The item of a request (or a body framed apart) whose body is
    /// `pieces`.
    fn finish(&mut self, pieces: Vec<Range<usize>>) -> HttpItem {
        self.stage = Stage::Head;
        match self.head.take() {
            Some(mut head) => {
                head.body = pieces;
                HttpItem::Request(head)
            }
            None => HttpItem::Body(pieces),
        }
    }

    /// An error whose text starts with the status to answer it with.
    fn refuse(Refusal(status, why): Refusal) -> DecodeError {
        DecodeError::invalid(format!("{status} {}: {why}", reason(status)))
    }

    fn chunked(&self, start: usize) -> Chunked {
        Chunked::new(start, self.limits.max_body, self.limits.max_header)
    }

    /// Reads the head at the start of `buf`: the next stage, or a whole
    /// frame when the request has no body or waits for `100 Continue`.
    fn head(&mut self, buf: &[u8]) -> Result<Option<Frame<HttpItem>>, Refusal> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        let head = match request.parse(buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                // A bare LF is refused as soon as it arrives, not when
                // the head is whole.
                check_line_endings(buf)?;
                if buf.len() > self.limits.max_header {
                    return Err(Refusal(431, "headers too large"));
                }
                return Ok(None);
            }
            Err(httparse::Error::Version) => {
                return Err(Refusal(505, "only HTTP/1.0 and HTTP/1.1"))
            }
            Err(httparse::Error::TooManyHeaders) => return Err(Refusal(431, "too many headers")),
            Err(_) => return Err(Refusal(400, "malformed request head")),
        };
        if head > self.limits.max_header {
            return Err(Refusal(431, "headers too large"));
        }
        check_line_endings(&buf[..head])?;
        // httparse lets bytes past ASCII into the target; the grammar
        // (RFC 3986, RFC 9112 3.2) has none.
        let target = request.path.unwrap_or("");
        if !target.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err(Refusal(400, "request target not visible ASCII"));
        }
        let minor_version = request.version.unwrap_or(1);
        let framing = head_framing(minor_version, request.headers, self.limits.max_body)?;
        let has_body = framing.body != BodyFraming::Length(0);
        let awaits_body = has_body && framing.expect_continue && buf.len() == head;
        let parsed = Parsed::of(buf, &request, head, minor_version, awaits_body);
        if awaits_body {
            // The client waits for a 100 before it sends the body.
            self.stage = match framing.body {
                BodyFraming::Chunked => Stage::Chunked(self.chunked(0)),
                BodyFraming::Length(len) => Stage::Body { end: len },
            };
            return Ok(Some(Frame::with_item(
                0..head,
                head,
                HttpItem::Request(parsed),
            )));
        }
        if !has_body {
            return Ok(Some(Frame::with_item(
                0..head,
                head,
                HttpItem::Request(parsed),
            )));
        }
        self.head = Some(parsed);
        match framing.body {
            BodyFraming::Length(len) => self.stage = Stage::Body { end: head + len },
            BodyFraming::Chunked => self.stage = Stage::Chunked(self.chunked(head)),
        }
        Ok(None)
    }
}

impl Decoder for HttpDecoder {
    type Item = HttpItem;

    fn decode(&mut self, buf: &[u8]) -> Result<Option<Frame<HttpItem>>, DecodeError> {
        loop {
            match &mut self.stage {
                Stage::Head => {
                    if let Some(frame) = self.head(buf).map_err(Self::refuse)? {
                        return Ok(Some(frame));
                    }
                    if let Stage::Head = self.stage {
                        return Ok(None);
                    }
                }
                Stage::Body { end } => {
                    let end = *end;
                    if buf.len() < end {
                        return Ok(None);
                    }
                    let start = self.head.as_ref().map_or(0, |head| head.head_len);
                    // One piece: the body is the bytes after the head.
                    #[allow(clippy::single_range_in_vec_init)]
                    let item = self.finish(vec![start..end]);
                    return Ok(Some(Frame::with_item(0..end, end, item)));
                }
                Stage::Chunked(chunked) => match chunked.step(buf).map_err(Self::refuse)? {
                    Step::NeedMore => return Ok(None),
                    Step::Data(piece) => self.pieces.push(piece),
                    Step::End(end) => {
                        let pieces = std::mem::take(&mut self.pieces);
                        let item = self.finish(pieces);
                        return Ok(Some(Frame::with_item(0..end, end, item)));
                    }
                },
            }
        }
    }
}

/// The reason phrase of the statuses this server sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        206 => "Partial Content",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// A request read out of its frame.
#[derive(Debug)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The path and query: the target itself in origin-form, the part
    /// after the authority in absolute-form.
    pub path: &'a str,
    /// Whether the client wants the connection kept after the answer.
    pub keep_alive: bool,
    /// The head alone of a request sent with `Expect: 100-continue`: its
    /// body comes as the next frame, once the client has read `100
    /// Continue`.
    pub awaits_body: bool,
    /// The body, de-chunked if it came in chunks (empty if it comes apart).
    pub body: Cow<'a, [u8]>,
    /// The headers of conditional and range requests.
    pub conditions: Conditions<'a>,
}

/// What [`HttpDecoder`] makes of each frame.
#[derive(Debug)]
pub enum HttpItem {
    /// A request: its head, and its body unless that comes apart.
    Request(Parsed),
    /// The body of the request before, framed apart after `100 Continue`:
    /// where its data lies in the frame.
    Body(Vec<Range<usize>>),
}

/// A request as the decoder read it: places in the frame, and what its
/// headers decided.
#[derive(Debug)]
pub struct Parsed {
    method: Range<usize>,
    /// The path and query (`None` for a target in neither origin- nor
    /// absolute-form; an empty range for an absolute-form target without
    /// a path, which means `/`).
    path: Option<Range<usize>>,
    keep_alive: bool,
    /// The head alone of a request sent with `Expect: 100-continue`.
    pub awaits_body: bool,
    /// Where the head ends and the body starts.
    head_len: usize,
    /// The body's data: one range, or a chunked body's pieces.
    body: Vec<Range<usize>>,
    /// `If-None-Match`, `If-Modified-Since`, `Range`, `If-Range`.
    conditions: [Option<Range<usize>>; 4],
}

/// Where `part` lies in `buf`; an empty range if it is not a slice of
/// `buf` (a static `""`, or the `/` that `target_path` gives a target
/// without a path).
fn place(buf: &[u8], part: &[u8]) -> Range<usize> {
    let start = (part.as_ptr() as usize).wrapping_sub(buf.as_ptr() as usize);
    match start.checked_add(part.len()) {
        Some(end) if end <= buf.len() => start..end,
        _ => 0..0,
    }
}

impl Parsed {
    /// Notes what the handler will need of a head `httparse` has read out
    /// of `buf`.
    fn of(
        buf: &[u8],
        request: &httparse::Request<'_, '_>,
        head_len: usize,
        minor_version: u8,
        awaits_body: bool,
    ) -> Parsed {
        let mut connection_close = false;
        let mut connection_keep_alive = false;
        let mut conditions: [Option<Range<usize>>; 4] = Default::default();
        for header in request.headers.iter() {
            if let Some(slot) = Conditions::slot(header.name) {
                conditions[slot] = Some(place(buf, header.value));
            }
            if header.name.eq_ignore_ascii_case("connection") {
                for token in header.value.split(|&b| b == b',') {
                    let token = token.trim_ascii();
                    connection_close |= token.eq_ignore_ascii_case(b"close");
                    connection_keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            }
        }
        let keep_alive = if minor_version == 0 {
            connection_keep_alive && !connection_close
        } else {
            !connection_close
        };
        let method = request.method.unwrap_or("").as_bytes();
        let path = request
            .path
            .and_then(target_path)
            .map(|p| place(buf, p.as_bytes()));
        Parsed {
            method: place(buf, method),
            path,
            keep_alive,
            awaits_body,
            head_len,
            body: Vec::new(),
            conditions,
        }
    }
}

/// The data of a body whose pieces lie at `pieces` of `frame`: borrowed
/// when it is one piece, joined when it came in chunks.
pub fn body_of<'a>(frame: &'a [u8], pieces: &[Range<usize>]) -> Cow<'a, [u8]> {
    match pieces {
        [] => Cow::Borrowed(&[][..]),
        [one] => Cow::Borrowed(&frame[one.clone()]),
        many => Cow::Owned(
            many.iter()
                .flat_map(|piece| &frame[piece.clone()])
                .copied()
                .collect(),
        ),
    }
}

impl<'a> Request<'a> {
    /// The request in `frame`, as its item `parsed` describes it; `None`
    /// for a target in neither origin- nor absolute-form.
    pub fn read(frame: &'a [u8], parsed: &Parsed) -> Option<Request<'a>> {
        let text = |range: &Range<usize>| std::str::from_utf8(&frame[range.clone()]).ok();
        let condition = |slot: usize| parsed.conditions[slot].clone().map(|r| &frame[r]);
        Some(Request {
            method: text(&parsed.method)?,
            path: match text(parsed.path.as_ref()?)? {
                "" => "/",
                path => path,
            },
            keep_alive: parsed.keep_alive,
            awaits_body: parsed.awaits_body,
            body: body_of(frame, &parsed.body),
            conditions: Conditions::from_slots(condition),
        })
    }
}

/// A response's status line and headers.
pub struct Head<'a> {
    pub status: u16,
    pub date: &'a str,
    pub content_type: &'a str,
    /// Whole header lines, each ending in CRLF (such as `Allow: GET\r\n`).
    pub extra_headers: &'a str,
    pub keep_alive: bool,
    pub content_length: u64,
}

impl Head<'_> {
    /// Writes the status line and headers, through the blank line, into `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        let connection = if self.keep_alive {
            "keep-alive"
        } else {
            "close"
        };
        let _ = write!(
            out,
            "HTTP/1.1 {} {}\r\nServer: selectloop\r\nDate: {}\r\n\
             Content-Type: {}\r\nContent-Length: {}\r\n{}\
             Connection: {connection}\r\n\r\n",
            self.status,
            reason(self.status),
            self.date,
            self.content_type,
            self.content_length,
            self.extra_headers,
        );
    }
}

/// Writes a whole response into `out`.
pub fn respond(
    out: &mut Vec<u8>,
    status: u16,
    date: &str,
    content_type: &str,
    extra_headers: &str,
    keep_alive: bool,
    body: &[u8],
) {
    Head {
        status,
        date,
        content_type,
        extra_headers,
        keep_alive,
        content_length: body.len() as u64,
    }
    .write(out);
    out.extend_from_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(decoder: &mut HttpDecoder, wire: &[u8]) -> Result<Vec<Vec<u8>>, DecodeError> {
        let mut out = Vec::new();
        let mut rest = wire;
        while let Some(frame) = decoder.decode(rest)? {
            out.push(rest[frame.payload()].to_vec());
            rest = &rest[frame.consumed()..];
        }
        Ok(out)
    }

    const PIPELINE: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n\
POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello\
POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n\
GET /json HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";

    #[test]
    fn pipelined_requests_split_at_every_byte() {
        for cut in 0..=PIPELINE.len() {
            let mut decoder = HttpDecoder::new(Limits::default());
            let mut got = Vec::new();
            let mut buffered = Vec::new();
            for piece in [&PIPELINE[..cut], &PIPELINE[cut..]] {
                buffered.extend_from_slice(piece);
                while let Some(frame) = decoder.decode(&buffered).unwrap() {
                    let bytes = buffered[frame.payload()].to_vec();
                    buffered.drain(..frame.consumed());
                    got.push((bytes, frame.into_item().unwrap()));
                }
            }
            assert_eq!(got.len(), 4, "cut at {cut}");
            fn request((frame, item): &(Vec<u8>, HttpItem)) -> Request<'_> {
                match item {
                    HttpItem::Request(parsed) => Request::read(frame, parsed).unwrap(),
                    HttpItem::Body(_) => panic!("no body framed apart"),
                }
            }
            let post = request(&got[1]);
            assert_eq!((post.method, post.path), ("POST", "/echo"));
            assert_eq!(&*post.body, b"hello");
            let chunked = request(&got[2]);
            assert_eq!(&*chunked.body, b"abcde");
            let old = request(&got[3]);
            assert!(old.keep_alive, "HTTP/1.0 with Connection: keep-alive");
        }
    }

    #[test]
    fn refusals_name_their_status() {
        let limits = Limits {
            max_header: 72,
            max_body: 8,
        };
        let cases: [(&[u8], &str); 8] = [
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n", "400"),
            (b"GET / HTTP/2.0\r\n\r\n", "505"),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\n",
                "413",
            ),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n9\r\n",
                "413",
            ),
            (
                b"GET / HTTP/1.1\r\nX-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                "431",
            ),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                "400",
            ),
            (b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 1\r\n\r\n", "417"),
            (
                b"PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: br\r\n\r\n",
                "501",
            ),
        ];
        for (wire, status) in cases {
            let got = frames(&mut HttpDecoder::new(limits), wire);
            match got {
                Err(DecodeError::Invalid(why)) => assert!(
                    why.starts_with(status),
                    "{}: {why}",
                    String::from_utf8_lossy(wire)
                ),
                other => panic!("{}: {other:?}", String::from_utf8_lossy(wire)),
            }
        }
    }

    /// How many requests the decoder frames out of `wire`, and whether it
    /// then refuses the rest (the connection closes).
    fn requests_seen(wire: &[u8]) -> (usize, bool) {
        let mut decoder = HttpDecoder::new(Limits::default());
        let mut rest = wire;
        let mut seen = 0;
        loop {
            match decoder.decode(rest) {
                Ok(Some(frame)) => {
                    seen += 1;
                    rest = &rest[frame.consumed()..];
                }
                Ok(None) => return (seen, false),
                Err(_) => return (seen, true),
            }
        }
    }

    /// Request smuggling: bytes that a front proxy could frame another way
    /// are refused, so this server never sees a request the proxy took for
    /// body (or the other way round). Each case: the bytes, then how many
    /// requests are framed before the refusal.
    #[test]
    fn smuggling_vectors_are_refused_where_they_begin() {
        let smuggled = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n";
        let bare_lf_ext = format!(
            "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\
             2;\nxx\r\n3c\r\n{}\r\n0\r\n\r\n",
            format!("0\r\n\r\n{smuggled}").repeat(2).get(..60).unwrap()
        );
        let cases: Vec<(String, usize)> = vec![
            // A bare LF inside a chunk extension.
            (bare_lf_ext, 0),
            // The trailer section ended by a bare LF, a GET behind it.
            (format!("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\n{smuggled}"), 0),
            // An empty chunk-size line.
            (format!("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\r\n{smuggled}"), 0),
            // Chunked in HTTP/1.0.
            (format!("POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{smuggled}"), 0),
            // Content-Length with a sign, a no-break space, an ideographic space.
            (format!("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello{smuggled}"), 0),
            (format!("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\u{a0}\r\n\r\nhello{smuggled}"), 0),
            (format!("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: \u{3000}5\r\n\r\nhello{smuggled}"), 0),
            // Chunked given twice.
            (format!("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{smuggled}"), 0),
            // CL.TE and TE.CL: both headers.
            (format!("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG{smuggled}"), 0),
            (format!("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n{smuggled}"), 0),
            // TE.TE obfuscations.
            (format!("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n{smuggled}"), 0),
            (format!("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n{smuggled}"), 0),
            (format!("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n{smuggled}"), 0),
            (format!("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n{smuggled}"), 0),
            (format!("POST /echo HTTP/1.1\r\nHost: a\r\nX: y\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n{smuggled}"), 0),
            // Duplicate and malformed Content-Length.
            (format!("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n{smuggled}"), 0),
            (format!("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello{smuggled}"), 0),
            (format!("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\nhello{smuggled}"), 0),
            // obs-fold, bare CR, NUL, bare LF in the head.
            (format!("GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n z\r\n\r\n{smuggled}"), 0),
            (format!("GET / HTTP/1.1\r\nHost: a\r\nX: y\rZ: z\r\n\r\n{smuggled}"), 0),
            (format!("GET / HTTP/1.1\r\nHost: a\r\nX: y\0z\r\n\r\n{smuggled}"), 0),
            (format!("GET / HTTP/1.1\nHost: a\n\n{smuggled}"), 0),
            (format!("GET / HTTP/1.1\r\nHost: a\r\n\n{smuggled}"), 0),
            // Chunk-size overflow, and a chunk without its final CRLF.
            (format!("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000003\r\nabc\r\n0\r\n\r\n{smuggled}"), 0),
            (format!("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc0\r\n\r\n{smuggled}"), 0),
            // Host missing or repeated (HTTP/1.1).
            (format!("GET / HTTP/1.1\r\n\r\n{smuggled}"), 0),
            (format!("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n{smuggled}"), 0),
            // A good request first: it is framed, then the bad one refused.
            (format!("{smuggled}GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n"), 1),
        ];
        for (wire, framed_before_refusal) in cases {
            assert_eq!(
                requests_seen(wire.as_bytes()),
                (framed_before_refusal, true),
                "{wire:?}"
            );
        }
        // The same requests framed well: each pipelined GET is its own.
        let good = format!(
            "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\
             2;a=b\r\nxx\r\n0\r\nX-T: 1\r\n\r\n{smuggled}\
             POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello{smuggled}"
        );
        assert_eq!(requests_seen(good.as_bytes()), (4, false));
    }

    #[test]
    fn expect_continue_frames_the_head_then_the_body() {
        let mut decoder = HttpDecoder::new(Limits::default());
        let head =
            b"PUT /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";
        let frame = decoder.decode(head).unwrap().unwrap();
        assert_eq!(frame.consumed(), head.len());
        let Some(HttpItem::Request(parsed)) = frame.item() else {
            panic!("the head is a request");
        };
        let request = Request::read(&head[frame.payload()], parsed).unwrap();
        assert!(request.awaits_body);
        assert!(decoder.decode(b"hel").unwrap().is_none());
        let body = decoder.decode(b"helloGET").unwrap().unwrap();
        assert_eq!((body.payload(), body.consumed()), (0..5, 5));
        let Some(HttpItem::Body(pieces)) = body.item() else {
            panic!("the body framed apart");
        };
        assert_eq!(&*body_of(b"helloGET", pieces), b"hello");
        // The body already on its way: one frame, no 100 needed.
        let mut decoder = HttpDecoder::new(Limits::default());
        let whole = [head.as_slice(), b"hello"].concat();
        let frame = decoder.decode(&whole).unwrap().unwrap();
        assert_eq!(frame.consumed(), whole.len());
        let Some(HttpItem::Request(parsed)) = frame.item() else {
            panic!("the whole request");
        };
        let request = Request::read(&whole, parsed).unwrap();
        assert!(!request.awaits_body);
        assert_eq!(&*request.body, b"hello");
    }
}
