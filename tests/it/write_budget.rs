//! One client downloading at full speed must not starve the others: the
//! per-turn write budget (`Config::write_budget`, Redis's
//! `NET_MAX_WRITES_PER_EVENT`) hands the loop back after 64 KiB written to
//! one connection, whatever its socket buffer would still take.
//!
//! Checked on the loop's own counters, turn by turn, as the read budget is
//! in `fairness`: no turn writes more than one budget to the downloader
//! (plus the ping-pong clients' few bytes), and the download does meet the
//! budget, so the budget is what held it.

use crate::util;

use util::BackendKind;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use selectloop::codec::Lines;
use selectloop::{Config, ConnId, Context, Reactor, Stats};
use util::connect;

const BUDGET: usize = 64 * 1024;
/// What one `bulk` request is answered with.
const BULK: usize = 1024 * 1024;

/// An echo of lines, except that `bulk` is answered with a megabyte.
fn serve(cx: &mut Context<'_>, conn: ConnId, line: &[u8]) {
    static BLOB: [u8; BULK] = [b'x'; BULK];
    if line == b"bulk" {
        let _ = cx.send(conn, &BLOB);
    } else {
        let _ = cx.send_frame(conn, line);
    }
}

/// Runs the loop on its own thread until `stop`, keeping the most bytes
/// written in any one turn.
fn start(
    backend: BackendKind,
    stop: Arc<AtomicBool>,
) -> (std::net::SocketAddr, thread::JoinHandle<(Stats, u64)>) {
    util::init_logger();
    let config = Config::new()
        .backend(backend)
        .codec(Lines::new(1024))
        .write_budget(BUDGET);
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let thread = thread::spawn(move || {
        let mut reactor = Reactor::with_config(config).unwrap();
        let listener = reactor.listen("127.0.0.1:0").unwrap();
        addr_tx.send(reactor.local_addr(listener).unwrap()).unwrap();
        let mut handler = serve;
        let mut most = 0;
        while !stop.load(Ordering::Relaxed) {
            let before = reactor.stats().bytes_written;
            reactor
                .run_once(&mut handler, Some(Duration::from_millis(5)))
                .unwrap();
            most = most.max(reactor.stats().bytes_written - before);
        }
        (reactor.stats(), most)
    });
    let addr = addr_rx
        .recv_timeout(util::PATIENCE)
        .expect("server address");
    (addr, thread)
}

fn a_fast_downloader_does_not_starve_fifty_ping_pong_clients(backend: BackendKind) {
    let stop = Arc::new(AtomicBool::new(false));
    let (addr, server) = start(backend, stop.clone());

    // The downloader asks for a megabyte, reads it as fast as loopback
    // gives it, and asks again.
    let downloaded = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let downloader = {
        let downloaded = downloaded.clone();
        let done = done.clone();
        thread::spawn(move || {
            let mut client = connect(addr);
            let mut buf = vec![0u8; 256 * 1024];
            while !done.load(Ordering::Relaxed) {
                client.write_all(b"bulk\n").unwrap();
                let mut got = 0;
                while got < BULK {
                    let n = client.read(&mut buf).expect("download");
                    assert!(n > 0, "the server closed the download");
                    assert!(buf[..n].iter().all(|&b| b == b'x'));
                    got += n;
                }
                downloaded.fetch_add(got as u64, Ordering::Relaxed);
            }
        })
    };
    util::wait_until("the download to flow", || {
        (downloaded.load(Ordering::Relaxed) >= 2 * BULK as u64).then_some(())
    });

    let pingers: Vec<_> = (0..50)
        .map(|i| {
            thread::spawn(move || {
                let mut client = connect(addr);
                let line = format!("ping from {i:02}\n");
                let mut echo = vec![0u8; line.len()];
                for _ in 0..100 {
                    client.write_all(line.as_bytes()).unwrap();
                    client.read_exact(&mut echo).unwrap();
                    assert_eq!(echo, line.as_bytes());
                }
            })
        })
        .collect();
    for pinger in pingers {
        pinger.join().expect("ping-pong client");
    }
    let during = downloaded.load(Ordering::Relaxed);
    done.store(true, Ordering::Relaxed);
    downloader.join().expect("downloader");
    stop.store(true, Ordering::Relaxed);
    let (stats, most_written_in_a_turn) = server.join().expect("server thread");
    eprintln!(
        "5,000 round trips beside a download; {} MiB downloaded; write budget \
         spent {} times; at most {most_written_in_a_turn} bytes written in one turn",
        during / (1024 * 1024),
        stats.write_budget_exhausted
    );
    // One budget to the downloader, plus every ping-pong client's line.
    let pings = 50 * 16;
    assert!(
        most_written_in_a_turn <= (BUDGET + pings) as u64,
        "a turn wrote {most_written_in_a_turn} bytes: the download took more than its budget"
    );
    assert!(
        stats.write_budget_exhausted > 0,
        "the download never met the budget"
    );
}
per_backend_many!(a_fast_downloader_does_not_starve_fifty_ping_pong_clients);
