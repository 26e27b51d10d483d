//! The per-turn read budget: a burst bigger than the budget is read a budget
//! per turn, finished on later turns without a new event (the ready list),
//! and every byte is echoed in order.
//!
//! The reactor is driven turn by turn on the test thread, and each burst is
//! delivered whole (the client's send queue empty) before the next turn, so
//! what a turn finds in the socket is known.

use crate::util;

use util::BackendKind;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use selectloop::codec::Chunks;
use selectloop::{Config, Reactor, Stats};
use util::{Echo, Rng};

const BUDGET: usize = 16 * 1024;

struct Bench {
    reactor: Reactor,
    handler: Echo,
    client: TcpStream,
}

impl Bench {
    fn new(backend: BackendKind) -> Bench {
        let config = Config::new()
            .backend(backend)
            .codec(Chunks::new(64 * 1024))
            .read_budget(BUDGET);
        let mut reactor = Reactor::with_config(config).unwrap();
        let listener = reactor.listen("127.0.0.1:0").unwrap();
        let addr = reactor.local_addr(listener).unwrap();
        let mut handler = Echo::default();
        let client = TcpStream::connect(addr).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while reactor.stats().accepted == 0 {
            assert!(Instant::now() < deadline, "connection never accepted");
            reactor
                .run_once(&mut handler, Some(Duration::from_millis(10)))
                .unwrap();
        }
        client.set_nonblocking(true).unwrap();
        Bench {
            reactor,
            handler,
            client,
        }
    }

    /// Writes `burst` whole, lets loopback deliver it, then runs turns until
    /// it is echoed. Returns the stats' change.
    fn echo_burst(&mut self, burst: &[u8]) -> (Stats, Stats) {
        let before = self.reactor.stats();
        self.client.set_nonblocking(false).unwrap();
        self.client.write_all(burst).unwrap();
        self.client.set_nonblocking(true).unwrap();
        // The whole burst must wait in the server's socket before the next
        // turn reads: the client's send queue empties (every byte acked)
        // once loopback has delivered it.
        util::wait_until("the burst to reach the server", || {
            (unacked_bytes(&self.client) == 0).then_some(())
        });
        let mut echoed = Vec::with_capacity(burst.len());
        let mut buf = vec![0u8; 64 * 1024];
        let deadline = Instant::now() + Duration::from_secs(20);
        while echoed.len() < burst.len() {
            assert!(Instant::now() < deadline, "burst not echoed");
            self.reactor
                .run_once(&mut self.handler, Some(Duration::from_millis(1)))
                .unwrap();
            loop {
                match self.client.read(&mut buf) {
                    Ok(0) => panic!("server closed the connection"),
                    Ok(n) => echoed.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => panic!("read: {e}"),
                }
            }
        }
        assert!(echoed == burst, "echo differs from what was sent");
        (before, self.reactor.stats())
    }
}

/// Bytes the kernel still holds in a socket's send queue, not yet
/// acknowledged by the peer (`SIOCOUTQ`).
fn unacked_bytes(stream: &TcpStream) -> usize {
    let mut queued: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (SIOCOUTQ) writes one int through the pointer.
    let rc = unsafe { libc::ioctl(stream.as_raw_fd(), libc::TIOCOUTQ, &mut queued) };
    assert_eq!(
        rc,
        0,
        "ioctl(SIOCOUTQ): {}",
        std::io::Error::last_os_error()
    );
    queued as usize
}

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    (0..len).map(|_| rng.next_u64() as u8).collect()
}

fn a_bigger_burst_spends_the_budget_and_finishes_on_later_turns(backend: BackendKind) {
    let mut bench = Bench::new(backend);
    for round in 0..5 {
        let burst = pattern(3 * BUDGET + 100, 100 + round);
        let (before, after) = bench.echo_burst(&burst);
        assert_eq!(after.bytes_read - before.bytes_read, burst.len() as u64);
        let spent = after.budget_exhausted - before.budget_exhausted;
        // 48 KiB and 100 bytes at 16 KiB a turn: three turns spend the
        // budget, the fourth reads the last 100 bytes. No new bytes arrive
        // meanwhile, so only the ready list brings the later turns.
        assert_eq!(spent, 3, "round {round}: budget spent {spent} times");
    }
}
per_backend!(a_bigger_burst_spends_the_budget_and_finishes_on_later_turns);
