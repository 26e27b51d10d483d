//! Datagram sockets on the loop: UDP and Unix datagram, each datagram to
//! `Handler::on_datagram` with its sender; answers sent at once or queued
//! while the socket is full; a per-turn budget so that a flood cannot
//! starve the stream connections; one socket per loop of a group.

use crate::util;

use util::BackendKind;

use std::io::{BufRead, BufReader, Write};
use std::net::UdpSocket;
#[cfg(unix)]
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use selectloop::codec::Lines;
#[cfg(unix)]
use selectloop::Group;
use selectloop::{Config, ConnId, Context, DatagramPeer, Handler, Reactor, SourceId};
use util::{connect, PATIENCE};

/// Echoes datagrams to their sender and lines to their connection; a
/// datagram that says `burst N` is answered with N numbered ones.
struct Echo;

impl Handler for Echo {
    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, msg: &[u8]) {
        let _ = cx.send_parts(conn, &[msg, b"\n"]);
    }

    fn on_datagram(
        &mut self,
        cx: &mut Context<'_>,
        socket: SourceId,
        from: &DatagramPeer,
        data: &[u8],
    ) {
        if let Some(count) = data.strip_prefix(b"burst ") {
            let count: u32 = std::str::from_utf8(count).unwrap().parse().unwrap();
            for i in 0..count {
                cx.send_to(socket, from, &i.to_be_bytes()).unwrap();
            }
            return;
        }
        let _ = cx.send_to(socket, from, data);
    }
}

/// A reactor built with `config` and set up by `setup` on a thread of its
/// own, run until `stop` is set: what `setup` returned, and the thread,
/// which returns the reactor's counters.
fn serve<T: Send + 'static>(
    config: Config,
    setup: impl FnOnce(&mut Reactor) -> T + Send + 'static,
    stop: Arc<AtomicBool>,
) -> (T, thread::JoinHandle<selectloop::Stats>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let server = thread::spawn(move || {
        let mut reactor = Reactor::with_config(config).unwrap();
        tx.send(setup(&mut reactor)).unwrap();
        while !stop.load(Ordering::Relaxed) {
            reactor
                .run_once(&mut Echo, Some(Duration::from_millis(5)))
                .unwrap();
        }
        reactor.stats()
    });
    (rx.recv_timeout(PATIENCE).unwrap(), server)
}

fn udp_datagrams_are_answered_to_their_sender(backend: BackendKind) {
    let stop = Arc::new(AtomicBool::new(false));
    let config = Config::new().backend(backend);
    let (addr, server) = serve(
        config,
        |reactor| {
            let socket = reactor.bind_udp("127.0.0.1:0").unwrap();
            reactor.datagram_addr(socket).unwrap()
        },
        stop.clone(),
    );
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 64];
    for i in 0..100u32 {
        client.send_to(&i.to_be_bytes(), addr).unwrap();
        let (n, from) = client.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&i.to_be_bytes()[..], addr));
    }
    stop.store(true, Ordering::Relaxed);
    let stats = server.join().unwrap();
    assert_eq!((stats.datagrams_in, stats.datagrams_out), (100, 100));
}
per_backend!(udp_datagrams_are_answered_to_their_sender);

#[cfg(unix)]
/// A peer that does not read fills its socket: the answers wait in the
/// server's queue, and arrive, all and in order, once it reads.
fn answers_to_a_full_peer_wait_in_the_queue_then_arrive_in_order(backend: BackendKind) {
    let dir = std::env::temp_dir().join(format!(
        "dgram-it-{}-{}",
        std::process::id(),
        backend.name()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let server_path = dir.join("server.sock");
    let client_path = dir.join("client.sock");
    let _ = std::fs::remove_file(&server_path);
    let _ = std::fs::remove_file(&client_path);
    let stop = Arc::new(AtomicBool::new(false));
    let bound = server_path.clone();
    let ((), server) = serve(
        Config::new().backend(backend),
        move |reactor| {
            reactor.bind_unix_datagram(&bound).unwrap();
        },
        stop.clone(),
    );
    let client = UnixDatagram::bind(&client_path).unwrap();
    client.send_to(b"burst 5000", &server_path).unwrap();
    // Not reading for a while: the kernel's queue for the client fills
    // (a few hundred datagrams), the rest waits in the server's.
    thread::sleep(Duration::from_millis(100));
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 4];
    for expected in 0..5000u32 {
        let n = client.recv(&mut buf).unwrap();
        assert_eq!((n, u32::from_be_bytes(buf)), (4, expected));
    }
    stop.store(true, Ordering::Relaxed);
    let stats = server.join().unwrap();
    assert_eq!((stats.datagrams_out, stats.datagrams_dropped), (5000, 0));
    let _ = std::fs::remove_dir_all(&dir);
}
#[cfg(unix)]
per_backend!(answers_to_a_full_peer_wait_in_the_queue_then_arrive_in_order);

/// A UDP flood beside stream clients: the datagram budget hands the loop
/// back to the connections every turn, so their round trips go on while
/// the flood lasts.
fn a_udp_flood_does_not_starve_the_stream_clients(backend: BackendKind) {
    let config = Config::new().backend(backend).codec(Lines::new(64));
    let stop = Arc::new(AtomicBool::new(false));
    let ((udp_addr, tcp_addr), server) = serve(
        config,
        |reactor| {
            let socket = reactor.bind_udp("127.0.0.1:0").unwrap();
            let listener = reactor.listen("127.0.0.1:0").unwrap();
            let udp = reactor.datagram_addr(socket).unwrap();
            (udp, reactor.local_addr(listener).unwrap())
        },
        stop.clone(),
    );
    let flooding = Arc::new(AtomicBool::new(true));
    let flood = {
        let flooding = flooding.clone();
        thread::spawn(move || {
            let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
            let mut sent = 0u64;
            // Bounded: 2,000,000 datagrams or until the clients are done.
            while flooding.load(Ordering::Relaxed) && sent < 2_000_000 {
                let _ = sender.send_to(b"flood", udp_addr);
                sent += 1;
            }
            sent
        })
    };
    let started = Instant::now();
    let clients: Vec<_> = (0..10)
        .map(|_| {
            thread::spawn(move || {
                let mut stream = BufReader::new(connect(tcp_addr));
                let mut line = String::new();
                for i in 0..200 {
                    stream
                        .get_mut()
                        .write_all(format!("{i}\n").as_bytes())
                        .unwrap();
                    line.clear();
                    stream.read_line(&mut line).unwrap();
                    assert_eq!(line, format!("{i}\n"));
                }
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    let took = started.elapsed();
    flooding.store(false, Ordering::Relaxed);
    let sent = flood.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    let stats = server.join().unwrap();
    eprintln!(
        "2,000 round trips in {took:?} beside a flood of {sent} datagrams; {} received, \
         budget spent {} times",
        stats.datagrams_in, stats.budget_exhausted
    );
    assert!(took < PATIENCE, "the stream clients waited {took:?}");
    assert!(stats.datagrams_in > 0);
    assert!(
        stats.budget_exhausted > 0,
        "the flood never filled a turn's budget"
    );
}
per_backend!(a_udp_flood_does_not_starve_the_stream_clients);

#[cfg(unix)]
/// One UDP socket per loop on one port (`SO_REUSEPORT`), bound in each
/// loop's setup: every datagram answered, whichever loop the kernel gave
/// it to.
#[test]
fn each_loop_of_a_group_binds_its_own_udp_socket_on_one_port() {
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let group = Group::builder(Config::new())
        .threads(2)
        .setup(move |reactor, _index| {
            reactor.bind_udp_reuseport(("127.0.0.1", port))?;
            Ok(())
        })
        .spawn("127.0.0.1:0", |_| Echo)
        .unwrap();
    let addr = ("127.0.0.1", port);
    let mut answered = 0;
    for i in 0..40u32 {
        // A socket of its own each time: the kernel spreads by sender.
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        client.send_to(&i.to_be_bytes(), addr).unwrap();
        let mut buf = [0u8; 4];
        client.recv(&mut buf).unwrap();
        assert_eq!(u32::from_be_bytes(buf), i);
        answered += 1;
    }
    group.stop();
    let stats = group.join().unwrap();
    assert_eq!(answered, 40);
    let per_loop: Vec<u64> = stats.iter().map(|s| s.datagrams_in).collect();
    assert_eq!(per_loop.iter().sum::<u64>(), 40, "{per_loop:?}");
}
