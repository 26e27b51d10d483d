//! Your answer to the exercise of `book/src/measuring.md`.
//!
//! > Measuring. *Exercise:* measure a server's latency as the benchmarks do:
//! > a closed-loop client that sends one message, waits for its answer, and
//! > records the round trip, many times; then report the median and the
//! > 99th percentile by the nearest-rank method.
//!
//! Replace each `todo!()`: the signatures are what the tests call. A
//! type's fields are the book's solution's, a suggestion; change them as
//! you like. Then check it with `cargo xtask exercises measuring`.

#![allow(unused_imports, unused_variables, dead_code)]

use super::*;

/// `count` round trips of one line each; the time of each.
pub fn round_trips(addr: SocketAddr, count: usize) -> io::Result<Vec<Duration>> {
    todo!()
}

/// The smallest sample at least `p` percent of the samples do not exceed
/// (nearest rank): no interpolation, so it is always a measured value.
pub fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    todo!()
}
