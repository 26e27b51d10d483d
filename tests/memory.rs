//! Memory stays bounded whatever a client sends. Each test measures the
//! process's resident memory, so they run one at a time (a shared lock).
//!
//! Unix only: resident memory is read from /proc.
#![cfg(unix)]

mod util;

use util::BackendKind;

use std::io::{Read, Write};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use selectloop::codec::{LengthPrefixed, Lines};
use selectloop::{Config, ConnId, Context, Handler};
use util::{connect, read_n, write_all, Echo, Server};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const FRAME: usize = 16 * 1024;
const TOTAL: usize = 256 * 1024 * 1024;

/// The byte at `offset` of the stream of frames the writer sends.
fn payload_byte(offset: usize) -> u8 {
    (offset % 253) as u8
}

/// A client writes 256 MiB of 16 KiB frames and does not read. The server
/// stops handling once the echo backs up, then stops reading: its memory
/// does not follow the client's. When the client reads, every byte comes
/// back, in order.
fn client_that_writes_256_mib_without_reading_costs_a_few_mib_and_gets_every_byte(
    backend: BackendKind,
) {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start(
        Config::new()
            .backend(backend)
            .codec(LengthPrefixed::new(64 * 1024)),
        Echo::default(),
    );
    let baseline = util::vm_rss_kib();
    let client = connect(server.addr);
    let mut writer_end = client.try_clone().unwrap();
    let mut reader_end = client;

    let writer = thread::spawn(move || {
        let mut frame = vec![0u8; 4 + FRAME];
        frame[..4].copy_from_slice(&(FRAME as u32).to_be_bytes());
        let mut offset = 0;
        while offset < TOTAL {
            for (i, byte) in frame[4..].iter_mut().enumerate() {
                *byte = payload_byte(offset + i);
            }
            writer_end.write_all(&frame).expect("write");
            offset += FRAME;
        }
    });

    // The server fills its output up to the high watermark, then the inbound
    // queue, then pauses reading; the client's writes then block.
    let paused = server.wait_for("reading to pause", |s| s.read_pauses >= 1);
    thread::sleep(Duration::from_millis(300));
    let stalled = server.stats();
    assert!(
        stalled.bytes_read < 64 * 1024 * 1024,
        "the server kept reading: {} bytes",
        stalled.bytes_read
    );
    let grown_kib = util::vm_rss_kib().saturating_sub(baseline);
    eprintln!(
        "stalled after {} KiB read ({} read pauses); resident memory grew {grown_kib} KiB",
        stalled.bytes_read / 1024,
        paused.read_pauses
    );
    assert!(
        grown_kib < 8 * 1024,
        "server grew {grown_kib} KiB while stalled"
    );

    // Now read everything back and check it as it comes.
    let mut buf = vec![0u8; 64 * 1024];
    let mut stream_offset = 0usize; // position in the echoed stream, headers included
    let frame_len = 4 + FRAME;
    while stream_offset < TOTAL / FRAME * frame_len {
        let n = reader_end.read(&mut buf).expect("read echo");
        assert!(n > 0, "server closed after {stream_offset} bytes");
        for (i, &byte) in buf[..n].iter().enumerate() {
            let at = stream_offset + i;
            let in_frame = at % frame_len;
            let expected = if in_frame < 4 {
                (FRAME as u32).to_be_bytes()[in_frame]
            } else {
                payload_byte(at / frame_len * FRAME + in_frame - 4)
            };
            assert_eq!(byte, expected, "byte {at} of the echo");
        }
        stream_offset += n;
    }
    writer.join().expect("writer");
    let grown_kib = util::vm_rss_kib().saturating_sub(baseline);
    assert!(grown_kib < 8 * 1024, "server grew {grown_kib} KiB");
    let stats = server.stop();
    assert_eq!(stats.messages, (TOTAL / FRAME) as u64);
}
per_backend!(client_that_writes_256_mib_without_reading_costs_a_few_mib_and_gets_every_byte);

/// A 10 MiB line with no newline: the connection is closed as soon as the
/// line passes the maximum, and the server does not buffer the rest.
fn ten_mib_line_without_newline_is_cut_off_at_the_maximum(backend: BackendKind) {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start(
        Config::new().backend(backend).codec(Lines::new(64 * 1024)),
        Echo::default(),
    );
    let baseline = util::vm_rss_kib();
    let mut client = connect(server.addr);
    let started = Instant::now();
    let writer = thread::spawn(move || {
        let chunk = vec![b'a'; 64 * 1024];
        let mut sent = 0;
        while sent < 10 * 1024 * 1024 {
            match client.write(&chunk) {
                Ok(n) => sent += n,
                Err(_) => break, // reset by the server: expected
            }
        }
        sent
    });
    server.wait_for("the oversize line to be refused", |s| {
        s.frames_too_long == 1
    });
    let elapsed = started.elapsed();
    let sent = writer.join().unwrap();
    let stats = server.stats();
    eprintln!(
        "closed {elapsed:?} after the first byte; client wrote {sent} bytes, server read {}",
        stats.bytes_read
    );
    assert!(elapsed < Duration::from_secs(1), "took {elapsed:?}");
    assert!(
        stats.bytes_read < 1024 * 1024,
        "server read {} bytes",
        stats.bytes_read
    );
    let grown_kib = util::vm_rss_kib().saturating_sub(baseline);
    assert!(grown_kib < 8 * 1024, "server grew {grown_kib} KiB");
}
per_backend!(ten_mib_line_without_newline_is_cut_off_at_the_maximum);

/// Pushes data unprompted (a feed) to every client that asks, on a timer.
struct Feed {
    subscribers: Vec<ConnId>,
    tick: Option<selectloop::TimerId>,
}

impl Handler for Feed {
    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, msg: &[u8]) {
        if msg == b"subscribe" {
            self.subscribers.push(conn);
            if self.tick.is_none() {
                self.tick = Some(cx.set_periodic(Duration::from_millis(1)));
            }
        } else {
            cx.send_frame(conn, msg).unwrap();
        }
    }

    fn on_timer(&mut self, cx: &mut Context<'_>, _timer: selectloop::TimerId) {
        let chunk = [b'x'; 32 * 1024];
        self.subscribers
            .retain(|&conn| cx.send(conn, &chunk).is_ok());
    }
}

/// Redis's client-output-buffer-limit: a subscriber that never reads is
/// closed once its queued output would pass the limit; memory stays bounded
/// and the other clients are served.
fn hard_output_limit_closes_a_subscriber_that_never_reads(backend: BackendKind) {
    let config = Config::new()
        .backend(backend)
        .codec(Lines::new(64))
        .max_output(1024 * 1024);
    subscriber_that_never_reads_is_cut(config, 8 * 1024);
}
per_backend!(hard_output_limit_closes_a_subscriber_that_never_reads);

/// Output a server pushes on its own used to have no limit by default: a
/// subscriber that never read grew the server without end. The default
/// (32 MiB, Redis's hard limit for pub/sub clients) cuts it.
fn the_default_output_limit_cuts_a_subscriber_that_never_reads(backend: BackendKind) {
    subscriber_that_never_reads_is_cut(
        Config::new().backend(backend).codec(Lines::new(64)),
        48 * 1024,
    );
}
per_backend!(the_default_output_limit_cuts_a_subscriber_that_never_reads);

fn subscriber_that_never_reads_is_cut(config: Config, most_growth_kib: u64) {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start(
        config,
        Feed {
            subscribers: Vec::new(),
            tick: None,
        },
    );
    let baseline = util::vm_rss_kib();
    let mut other = connect(server.addr);
    let mut sleeper = connect(server.addr);
    write_all(&mut sleeper, b"subscribe\n");
    let stats = server.wait_for("the output-limit kick", |s| s.output_limit_kicks == 1);
    assert_eq!(stats.closed, 1);
    let grown_kib = util::vm_rss_kib().saturating_sub(baseline);
    eprintln!(
        "subscriber cut after {} KiB written; memory grew {grown_kib} KiB",
        stats.bytes_written / 1024
    );
    assert!(grown_kib < most_growth_kib, "server grew {grown_kib} KiB");
    write_all(&mut other, b"fine\n");
    assert_eq!(read_n(&mut other, 5), b"fine\n");
}
