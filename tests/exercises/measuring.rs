//! Measuring. *Exercise:* measure a server's latency as the benchmarks do:
//! a closed-loop client that sends one message, waits for its answer, and
//! records the round trip, many times; then report the median and the
//! 99th percentile by the nearest-rank method.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use selectloop::codec::Lines;
use selectloop::Config;

use crate::util::{Echo, Server, PATIENCE};

// ANCHOR: solution
/// `count` round trips of one line each; the time of each.
fn round_trips(addr: SocketAddr, count: usize) -> io::Result<Vec<Duration>> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?; // else Nagle's algorithm adds delays of its own
    stream.set_read_timeout(Some(PATIENCE))?;
    let mut answer = [0; 5];
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        let sent = Instant::now();
        stream.write_all(b"ping\n")?;
        stream.read_exact(&mut answer)?;
        times.push(sent.elapsed());
    }
    Ok(times)
}

/// The smallest sample at least `p` percent of the samples do not exceed
/// (nearest rank): no interpolation, so it is always a measured value.
fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    assert!(!samples.is_empty() && (0.0..=100.0).contains(&p));
    samples.sort_unstable();
    let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
    samples[rank.max(1) - 1]
}
// ANCHOR_END: solution

#[test]
fn percentiles_are_nearest_rank() {
    let mut samples: Vec<Duration> = (1..=100).rev().map(Duration::from_micros).collect();
    assert_eq!(percentile(&mut samples, 50.0), Duration::from_micros(50));
    assert_eq!(percentile(&mut samples, 99.0), Duration::from_micros(99));
    assert_eq!(percentile(&mut samples, 100.0), Duration::from_micros(100));
    let mut three = [3, 1, 2].map(Duration::from_micros);
    assert_eq!(percentile(&mut three, 50.0), Duration::from_micros(2));
    assert_eq!(percentile(&mut three, 0.0), Duration::from_micros(1));
}

#[test]
fn a_thousand_round_trips_are_measured() {
    let server = Server::start(Config::new().codec(Lines::new(64)), Echo::default());
    let mut times = round_trips(server.addr, 1000).unwrap();
    assert_eq!(times.len(), 1000);
    let median = percentile(&mut times, 50.0);
    let p99 = percentile(&mut times, 99.0);
    assert!(Duration::ZERO < median && median <= p99 && p99 <= *times.last().unwrap());
    server.wait_for("every ping answered", |s| s.messages == 1000);
}
