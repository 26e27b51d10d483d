//! The solution of the exercise of `book/src/measuring.md`, which the book
//! shows folded; `tests/exercises/measuring.rs` holds it to the exercise.

use super::*;

// ANCHOR: solution
/// `count` round trips of one line each; the time of each.
pub fn round_trips(addr: SocketAddr, count: usize) -> io::Result<Vec<Duration>> {
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
pub fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    assert!(!samples.is_empty() && (0.0..=100.0).contains(&p));
    samples.sort_unstable();
    let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
    samples[rank.max(1) - 1]
}
// ANCHOR_END: solution
