//! HTTP/1.1 requests framed by a `Decoder` (headers parsed with `httparse`,
//! then a `Content-Length` or chunked body), and responses written into a
//! reused buffer.

use std::io::Write;

use selectloop::codec::{DecodeError, Decoder, Frame};

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
    /// A chunked body: the next chunk-size line starts at `pos`; `body`
    /// bytes of data so far.
    Chunked { pos: usize, body: usize },
}

/// Frames one request at a time: the frame is the whole request, head and
/// body, which the handler reads again with [`Request::parse`].
#[derive(Debug)]
pub struct HttpDecoder {
    limits: Limits,
    stage: Stage,
}

impl HttpDecoder {
    pub fn new(limits: Limits) -> HttpDecoder {
        HttpDecoder {
            limits,
            stage: Stage::Head,
        }
    }

    /// An error whose text starts with the status to answer it with.
    fn refuse(status: u16, why: &str) -> DecodeError {
        DecodeError::invalid(format!("{status} {}: {why}", reason(status)))
    }
}

impl Decoder for HttpDecoder {
    fn decode(&mut self, buf: &[u8]) -> Result<Option<Frame>, DecodeError> {
        loop {
            match self.stage {
                Stage::Head => {
                    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                    let mut request = httparse::Request::new(&mut headers);
                    let head = match request.parse(buf) {
                        Ok(httparse::Status::Complete(n)) => n,
                        Ok(httparse::Status::Partial) => {
                            if buf.len() > self.limits.max_header {
                                return Err(Self::refuse(431, "headers too large"));
                            }
                            return Ok(None);
                        }
                        Err(httparse::Error::Version) => {
                            return Err(Self::refuse(505, "only HTTP/1.0 and HTTP/1.1"))
                        }
                        Err(httparse::Error::TooManyHeaders) => {
                            return Err(Self::refuse(431, "too many headers"))
                        }
                        Err(e) => return Err(Self::refuse(400, &e.to_string())),
                    };
                    if head > self.limits.max_header {
                        return Err(Self::refuse(431, "headers too large"));
                    }
                    let framing = body_framing(request.headers)?;
                    match framing {
                        BodyFraming::Chunked => self.stage = Stage::Chunked { pos: head, body: 0 },
                        BodyFraming::Length(0) => return Ok(Some(Frame::new(0..head, head))),
                        BodyFraming::Length(len) if len > self.limits.max_body => {
                            return Err(Self::refuse(413, "body too large"))
                        }
                        BodyFraming::Length(len) => self.stage = Stage::Body { end: head + len },
                    }
                }
                Stage::Body { end } => {
                    if buf.len() < end {
                        return Ok(None);
                    }
                    self.stage = Stage::Head;
                    return Ok(Some(Frame::new(0..end, end)));
                }
                Stage::Chunked { pos, body } => {
                    let (size_line, size) = match httparse::parse_chunk_size(&buf[pos..]) {
                        Ok(httparse::Status::Complete(found)) => found,
                        Ok(httparse::Status::Partial) => return Ok(None),
                        Err(_) => return Err(Self::refuse(400, "bad chunk size")),
                    };
                    let data = pos + size_line;
                    if size == 0 {
                        // Trailers, if any, end with an empty line.
                        let rest = &buf[data..];
                        let end = if rest.starts_with(b"\r\n") {
                            data + 2
                        } else {
                            match rest.windows(4).position(|w| w == b"\r\n\r\n") {
                                Some(at) => data + at + 4,
                                None if rest.len() > self.limits.max_header => {
                                    return Err(Self::refuse(431, "trailers too large"))
                                }
                                None => return Ok(None),
                            }
                        };
                        self.stage = Stage::Head;
                        return Ok(Some(Frame::new(0..end, end)));
                    }
                    let size = usize::try_from(size).unwrap_or(usize::MAX);
                    let body = body.saturating_add(size);
                    if body > self.limits.max_body {
                        return Err(Self::refuse(413, "body too large"));
                    }
                    let next = data + size + 2;
                    if buf.len() < next {
                        return Ok(None);
                    }
                    if &buf[next - 2..next] != b"\r\n" {
                        return Err(Self::refuse(400, "chunk not ended by CRLF"));
                    }
                    self.stage = Stage::Chunked { pos: next, body };
                }
            }
        }
    }
}

enum BodyFraming {
    Length(usize),
    Chunked,
}

/// How the body is delimited, from the headers (RFC 9112 section 6).
fn body_framing(headers: &[httparse::Header<'_>]) -> Result<BodyFraming, DecodeError> {
    let mut length = None;
    let mut chunked = false;
    for header in headers {
        if header.name.eq_ignore_ascii_case("content-length") {
            let value = std::str::from_utf8(header.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or_else(|| HttpDecoder::refuse(400, "bad Content-Length"))?;
            if length.is_some_and(|l| l != value) {
                return Err(HttpDecoder::refuse(400, "conflicting Content-Length"));
            }
            length = Some(value);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            if !header.value.eq_ignore_ascii_case(b"chunked") {
                return Err(HttpDecoder::refuse(501, "only chunked transfer coding"));
            }
            chunked = true;
        }
    }
    match (chunked, length) {
        (true, Some(_)) => Err(HttpDecoder::refuse(
            400,
            "both Transfer-Encoding and Content-Length",
        )),
        (true, None) => Ok(BodyFraming::Chunked),
        (false, length) => Ok(BodyFraming::Length(length.unwrap_or(0))),
    }
}

/// The reason phrase of the statuses this server sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
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
    pub path: &'a str,
    /// Whether the client wants the connection kept after the answer.
    pub keep_alive: bool,
    /// The body, de-chunked if it came in chunks.
    pub body: std::borrow::Cow<'a, [u8]>,
}

impl<'a> Request<'a> {
    /// Reads a request framed by [`HttpDecoder`] (so known to be well formed).
    pub fn parse(frame: &'a [u8]) -> Option<Request<'a>> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        let head = match request.parse(frame).ok()? {
            httparse::Status::Complete(n) => n,
            httparse::Status::Partial => return None,
        };
        let minor_version = request.version?;
        let mut chunked = false;
        let mut connection_close = false;
        let mut connection_keep_alive = false;
        for header in request.headers.iter() {
            if header.name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = true;
            } else if header.name.eq_ignore_ascii_case("connection") {
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
        let raw_body = &frame[head..];
        let body = if chunked {
            std::borrow::Cow::Owned(dechunk(raw_body)?)
        } else {
            std::borrow::Cow::Borrowed(raw_body)
        };
        Some(Request {
            method: request.method?,
            path: request.path?,
            keep_alive,
            body,
        })
    }
}

/// The data of a chunked body (already checked by the decoder).
fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let (line, size) = match httparse::parse_chunk_size(raw).ok()? {
            httparse::Status::Complete(found) => found,
            httparse::Status::Partial => return None,
        };
        if size == 0 {
            return Some(body);
        }
        let size = usize::try_from(size).ok()?;
        body.extend_from_slice(raw.get(line..line + size)?);
        raw = raw.get(line + size + 2..)?;
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
                    got.push(buffered[frame.payload()].to_vec());
                    buffered.drain(..frame.consumed());
                }
            }
            assert_eq!(got.len(), 4, "cut at {cut}");
            let chunked = Request::parse(&got[2]).unwrap();
            assert_eq!(&*chunked.body, b"abcde");
            let old = Request::parse(&got[3]).unwrap();
            assert!(old.keep_alive, "HTTP/1.0 with Connection: keep-alive");
        }
    }

    #[test]
    fn refusals_name_their_status() {
        let limits = Limits {
            max_header: 64,
            max_body: 8,
        };
        let cases: [(&[u8], &str); 6] = [
            (b"GET / HTTP/1.1\r\nX: \x01\r\n\r\n", "400"),
            (b"GET / HTTP/2.0\r\n\r\n", "505"),
            (b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\n", "413"),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n9\r\n",
                "413",
            ),
            (
                b"GET / HTTP/1.1\r\nX-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                "431",
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                "400",
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
}
