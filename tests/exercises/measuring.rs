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

#[cfg(not(feature = "exercises"))]
#[path = "solutions/measuring.rs"]
mod answer;
#[cfg(feature = "exercises")]
#[path = "../../exercises/measuring.rs"]
mod answer;
use answer::*;

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
