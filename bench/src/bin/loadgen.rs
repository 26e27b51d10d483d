//! The load generator: N connections to an echo-like server, each keeping P
//! messages outstanding, every reply checked byte for byte, latencies in an
//! HDR histogram.
//!
//! ```text
//! loadgen --addr 127.0.0.1:8088 --connections 50 --pipeline 1 --size 64 \
//!         --duration 2 --warmup 0.5 [--greeting 17] [--prefix "response: "] \
//!         [--threads N] [--server-pid PID]
//! ```
//!
//! It runs one mio loop per thread (`--threads`, default 1) and allocates
//! nothing per message: each connection owns its buffers, and the expected
//! reply is recomputed from the message's sequence number as bytes arrive.
//! The last line is machine-readable:
//! `msgs_per_s=... p50_us=... p99_us=... p999_us=... p9999_us=... max_us=... errors=... total_msgs=...`,
//! and with `--server-pid`, `server_cpu_s=... measured_msgs=...`: the
//! server's CPU time over the measured window and the messages answered in
//! it, so that CPU per message leaves out connection set-up and warm-up.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream as StdStream};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use selectloop_bench::report::cpu_seconds;
use selectloop_bench::{fill_message, pattern_byte};

#[derive(Clone)]
struct Options {
    addr: SocketAddr,
    connections: usize,
    pipeline: usize,
    size: usize,
    duration: Duration,
    warmup: Duration,
    greeting: usize,
    prefix: Vec<u8>,
    threads: usize,
    /// The server's process, whose CPU time over the measured window is
    /// reported (`server_cpu_s`), leaving out connection set-up and warm-up.
    server_pid: Option<u32>,
}

fn options() -> Result<Options, lexopt::Error> {
    use lexopt::prelude::*;
    let mut o = Options {
        addr: ([127, 0, 0, 1], 8088).into(),
        connections: 1,
        pipeline: 1,
        size: 64,
        duration: Duration::from_secs(2),
        warmup: Duration::from_millis(500),
        greeting: 0,
        prefix: Vec::new(),
        threads: 1,
        server_pid: None,
    };
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("addr") => o.addr = parser.value()?.parse()?,
            Long("connections") => o.connections = parser.value()?.parse()?,
            Long("pipeline") => o.pipeline = parser.value()?.parse()?,
            Long("size") => o.size = parser.value()?.parse()?,
            Long("duration") => {
                o.duration = Duration::from_secs_f64(parser.value()?.parse()?);
            }
            Long("warmup") => o.warmup = Duration::from_secs_f64(parser.value()?.parse()?),
            Long("greeting") => o.greeting = parser.value()?.parse()?,
            Long("prefix") => o.prefix = parser.value()?.string()?.into_bytes(),
            Long("threads") => o.threads = parser.value()?.parse()?,
            Long("server-pid") => o.server_pid = Some(parser.value()?.parse()?),
            other => return Err(other.unexpected()),
        }
    }
    o.connections = o.connections.max(1);
    o.pipeline = o.pipeline.max(1);
    o.size = o.size.max(1);
    o.threads = o.threads.clamp(1, o.connections);
    Ok(o)
}

/// One client connection and its in-flight messages.
struct Client {
    stream: TcpStream,
    /// Sequence number of the next message to send.
    next_seq: u64,
    /// Sequence number of the message whose reply is being read.
    reply_seq: u64,
    /// Bytes of the current reply already checked (prefix included).
    reply_offset: usize,
    /// When each outstanding message was sent, oldest first.
    sent_at: VecDeque<Instant>,
    /// Bytes waiting to be written; `out_start` is how far they were written.
    out: Vec<u8>,
    out_start: usize,
}

#[derive(Default)]
struct Tally {
    measured: u64,
    total: u64,
    errors: u64,
    histogram: Option<Histogram<u64>>,
}

fn main() -> io::Result<()> {
    let options = options().map_err(io::Error::other)?;
    let per_thread = split(options.connections, options.threads);
    // The clock starts once every connection is open: connecting thousands
    // of clients is not part of what is measured. This thread waits too,
    // to time the window in which the server's CPU is taken.
    let start = Arc::new(Start::new(options.threads));
    let workers: Vec<_> = per_thread
        .into_iter()
        .map(|count| {
            let options = options.clone();
            let start = start.clone();
            thread::spawn(move || drive(&options, count, &start))
        })
        .collect();
    if !start.wait() {
        // A thread could not connect (the server refused or is gone): the
        // others gave up too; its error is the one to report.
        for worker in workers {
            if let Ok(Err(e)) = worker.join() {
                return Err(e);
            }
        }
        return Err(io::Error::other("a load thread failed to connect"));
    }
    let server_cpu = options
        .server_pid
        .map(|pid| server_cpu_over_window(pid, &options))
        .transpose()?;
    let mut total = Tally {
        histogram: Some(new_histogram()),
        ..Tally::default()
    };
    for worker in workers {
        let tally = worker
            .join()
            .map_err(|_| io::Error::other("load thread panicked"))??;
        total.measured += tally.measured;
        total.total += tally.total;
        total.errors += tally.errors;
        if let (Some(all), Some(part)) = (&mut total.histogram, &tally.histogram) {
            let _ = all.add(part);
        }
    }
    let histogram = total.histogram.unwrap_or_else(new_histogram);
    let seconds = options.duration.as_secs_f64();
    let mut line = format!(
        "msgs_per_s={:.0} p50_us={} p99_us={} p999_us={} p9999_us={} max_us={} errors={} total_msgs={} connections={} pipeline={} size={}",
        total.measured as f64 / seconds,
        histogram.value_at_quantile(0.50),
        histogram.value_at_quantile(0.99),
        histogram.value_at_quantile(0.999),
        histogram.value_at_quantile(0.9999),
        histogram.max(),
        total.errors,
        total.total,
        options.connections,
        options.pipeline,
        options.size,
    );
    if let Some(cpu) = server_cpu {
        line.push_str(&format!(
            " server_cpu_s={cpu:.4} measured_msgs={}",
            total.measured
        ));
    }
    println!("{line}");
    if total.errors > 0 {
        std::process::exit(1);
    }
    Ok(())
}

/// The server's CPU seconds between the end of the warm-up and the end of
/// the run, the window whose messages count as measured.
fn server_cpu_over_window(pid: u32, options: &Options) -> io::Result<f64> {
    let measure_from = Instant::now() + options.warmup;
    let end = measure_from + options.duration;
    thread::sleep(measure_from.saturating_duration_since(Instant::now()));
    let before = cpu_seconds(pid)?;
    thread::sleep(end.saturating_duration_since(Instant::now()));
    Ok(cpu_seconds(pid)? - before)
}

fn new_histogram() -> Histogram<u64> {
    // Microseconds, from 1 µs to 60 s, 3 significant figures.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds")
}

fn split(total: usize, parts: usize) -> Vec<usize> {
    (0..parts)
        .map(|i| total / parts + usize::from(i < total % parts))
        .collect()
}

/// Connects, skipping the greeting if the protocol has one.
fn open(options: &Options) -> io::Result<TcpStream> {
    let mut stream = StdStream::connect(options.addr)?;
    stream.set_nodelay(true)?;
    if options.greeting > 0 {
        let mut greeting = vec![0u8; options.greeting];
        stream.read_exact(&mut greeting)?;
    }
    stream.set_nonblocking(true)?;
    Ok(TcpStream::from_std(stream))
}

/// The start line: every load thread reports in once its connections are
/// open, and all start together; one that fails to connect calls the start
/// off for all (a barrier would leave the others waiting for it forever).
struct Start {
    /// Threads that have not reported yet, and whether one failed.
    state: Mutex<(usize, bool)>,
    changed: Condvar,
}

impl Start {
    fn new(threads: usize) -> Start {
        Start {
            state: Mutex::new((threads, false)),
            changed: Condvar::new(),
        }
    }

    fn report(&self, connected: bool) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0 -= 1;
        state.1 |= !connected;
        self.changed.notify_all();
    }

    /// Waits until every thread has reported or one has failed; true to go.
    fn wait(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while state.0 > 0 && !state.1 {
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        !state.1
    }
}

fn drive(options: &Options, count: usize, start: &Start) -> io::Result<Tally> {
    let connected = connect_all(options, count);
    start.report(connected.is_ok());
    let (mut poll, mut clients) = connected?;
    if !start.wait() {
        return Err(io::Error::other("another load thread failed to connect"));
    }
    run(options, &mut poll, &mut clients)
}

/// Opens this thread's `count` connections and registers them.
fn connect_all(options: &Options, count: usize) -> io::Result<(Poll, Vec<Client>)> {
    let poll = Poll::new()?;
    let mut clients = Vec::with_capacity(count);
    for i in 0..count {
        let mut stream = open(options)?;
        poll.registry().register(
            &mut stream,
            Token(i),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        clients.push(Client {
            stream,
            next_seq: 0,
            reply_seq: 0,
            reply_offset: 0,
            sent_at: VecDeque::with_capacity(options.pipeline),
            out: Vec::with_capacity(options.pipeline * options.size),
            out_start: 0,
        });
    }
    Ok((poll, clients))
}

/// Keeps every connection's messages in flight until the run ends.
fn run(options: &Options, poll: &mut Poll, clients: &mut [Client]) -> io::Result<Tally> {
    let mut events = Events::with_capacity(1024);
    let measure_from = Instant::now() + options.warmup;
    let end = measure_from + options.duration;
    let mut tally = Tally {
        histogram: Some(new_histogram()),
        ..Tally::default()
    };
    let mut message = vec![0u8; options.size];
    let mut buf = vec![0u8; 64 * 1024];
    for client in clients.iter_mut() {
        for _ in 0..options.pipeline {
            queue_message(client, &mut message);
        }
        flush(client)?;
    }
    let reply_len = options.prefix.len() + options.size;
    while Instant::now() < end {
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .or_else(|e| {
                if e.kind() == io::ErrorKind::Interrupted {
                    Ok(())
                } else {
                    Err(e)
                }
            })?;
        let now = Instant::now();
        let measuring = now >= measure_from && now < end;
        for event in &events {
            let client = &mut clients[event.token().0];
            if event.is_readable() {
                loop {
                    let n = match client.stream.read(&mut buf) {
                        Ok(0) => return Err(io::Error::other("server closed a connection")),
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    };
                    for &byte in &buf[..n] {
                        let expected = if client.reply_offset < options.prefix.len() {
                            options.prefix[client.reply_offset]
                        } else {
                            pattern_byte(
                                client.reply_seq,
                                client.reply_offset - options.prefix.len(),
                            )
                        };
                        if byte != expected {
                            tally.errors += 1;
                        }
                        client.reply_offset += 1;
                        if client.reply_offset == reply_len {
                            // One reply complete: record it, send the next.
                            client.reply_offset = 0;
                            client.reply_seq += 1;
                            tally.total += 1;
                            if let Some(sent) = client.sent_at.pop_front() {
                                if measuring {
                                    tally.measured += 1;
                                    let micros = now.duration_since(sent).as_micros() as u64;
                                    if let Some(h) = &mut tally.histogram {
                                        let _ = h.record(micros.max(1));
                                    }
                                }
                            }
                            if now < end {
                                queue_message(client, &mut message);
                            }
                        }
                    }
                    if n < buf.len() {
                        break;
                    }
                }
            }
            flush(client)?;
        }
        if tally.errors > 0 {
            eprintln!(
                "loadgen: {} reply bytes differed from what was sent",
                tally.errors
            );
            break;
        }
    }
    for client in clients.iter() {
        // Reset on close: runs of thousands of connections must not leave
        // thousands of ports in TIME_WAIT for the next run.
        let _ = socket2::SockRef::from(&client.stream).set_linger(Some(Duration::ZERO));
    }
    Ok(tally)
}

fn queue_message(client: &mut Client, message: &mut [u8]) {
    fill_message(message, client.next_seq);
    client.next_seq += 1;
    if client.out_start == client.out.len() {
        client.out.clear();
        client.out_start = 0;
    }
    client.out.extend_from_slice(message);
    client.sent_at.push_back(Instant::now());
}

fn flush(client: &mut Client) -> io::Result<()> {
    while client.out_start < client.out.len() {
        match client.stream.write(&client.out[client.out_start..]) {
            Ok(n) => client.out_start += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
