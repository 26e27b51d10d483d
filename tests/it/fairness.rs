//! One connection streaming at full speed must not starve the others: the
//! per-turn read budget hands the loop back after 64 KiB.
//!
//! The property is checked on the loop's own counters, turn by turn: no
//! turn reads more than one budget from the stream (plus the ping-pong
//! clients' few bytes), and the stream does hit the budget, so the limit is
//! what kept it in check.

use crate::util;

use util::BackendKind;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use selectloop::codec::LengthPrefixed;
use selectloop::{Config, Reactor, Stats};
use util::{connect, Echo};

struct Figures {
    p50: Duration,
    p99: Duration,
    max: Duration,
    round_trips: usize,
    streamed: u64,
    budget_exhausted: u64,
    /// The most bytes read from all connections in any one turn.
    most_read_in_a_turn: u64,
}

const BUDGET: usize = 64 * 1024;

/// An echo server on its own thread that keeps, besides the counters, the
/// most bytes any single turn read.
struct Watched {
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<(Stats, u64)>,
}

fn start_watched(backend: BackendKind) -> Watched {
    util::init_logger();
    let config = Config::new()
        .backend(backend)
        .codec(LengthPrefixed::new(64 * 1024))
        .read_budget(BUDGET);
    let stop = Arc::new(AtomicBool::new(false));
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let thread = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut reactor = Reactor::with_config(config).unwrap();
            let listener = reactor.listen("127.0.0.1:0").unwrap();
            addr_tx.send(reactor.local_addr(listener).unwrap()).unwrap();
            let mut handler = Echo::default();
            let mut most = 0;
            while !stop.load(Ordering::Relaxed) {
                let before = reactor.stats().bytes_read;
                reactor
                    .run_once(&mut handler, Some(Duration::from_millis(5)))
                    .unwrap();
                most = most.max(reactor.stats().bytes_read - before);
            }
            (reactor.stats(), most)
        })
    };
    let addr = addr_rx
        .recv_timeout(util::PATIENCE)
        .expect("server address");
    Watched { addr, stop, thread }
}

/// `clients` ping-pong clients do `rounds` round trips each while one client
/// streams 64 KiB frames as fast as the server echoes them.
fn measure(backend: BackendKind, clients: usize, rounds: usize) -> Figures {
    let server = start_watched(backend);
    let addr = server.addr;

    let stop = Arc::new(AtomicBool::new(false));
    let streamed = Arc::new(AtomicU64::new(0));
    let stream = connect(addr);
    let mut stream_reader = stream.try_clone().unwrap();
    let mut stream_writer = stream;
    let writer = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut frame = vec![7u8; 4 + 64 * 1024];
            frame[..4].copy_from_slice(&(64u32 * 1024).to_be_bytes());
            while !stop.load(Ordering::Relaxed) {
                if stream_writer.write_all(&frame).is_err() {
                    break;
                }
            }
        })
    };
    let reader = {
        let stop = stop.clone();
        let streamed = streamed.clone();
        thread::spawn(move || {
            stream_reader
                .set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            let mut buf = vec![0u8; 256 * 1024];
            while !stop.load(Ordering::Relaxed) {
                if let Ok(n) = stream_reader.read(&mut buf) {
                    streamed.fetch_add(n as u64, Ordering::Relaxed);
                }
            }
        })
    };
    // Let the stream get going before measuring.
    util::wait_until("the stream to flow", || {
        (streamed.load(Ordering::Relaxed) > 1024 * 1024).then_some(())
    });

    let pingers: Vec<_> = (0..clients)
        .map(|i| {
            thread::spawn(move || {
                let mut client = connect(addr);
                let msg = format!("ping from {i:02}");
                let mut frame = (msg.len() as u32).to_be_bytes().to_vec();
                frame.extend_from_slice(msg.as_bytes());
                let mut echo = vec![0u8; frame.len()];
                let mut times = Vec::with_capacity(rounds);
                for _ in 0..rounds {
                    let sent = Instant::now();
                    client.write_all(&frame).unwrap();
                    client.read_exact(&mut echo).unwrap();
                    times.push(sent.elapsed());
                    assert_eq!(echo, frame);
                }
                times
            })
        })
        .collect();
    let mut times: Vec<Duration> = pingers
        .into_iter()
        .flat_map(|p| p.join().expect("ping-pong client"))
        .collect();
    let streamed_total = streamed.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    server.stop.store(true, Ordering::Relaxed);
    let (stats, most_read_in_a_turn) = server.thread.join().expect("server thread");
    let _ = writer.join();
    let _ = reader.join();
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    Figures {
        p50: at(0.50),
        p99: at(0.99),
        max: *times.last().unwrap(),
        round_trips: times.len(),
        streamed: streamed_total,
        budget_exhausted: stats.budget_exhausted,
        most_read_in_a_turn,
    }
}

fn report(f: &Figures) {
    eprintln!(
        "{} round trips beside a full-speed stream: p50 {:?}, p99 {:?}, max {:?}; \
         stream echoed {} MiB meanwhile; read budget spent {} times; \
         at most {} bytes read in one turn",
        f.round_trips,
        f.p50,
        f.p99,
        f.max,
        f.streamed / (1024 * 1024),
        f.budget_exhausted,
        f.most_read_in_a_turn
    );
}

/// What a turn may read: one budget from the stream (an event for it in a
/// turn where the ready list already served it is not read twice), plus
/// every ping-pong client's frame.
fn assert_fair(f: &Figures, clients: usize) {
    let pings = clients as u64 * 64;
    assert!(
        f.most_read_in_a_turn <= BUDGET as u64 + pings,
        "a turn read {} bytes: the stream took more than its budget",
        f.most_read_in_a_turn
    );
    assert!(f.budget_exhausted > 0, "the stream never met the budget");
}

fn streaming_client_does_not_starve_fifty_ping_pong_clients(backend: BackendKind) {
    let figures = measure(backend, 50, 100);
    report(&figures);
    assert_eq!(figures.round_trips, 50 * 100);
    assert!(figures.streamed > 1024 * 1024, "the stream got no share");
    assert_fair(&figures, 50);
}
per_backend_many!(streaming_client_does_not_starve_fifty_ping_pong_clients);

/// The longer run whose figures the docs quote:
/// `cargo test --release --test fairness -- --ignored --nocapture`.
#[test]
#[ignore = "long: 50 clients x 2,000 round trips"]
fn fairness_figures() {
    let figures = measure(BackendKind::Epoll, 50, 2000);
    report(&figures);
    assert_eq!(figures.round_trips, 50 * 2000);
    assert_fair(&figures, 50);
}
