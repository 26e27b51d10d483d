//! An HTTP/1.1 server on one selectloop reactor: requests framed by a
//! `Decoder` (headers parsed with `httparse`, the parser hyper uses),
//! keep-alive and pipelining, driven in tests by curl, ab and wrk.
//!
//! ```text
//! cargo run --release --example http_server -- --addr 127.0.0.1:8080
//! curl -i http://127.0.0.1:8080/
//! wrk -t1 -c50 -d5s http://127.0.0.1:8080/
//! ```
//!
//! Routes: `GET /` answers `Hello, World!` (text/plain), `GET /json` a small
//! JSON object (TechEmpower's two simplest tests), `POST /echo` returns the
//! body; with `--root DIR`, other `GET`s serve files under DIR (never
//! outside it: `..`, also percent-encoded, and symbolic links are refused).
//! A file larger than 256 KiB is sent a piece at a time as the client reads
//! it (`on_drained`), so a file of any size costs a few hundred KiB of
//! memory, and requests pipelined behind it wait their turn. `HEAD` is
//! answered as `GET` without the body. Files carry `ETag` and
//! `Last-Modified`, and answer conditional requests (304) and one byte
//! range (206, or 416 past the end), as nginx does: `curl -C -` resumes.
//!
//! HTTP/1.1 keeps the connection unless `Connection: close`; HTTP/1.0 only
//! with `Connection: keep-alive` (as `ab -k` sends). Bodies come with
//! `Content-Length` or chunked, framed strictly to RFC 9112: where a proxy
//! in front could read the same bytes as another request boundary (a bare
//! LF, `Content-Length: +5`, chunked twice or beside `Content-Length`, a
//! malformed chunk line or trailer, `Host` missing or repeated), the
//! request is refused (docs/protocols.md lists every rule). `Expect:
//! 100-continue` is answered before the body is read. Errors: 400
//! malformed, 404, 405 (with `Allow`), 413 body too large, 417
//! expectation, 431 headers too large, 501 transfer coding, 505 version; a
//! request the decoder refuses is answered after the ones before it, then
//! its connection closes, the others carrying on. The `Date` header is
//! formatted once a second, by a timer.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use selectloop::backend::BackendKind;
use selectloop::codec::DecodeError;
use selectloop::{Balance, CloseReason, Config, ConnId, Context, Group, Handler, Reactor, TimerId};

use files::Sending;
use http::Head;

mod chunked;
#[path = "../common/mod.rs"]
mod common;
#[cfg(test)]
mod differential;
mod files;
mod framing;
mod http;
mod validators;

use http::{respond, HttpDecoder, HttpItem, Limits, Parsed, Request};
use validators::{Answer, Conditions, Validators};

const USAGE: &str = "\
usage: http_server [--addr HOST:PORT] [--root DIR] [--max-header BYTES] [--max-body BYTES]
                   [--max-requests N] [--keepalive-timeout-s S] [--header-timeout-s S]
                   [--backend epoll|poll|select|uring] [--threads N] [--balance reuseport|acceptor]

An HTTP/1.1 server: GET / (Hello, World!), GET /json, POST /echo, and files under DIR.
  --addr HOST:PORT         where to listen (default 127.0.0.1:8088; port 0 picks one)
  --root DIR               serve the files under DIR for other GET requests
  --max-header BYTES       request line and headers (default 8192; past it 431)
  --max-body BYTES         request body (default 1048576; past it 413)
  --max-requests N         requests per connection before it is closed (default 1000)
  --keepalive-timeout-s S  close a connection idle this long (default 75)
  --header-timeout-s S     a request must arrive whole within S once begun (default 60)
  --threads N              N reactors, one per thread, on the same address (default 1)
  --balance NAME           with --threads: reuseport (default on Linux) or acceptor
  --backend NAME           epoll (default), poll, select or uring (io_uring; epoll where it is missing)
  -h, --help               this text
";

const JSON: &[u8] = br#"{"message":"Hello, World!"}"#;

struct HttpServer {
    root: Option<PathBuf>,
    max_requests: u32,
    /// Requests served per connection, for the keep-alive limit.
    served: HashMap<ConnId, u32>,
    /// `Date` as HTTP writes it, formatted once a second.
    date: String,
    /// The timer that refreshes `date`, set on the loop's first request.
    clock: Option<TimerId>,
    /// Reused for every response.
    out: Vec<u8>,
    /// Files being sent a piece at a time, by connection.
    sending: HashMap<ConnId, Stream>,
    /// Heads of requests sent with `Expect: 100-continue`, answered with
    /// `100 Continue`, whose bodies come as the connection's next frame.
    awaiting_body: HashMap<ConnId, (Vec<u8>, Parsed)>,
}

/// A large file on its way to one client.
struct Stream {
    file: Sending,
    keep_alive: bool,
    /// Requests pipelined behind the file, answered once it is sent.
    waiting: VecDeque<(HttpItem, Vec<u8>)>,
}

impl HttpServer {
    fn new(root: Option<PathBuf>, max_requests: u32) -> HttpServer {
        HttpServer {
            root,
            max_requests,
            served: HashMap::new(),
            date: String::new(),
            clock: None,
            out: Vec::with_capacity(1024),
            sending: HashMap::new(),
            awaiting_body: HashMap::new(),
        }
    }

    /// Starts the once-a-second `Date` refresh on this handler's loop (each
    /// loop of a group has its own handler and clock).
    fn start_clock(&mut self, cx: &mut Context<'_>) {
        if self.clock.is_none() {
            self.clock = Some(cx.set_periodic(Duration::from_secs(1)));
            self.refresh_date();
        }
    }

    fn refresh_date(&mut self) {
        self.date = httpdate::fmt_http_date(SystemTime::now());
    }

    /// Answers one request into `self.out` (starting a [`Stream`] for a
    /// large file); returns whether to keep the connection.
    fn answer(&mut self, conn: ConnId, request: &Request<'_>, keep_alive: bool) -> bool {
        let path = request.path.split('?').next().unwrap_or("");
        // HEAD is GET without the body (RFC 9110 9.3.2): routed the same,
        // the same headers, Content-Length included.
        let head_only = request.method == "HEAD";
        let method = if head_only { "GET" } else { request.method };
        let start = self.out.len();
        if let ("GET", Some(file)) = (method, self.file_for(path)) {
            self.answer_file(conn, &file, &request.conditions, keep_alive, head_only);
            return keep_alive;
        }
        self.answer_route(method, path, request, keep_alive);
        if head_only {
            strip_body(&mut self.out, start);
        }
        keep_alive
    }

    /// The file under `--root` that `path` names, if any.
    fn file_for(&self, path: &str) -> Option<PathBuf> {
        if path == "/" || path == "/json" || path == "/echo" {
            return None;
        }
        files::resolve(self.root.as_deref()?, path)
    }

    /// A file: whole if it is small, else its first piece and a [`Stream`]
    /// for the rest; or the part a `Range` asks for (206, 416), or 304 if
    /// the client's copy is current. 403 if it cannot be read.
    fn answer_file(
        &mut self,
        conn: ConnId,
        file: &std::path::Path,
        conditions: &Conditions<'_>,
        keep_alive: bool,
        head_only: bool,
    ) {
        let start = self.out.len();
        let opened = Sending::open(file).and_then(|(mut sending, length, modified)| {
            let version = Validators::new(length, modified);
            let answer = validators::answer(!head_only, length, &version, conditions);
            if let Answer::Part { first, last } = answer {
                sending.only(first, last)?;
            }
            Ok((sending, length, version, answer))
        });
        let (mut sending, length, version, answer) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                log::warn!("cannot read {}: {e}", file.display());
                respond(
                    &mut self.out,
                    403,
                    &self.date,
                    "text/plain",
                    "",
                    keep_alive,
                    b"403\n",
                );
                if head_only {
                    // HEAD: the status and headers of GET, never its body.
                    strip_body(&mut self.out, start);
                }
                return;
            }
        };
        let mut headers = version.headers();
        let (status, content_length) = match answer {
            Answer::Whole => (200, length),
            // The length a 200 would have (RFC 9110 8.6); no body follows.
            Answer::NotModified => (304, length),
            Answer::Part { first, last } => {
                headers.push_str(&format!("Content-Range: bytes {first}-{last}/{length}\r\n"));
                (206, last - first + 1)
            }
            Answer::Unsatisfiable => {
                headers.push_str(&format!("Content-Range: bytes */{length}\r\n"));
                respond(
                    &mut self.out,
                    416,
                    &self.date,
                    "text/plain",
                    &headers,
                    keep_alive,
                    b"416\n",
                );
                return;
            }
        };
        Head {
            status,
            date: &self.date,
            content_type: files::content_type(file),
            extra_headers: &headers,
            keep_alive,
            content_length,
        }
        .write(&mut self.out);
        if head_only || status == 304 {
            return;
        }
        match sending.next_piece(&mut self.out) {
            Ok(true) => {}
            Ok(false) => {
                let stream = Stream {
                    file: sending,
                    keep_alive,
                    waiting: VecDeque::new(),
                };
                self.sending.insert(conn, stream);
            }
            Err(e) => {
                // The head is written and promises bytes that cannot come:
                // the client must see the connection end, not a short body.
                log::warn!("cannot read {}: {e}", file.display());
                self.out.clear();
                self.sending.remove(&conn);
            }
        }
    }

    /// The routes other than files.
    fn answer_route(&mut self, method: &str, path: &str, request: &Request<'_>, keep_alive: bool) {
        let out = &mut self.out;
        let date = &self.date;
        match (method, path) {
            ("GET", "/") => respond(
                out,
                200,
                date,
                "text/plain",
                "",
                keep_alive,
                b"Hello, World!",
            ),
            ("GET", "/json") => respond(out, 200, date, "application/json", "", keep_alive, JSON),
            ("POST", "/echo") => respond(
                out,
                200,
                date,
                "application/octet-stream",
                "",
                keep_alive,
                &request.body,
            ),
            (_, "/echo") => respond(
                out,
                405,
                date,
                "text/plain",
                "Allow: POST\r\n",
                keep_alive,
                b"405\n",
            ),
            ("GET", _) => respond(out, 404, date, "text/plain", "", keep_alive, b"404\n"),
            _ => respond(
                out,
                405,
                date,
                "text/plain",
                "Allow: GET\r\n",
                keep_alive,
                b"405\n",
            ),
        }
    }

    /// Answers one request and sends the answer.
    fn serve(&mut self, cx: &mut Context<'_>, conn: ConnId, item: HttpItem, frame: &[u8]) {
        let parsed = match item {
            HttpItem::Body(pieces) => {
                // The body of the request whose head came before.
                let Some((head, parsed)) = self.awaiting_body.remove(&conn) else {
                    return; // the decoder frames a body only after its head
                };
                let request = Request::read(&head, &parsed).map(|mut request| {
                    request.body = http::body_of(frame, &pieces);
                    request.awaits_body = false;
                    request
                });
                return self.serve_request(cx, conn, request);
            }
            HttpItem::Request(parsed) => parsed,
        };
        if parsed.awaits_body {
            let _ = cx.send(conn, b"HTTP/1.1 100 Continue\r\n\r\n");
            self.awaiting_body.insert(conn, (frame.to_vec(), parsed));
            return;
        }
        let request = Request::read(frame, &parsed);
        self.serve_request(cx, conn, request);
    }

    fn serve_request(&mut self, cx: &mut Context<'_>, conn: ConnId, request: Option<Request<'_>>) {
        let Some(request) = request else {
            // A target in another form (authority, asterisk): the decoder
            // has framed the request, so the connection stays in step.
            respond(
                &mut self.out,
                400,
                &self.date,
                "text/plain",
                "",
                false,
                b"400 Bad Request: request target not served\n",
            );
            let _ = cx.send(conn, &self.out);
            self.out.clear();
            cx.close(conn);
            return;
        };
        let served = self.served.entry(conn).or_insert(0);
        *served += 1;
        let keep_alive = request.keep_alive && *served < self.max_requests;
        let keep = self.answer(conn, &request, keep_alive);
        if self.out.is_empty() {
            cx.close_now(conn); // a file failed after its head was promised
            return;
        }
        let _ = cx.send(conn, &self.out);
        self.out.clear();
        // A streamed file closes the connection once it is sent.
        if !keep && !self.sending.contains_key(&conn) {
            cx.close(conn);
        }
    }

    /// The client has read the last piece: the next one, or, once the file
    /// is sent, the requests that waited behind it.
    fn continue_stream(&mut self, cx: &mut Context<'_>, conn: ConnId) {
        let Some(stream) = self.sending.get_mut(&conn) else {
            return;
        };
        let done = match stream.file.next_piece(&mut self.out) {
            Ok(done) => done,
            Err(e) => {
                log::warn!("{conn}: file cut short: {e}");
                self.out.clear();
                self.sending.remove(&conn);
                cx.close_now(conn);
                return;
            }
        };
        let _ = cx.send(conn, &self.out);
        self.out.clear();
        if !done {
            return;
        }
        let Some(stream) = self.sending.remove(&conn) else {
            return;
        };
        if !stream.keep_alive {
            cx.close(conn);
            return;
        }
        cx.resume_reading(conn);
        let mut waiting = stream.waiting;
        while let Some((item, frame)) = waiting.pop_front() {
            self.serve(cx, conn, item, &frame);
            if let Some(next) = self.sending.get_mut(&conn) {
                // Another large file: the rest waits behind it in turn.
                next.waiting = waiting;
                return;
            }
        }
    }
}

impl Handler<HttpItem> for HttpServer {
    fn on_item(&mut self, cx: &mut Context<'_>, conn: ConnId, item: HttpItem, frame: &[u8]) {
        self.start_clock(cx);
        if let Some(stream) = self.sending.get_mut(&conn) {
            // Answers go out in order: this one after the file. Reading
            // pauses so that only what is already queued waits here.
            stream.waiting.push_back((item, frame.to_vec()));
            cx.pause_reading(conn);
            return;
        }
        self.serve(cx, conn, item, frame);
    }

    fn on_drained(&mut self, cx: &mut Context<'_>, conn: ConnId) {
        self.continue_stream(cx, conn);
    }

    fn on_decode_error(&mut self, cx: &mut Context<'_>, conn: ConnId, error: &DecodeError) {
        self.start_clock(cx);
        // The decoder's refusals start with the status to answer; the
        // loop's own maximum means a request too large.
        let (status, text) = match error {
            DecodeError::Invalid(why) => (
                why.get(..3).and_then(|s| s.parse().ok()).unwrap_or(400),
                why.to_string(),
            ),
            other => (413, other.to_string()),
        };
        respond(
            &mut self.out,
            status,
            &self.date,
            "text/plain",
            "",
            false,
            format!("{text}\n").as_bytes(),
        );
        let _ = cx.send(conn, &self.out);
        self.out.clear();
    }

    fn on_close(&mut self, _cx: &mut Context<'_>, conn: ConnId, _reason: &CloseReason) {
        self.served.remove(&conn);
        self.sending.remove(&conn);
        self.awaiting_body.remove(&conn);
    }

    fn on_timer(&mut self, _cx: &mut Context<'_>, _timer: TimerId) {
        self.refresh_date();
    }
}

/// Cuts the body off the response that starts at `start` of `out`,
/// keeping its head (for HEAD, RFC 9110 section 9.3.2).
fn strip_body(out: &mut Vec<u8>, start: usize) {
    let head_end = out[start..]
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(out.len(), |at| start + at + 4);
    out.truncate(head_end);
}

fn main() -> ExitCode {
    common::run("http_server", serve)
}

fn serve() -> io::Result<()> {
    common::init_logging();
    let mut addr = common::default_addr();
    let mut root = None;
    let mut limits = Limits::default();
    let mut max_requests = 1000;
    let mut backend = BackendKind::default();
    let mut threads = 1;
    let mut balance = Balance::default();
    let mut keepalive = Duration::from_secs(75);
    let mut header_timeout = Duration::from_secs(60);
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next().map_err(common::invalid)? {
        use lexopt::prelude::*;
        match arg {
            Long("addr") => addr = common::addr(&mut parser)?,
            Long("root") => root = Some(common::value::<PathBuf>(&mut parser)?),
            Long("max-header") => limits.max_header = common::value(&mut parser)?,
            Long("max-body") => limits.max_body = common::value(&mut parser)?,
            Long("max-requests") => max_requests = common::value::<u32>(&mut parser)?.max(1),
            Long("keepalive-timeout-s") => {
                keepalive = Duration::from_secs(common::value(&mut parser)?)
            }
            Long("header-timeout-s") => {
                header_timeout = Duration::from_secs(common::value(&mut parser)?)
            }
            Long("backend") => backend = common::backend(&mut parser)?,
            Long("threads") => threads = common::threads(&mut parser)?,
            Long("balance") => balance = common::balance(&mut parser)?,
            Long("help") | Short('h') => common::print_help(USAGE),
            other => return Err(common::invalid(other.unexpected())),
        }
    }
    let root = match root {
        Some(dir) => Some(
            dir.canonicalize()
                .map_err(common::failed(format!("cannot serve {}", dir.display())))?,
        ),
        None => None,
    };
    // The loop's cap on one request: head, body, and chunk framing.
    let max_request = limits.max_header + 2 * limits.max_body + 64 * 1024;
    let config = Config::new()
        .backend(backend)
        .decoder(max_request, move || HttpDecoder::new(limits))
        // nginx's keepalive_timeout and client_header_timeout: the
        // defence against slowloris clients.
        .idle_timeout(keepalive)
        .message_deadline(header_timeout);
    if threads > 1 {
        let group = Group::builder(config)
            .threads(threads)
            .balance(balance)
            .spawn(addr, move |_| HttpServer::new(root.clone(), max_requests))
            .map_err(common::group_failed(threads, addr))?;
        return common::run_group(group, Duration::from_millis(500));
    }
    let mut reactor = Reactor::with_config(config)?;
    let listener = common::listen(&mut reactor, addr)?;
    // Caught before the address is printed: a signal sent as soon as it
    // is read must find the loop listening for it. SIGINT or SIGTERM:
    // stop accepting, answer what was received, close.
    reactor.stop_on_signals()?;
    common::announce(&reactor, listener)?;
    let mut server = HttpServer::new(root, max_requests);
    reactor.run(&mut server)
}
