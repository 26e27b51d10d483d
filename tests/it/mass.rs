//! Many connections, many messages of random sizes: per connection, what
//! comes back is what was sent, message for message, in order.

use crate::util;

use util::BackendKind;

use std::net::{SocketAddr, TcpStream};
use std::thread;

use selectloop::codec::{Codec, LengthPrefixed, Lines};
use selectloop::Config;
use util::{connect, write_all, Echo, Rng, Server};

/// FNV-1a, to compare streams without keeping them.
fn checksum(hash: &mut u64, bytes: &[u8]) {
    for &b in bytes {
        *hash ^= u64::from(b);
        *hash = hash.wrapping_mul(0x100_0000_01b3);
    }
}

/// Reads frames until `count` have arrived; returns their checksum.
fn read_frames(client: &mut TcpStream, codec: &Codec, pending: &mut Vec<u8>, count: usize) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325;
    let mut got = 0;
    let mut buf = [0u8; 16 * 1024];
    while got < count {
        while let Some(frame) = codec.decode(pending).expect("well-formed echo") {
            checksum(&mut hash, &pending[frame.payload()]);
            checksum(&mut hash, b"|");
            pending.drain(..frame.consumed());
            got += 1;
            if got == count {
                break;
            }
        }
        if got < count {
            let n = std::io::Read::read(client, &mut buf).expect("read echo");
            assert!(n > 0, "server closed after {got} of {count} messages");
            pending.extend_from_slice(&buf[..n]);
        }
    }
    hash
}

/// `connections` clients, spread over a few threads, each sending `messages`
/// messages of 1 B to 2 KiB in rounds of 50 and checking each round's echo.
fn run(addr: SocketAddr, codec: Codec, connections: usize, messages: usize, seed: u64) {
    const THREADS: usize = 10;
    const ROUND: usize = 50;
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            thread::spawn(move || {
                let mut rng = Rng::new(seed + t as u64);
                let mut clients: Vec<(TcpStream, Vec<u8>)> = (0..connections / THREADS)
                    .map(|_| (connect(addr), Vec::new()))
                    .collect();
                let mut wire = Vec::new();
                for round in 0..messages.div_ceil(ROUND) {
                    let in_round = ROUND.min(messages - round * ROUND);
                    for (client, pending) in &mut clients {
                        let mut sent_hash = 0xcbf2_9ce4_8422_2325;
                        wire.clear();
                        for _ in 0..in_round {
                            let len = rng.range(1, 2048);
                            // Letters only, so lines never contain their end.
                            let body: Vec<u8> = (0..len)
                                .map(|_| b'a' + (rng.next_u64() % 26) as u8)
                                .collect();
                            checksum(&mut sent_hash, &body);
                            checksum(&mut sent_hash, b"|");
                            codec.encode(&body, &mut wire).unwrap();
                        }
                        write_all(client, &wire);
                        let got_hash = read_frames(client, &codec, pending, in_round);
                        assert_eq!(got_hash, sent_hash, "thread {t} round {round}");
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("client thread");
    }
}

fn lines() -> Codec {
    Codec::from(Lines::new(4096))
}

fn length_prefixed() -> Codec {
    Codec::from(LengthPrefixed::new(4096))
}

fn two_hundred_connections_by_500_messages_lines(backend: BackendKind) {
    let server = Server::start(
        Config::new().backend(backend).codec(lines()),
        Echo::default(),
    );
    run(server.addr, lines(), 200, 500, 1);
    let stats = server.stop();
    assert_eq!(stats.messages, 200 * 500);
}
per_backend_many!(two_hundred_connections_by_500_messages_lines);

fn two_hundred_connections_by_500_messages_length_prefixed(backend: BackendKind) {
    let server = Server::start(
        Config::new().backend(backend).codec(length_prefixed()),
        Echo::default(),
    );
    run(server.addr, length_prefixed(), 200, 500, 2);
    let stats = server.stop();
    assert_eq!(stats.messages, 200 * 500);
}
per_backend_many!(two_hundred_connections_by_500_messages_length_prefixed);

/// The larger run: `cargo test --release --test mass -- --ignored`.
#[test]
#[ignore = "long: a million messages"]
fn thousand_connections_by_1000_messages() {
    util::raise_fd_limit(4096);
    let server = Server::start(Config::new().codec(length_prefixed()), Echo::default());
    run(server.addr, length_prefixed(), 1000, 1000, 3);
    let stats = server.stop();
    assert_eq!(stats.messages, 1000 * 1000);
}
