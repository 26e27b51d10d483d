//! What one timeout sweep costs the loop: the time of the turns that run
//! one, measured inside the process, with many idle connections.
//!
//! ```text
//! cargo build --release -p selectloop-bench --bins
//! target/release/sweep_cost                  # as many connections as the descriptor limit allows
//! target/release/sweep_cost --connections 5000
//! ```
//!
//! A reactor with a 10-minute idle timeout (a sweep pass every second,
//! cut into slices 100 ms apart; nobody is closed) holds N loopback
//! connections whose client ends are in the same process (so N is at most
//! half the descriptor limit). The loop then turns without waiting for
//! `--seconds` (default 5): almost every turn finds nothing to do; the
//! turns that sweep stand out. It prints how many turns a second took
//! longer than 20 to 500 us, and the slowest: a sweep walking every
//! connection once a second shows as one long turn a second, a sweep in
//! slices as ten shorter ones. The cost grows linearly with N.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use selectloop::{Config, ConnId, Context, Reactor};

fn main() -> std::io::Result<()> {
    let mut connections = None;
    let mut seconds = 5.0f64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--connections" => connections = args.next().and_then(|v| v.parse().ok()),
            "--seconds" => seconds = args.next().and_then(|v| v.parse().ok()).unwrap_or(5.0),
            "--help" | "-h" => {
                println!("sweep_cost [--connections N] [--seconds S]");
                return Ok(());
            }
            other => {
                eprintln!("unknown argument {other:?}; try --help");
                std::process::exit(2);
            }
        }
    }
    let limit = fd_limit();
    let n = connections.unwrap_or(((limit as usize).saturating_sub(200)) / 2);
    let config = Config::new()
        .idle_timeout(Duration::from_secs(600))
        .max_connections(n + 10)
        .fd_reserve(0);
    let mut reactor = Reactor::with_config(config)?;
    let listener = reactor.listen("127.0.0.1:0")?;
    let addr = reactor.local_addr(listener).expect("bound");
    let mut handler = |_: &mut Context<'_>, _: ConnId, _: &[u8]| {};
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        clients.push(TcpStream::connect(addr)?);
        // Accept as they come: the listener's backlog must not fill.
        reactor.run_once(&mut handler, Some(Duration::ZERO))?;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while reactor.connection_count() < n && Instant::now() < deadline {
        reactor.run_once(&mut handler, Some(Duration::from_millis(1)))?;
    }
    let held = reactor.connection_count();
    // Turn without waiting, timing each turn.
    let mut turns: Vec<Duration> = Vec::with_capacity(1 << 22);
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < seconds {
        let t = Instant::now();
        reactor.run_once(&mut handler, Some(Duration::ZERO))?;
        turns.push(t.elapsed());
    }
    let elapsed = start.elapsed().as_secs_f64();
    turns.sort_unstable();
    let at = |q: f64| turns[((turns.len() as f64 * q) as usize).min(turns.len() - 1)];
    let per_second = |floor_us: u64| {
        let floor = Duration::from_micros(floor_us);
        turns.iter().filter(|t| **t >= floor).count() as f64 / elapsed
    };
    println!(
        "connections={held} turns={} median_us={:.1} p99.99_us={:.1} max_us={:.1}",
        turns.len(),
        at(0.5).as_secs_f64() * 1e6,
        at(0.9999).as_secs_f64() * 1e6,
        turns.last().unwrap().as_secs_f64() * 1e6,
    );
    println!(
        "turns per second taking at least: 20 us {:.1}, 50 us {:.1}, 100 us {:.1}, 200 us {:.1}, 500 us {:.1}",
        per_second(20),
        per_second(50),
        per_second(100),
        per_second(200),
        per_second(500),
    );
    let slowest: Vec<String> = turns
        .iter()
        .rev()
        .take(12)
        .map(|t| format!("{:.0}", t.as_secs_f64() * 1e6))
        .collect();
    println!("slowest turns (us): {}", slowest.join(" "));
    drop(clients);
    Ok(())
}

fn fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write only the struct given.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
    }
    limit.rlim_cur
}
