//! A group of reactors, one per thread, serving one address: every
//! connection answered byte for byte, the loads spread, a graceful stop
//! that drains every loop, and a panic kept to its connection.

use crate::util;

use util::BackendKind;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex};
#[cfg(target_os = "linux")]
use std::thread;
use std::time::Duration;

use selectloop::codec::Lines;
use selectloop::{Balance, Config, ConnId, Context, Group, Handler, Origin};
use util::{connect, read_n, PATIENCE};

/// Echoes lines; a line `boom` panics in the handler; records each
/// connection's origin.
#[derive(Default)]
struct Echo {
    origins: Arc<Mutex<Vec<Option<Origin>>>>,
}

impl Handler for Echo {
    fn on_connect(&mut self, cx: &mut Context<'_>, conn: ConnId) {
        self.origins.lock().unwrap().push(cx.origin(conn));
    }

    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, msg: &[u8]) {
        assert!(msg != b"boom", "the handler was asked to panic");
        let _ = cx.send_frame(conn, msg);
    }
}

fn config(backend: BackendKind) -> Config {
    Config::new().backend(backend).codec(Lines::new(1024))
}

fn spawn(backend: BackendKind, threads: usize, balance: Balance) -> Group {
    util::init_logger();
    Group::builder(config(backend))
        .threads(threads)
        .balance(balance)
        .spawn("127.0.0.1:0", |_| Echo::default())
        .expect("start the group")
}

/// Accepted connections per loop.
fn spread(group: &Group) -> Vec<u64> {
    let stats = group.stats(PATIENCE).expect("every loop's counters");
    stats.iter().map(|s| s.accepted).collect()
}

#[cfg(target_os = "linux")]
/// Two reactors on SO_REUSEPORT serve 1,000 connections (200 on select,
/// whose descriptors must stay under FD_SETSIZE), every answer byte-exact,
/// and both loops take a share.
fn two_reactors_serve_many_connections_byte_exact(backend: BackendKind) {
    let clients = if backend == BackendKind::Select {
        200
    } else {
        1000
    };
    // 2,000 descriptors would push a select case running beside this one
    // past FD_SETSIZE (its own case holds the lock shared, in per_backend!).
    let _many = (backend != BackendKind::Select).then(util::many_descriptors);
    let group = spawn(backend, 2, Balance::ReusePort);
    let addr = group.local_addr();
    let workers: Vec<_> = (0..4)
        .map(|worker| {
            thread::spawn(move || {
                let mut open: Vec<(TcpStream, String)> = (0..clients / 4)
                    .map(|i| (connect(addr), format!("worker {worker} client {i}\n")))
                    .collect();
                for (stream, line) in &mut open {
                    stream.write_all(line.as_bytes()).unwrap();
                }
                for (stream, line) in &mut open {
                    assert_eq!(read_n(stream, line.len()), line.as_bytes());
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("client worker");
    }
    let per_loop = spread(&group);
    assert_eq!(per_loop.iter().sum::<u64>(), clients as u64, "{per_loop:?}");
    assert!(
        per_loop.iter().all(|&n| n > 0),
        "a loop got nothing: {per_loop:?}"
    );
    group.stop();
    let finals = group.join().expect("both loops end cleanly");
    assert_eq!(finals.len(), 2);
    let total: selectloop::Stats = finals.into_iter().sum();
    assert_eq!(total.messages, clients as u64);
}
#[cfg(target_os = "linux")]
per_backend!(two_reactors_serve_many_connections_byte_exact);

/// The acceptor hands connections round-robin: 100 over 4 loops differ by
/// at most 2, and each is told it was adopted.
fn the_acceptor_spreads_connections_evenly(backend: BackendKind) {
    let origins = Arc::new(Mutex::new(Vec::new()));
    let group = {
        let origins = origins.clone();
        Group::builder(config(backend))
            .threads(4)
            .balance(Balance::Acceptor)
            .spawn("127.0.0.1:0", move |_| Echo {
                origins: origins.clone(),
            })
            .expect("start the group")
    };
    let mut clients: Vec<TcpStream> = (0..100).map(|_| connect(group.local_addr())).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        client.write_all(format!("{i}\n").as_bytes()).unwrap();
        assert_eq!(
            read_n(client, format!("{i}\n").len()),
            format!("{i}\n").as_bytes()
        );
    }
    let per_loop = spread(&group);
    assert_eq!(per_loop.iter().sum::<u64>(), 100);
    let (most, least) = (
        per_loop.iter().max().unwrap(),
        per_loop.iter().min().unwrap(),
    );
    assert!(most - least <= 2, "uneven: {per_loop:?}");
    assert!(origins
        .lock()
        .unwrap()
        .iter()
        .all(|o| *o == Some(Origin::Adopted)));
    group.stop();
    group.join().expect("clean end");
}
per_backend!(the_acceptor_spreads_connections_evenly);

/// A graceful shutdown drains every loop: messages sent before it are all
/// answered, then each connection sees end of file; the group ends.
fn shutting_the_group_down_drains_every_loop(backend: BackendKind) {
    // SO_REUSEPORT spreads connections on Linux only.
    let balances = if cfg!(target_os = "linux") {
        vec![Balance::ReusePort, Balance::Acceptor]
    } else {
        vec![Balance::Acceptor]
    };
    for balance in balances {
        let group = spawn(backend, 3, balance);
        let mut clients: Vec<TcpStream> = (0..60).map(|_| connect(group.local_addr())).collect();
        // Every connection is known to some loop before the shutdown.
        util::wait_until("every client accepted", || {
            (spread(&group).iter().sum::<u64>() == 60).then_some(())
        });
        for (i, client) in clients.iter_mut().enumerate() {
            client
                .write_all(format!("last words {i}\n").as_bytes())
                .unwrap();
        }
        group.shutdown(Duration::from_secs(5));
        for (i, client) in clients.iter_mut().enumerate() {
            let mut rest = Vec::new();
            client
                .read_to_end(&mut rest)
                .expect("answer, then end of file");
            assert_eq!(rest, format!("last words {i}\n").as_bytes(), "{balance:?}");
        }
        let finals = group.join().expect("every loop ended");
        let total: selectloop::Stats = finals.iter().copied().sum();
        assert_eq!(total.messages, 60, "{balance:?}");
        assert_eq!(total.closed, 60, "{balance:?}");
    }
}
per_backend!(shutting_the_group_down_drains_every_loop);

/// A handler panic closes only the connection that caused it: the other
/// connections of the same loop, and the other loops, go on.
fn a_panic_in_one_loop_is_kept_to_its_connection(backend: BackendKind) {
    let group = spawn(backend, 2, Balance::Acceptor);
    // With round-robin hand-over, clients 0 and 2 share loop 0.
    let mut clients: Vec<TcpStream> = (0..4).map(|_| connect(group.local_addr())).collect();
    util::wait_until("every client accepted", || {
        (spread(&group).iter().sum::<u64>() == 4).then_some(())
    });
    clients[0].write_all(b"boom\n").unwrap();
    let mut rest = Vec::new();
    let _ = clients[0].read_to_end(&mut rest);
    assert!(
        rest.is_empty(),
        "the panicking connection was closed unanswered"
    );
    for (i, client) in clients.iter_mut().enumerate().skip(1) {
        let line = format!("still here {i}\n");
        client.write_all(line.as_bytes()).unwrap();
        assert_eq!(read_n(client, line.len()), line.as_bytes());
    }
    let stats = group.stats(PATIENCE).unwrap();
    let panics: Vec<u64> = stats.iter().map(|s| s.handler_panics).collect();
    assert_eq!(panics.iter().sum::<u64>(), 1, "{panics:?}");
    clients[2].shutdown(Shutdown::Write).unwrap();
    group.stop();
    group.join().expect("both loops end cleanly");
}
per_backend!(a_panic_in_one_loop_is_kept_to_its_connection);

/// A group dropped without `join` stops its loops: the address stops
/// answering and the loop threads end.
#[test]
fn dropping_the_group_stops_its_loops() {
    let group = spawn(BackendKind::Epoll, 2, Balance::Acceptor);
    let addr = group.local_addr();
    let handles = group.handles().to_vec();
    drop(group);
    util::wait_until("every loop to end", || {
        handles
            .iter()
            // A harmless command: it fails only once the loop is gone.
            .all(|h| h.run(|_| {}).is_err())
            .then_some(())
    });
    util::wait_until("the acceptor to close the listener", || {
        TcpStream::connect(addr).is_err().then_some(())
    });
}

#[cfg(target_os = "linux")]
/// The same with one listener per loop: each loop closes its own.
#[test]
fn dropping_a_reuseport_group_closes_its_listeners() {
    let group = spawn(BackendKind::Epoll, 2, Balance::ReusePort);
    let addr = group.local_addr();
    drop(group);
    util::wait_until("the loops to close their listeners", || {
        TcpStream::connect(addr).is_err().then_some(())
    });
}

/// The CPUs the calling thread may run on.
#[cfg(target_os = "linux")]
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; the call writes only it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        assert_eq!(
            libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set),
            0
        );
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
            .collect()
    }
}

/// `pin_to_cores(true)`: each loop's thread runs on one CPU of its own
/// (where the process has two or more).
#[cfg(target_os = "linux")]
#[test]
fn pinned_loops_each_run_on_one_cpu() {
    let available = allowed_cpus();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let group = {
        let seen = seen.clone();
        Group::builder(Config::new())
            .threads(2)
            .pin_to_cores(true)
            .spawn("127.0.0.1:0", move |index| {
                // The factory runs on the loop's own thread, once pinned.
                seen.lock().unwrap().push((index, allowed_cpus()));
                Echo::default()
            })
            .expect("start the group")
    };
    util::wait_until("both factories", || {
        (seen.lock().unwrap().len() == 2).then_some(())
    });
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    for (index, cpus) in &seen {
        assert_eq!(cpus, &[available[index % available.len()]], "loop {index}");
    }
    if available.len() >= 2 {
        assert_ne!(seen[0].1, seen[1].1, "two loops on one CPU");
    }
    group.stop();
    group.join().unwrap();
}

/// With `catch_panics(false)`, a handler panic ends its loop: `join`
/// reports it, and stops the other loops instead of leaving them serving
/// with no one to stop them.
#[test]
fn a_loop_that_fails_is_reported_and_the_others_are_stopped() {
    let group = Group::builder(config(BackendKind::Epoll).catch_panics(false))
        .threads(2)
        .balance(Balance::Acceptor)
        .spawn("127.0.0.1:0", |_| Echo::default())
        .expect("start the group");
    let handles = group.handles().to_vec();
    // Round-robin: the first client goes to loop 0.
    let mut client = connect(group.local_addr());
    client.write_all(b"boom\n").unwrap();
    util::wait_until("loop 0 to end", || {
        handles[0].run(|_| {}).is_err().then_some(())
    });
    let joined = group.join();
    assert!(joined.is_err(), "the failed loop was not reported");
    assert!(
        handles[1].run(|_| {}).is_err(),
        "the other loop was left running"
    );
}

/// Off Linux, pinning cannot be done: asking for it is refused, before
/// any loop starts, rather than silently ignored.
#[cfg(not(target_os = "linux"))]
#[test]
fn pinning_is_refused_where_it_cannot_be_done() {
    let echo = |_: usize| {
        |cx: &mut Context<'_>, conn: ConnId, msg: &[u8]| {
            let _ = cx.send(conn, msg);
        }
    };
    let spawned = Group::builder(Config::new())
        .threads(2)
        .balance(Balance::Acceptor)
        .pin_to_cores(true)
        .spawn("127.0.0.1:0", echo);
    let Err(refused) = spawned else {
        panic!("pinning was not refused");
    };
    assert_eq!(refused.kind(), std::io::ErrorKind::Unsupported);
    assert!(refused.to_string().contains("pin_to_cores"), "{refused}");
}
