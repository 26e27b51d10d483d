//! The steady path of an echo (read, handle, write) allocates nothing and
//! registers nothing: buffers come from the pool, and a socket that takes
//! every write never gets WRITABLE interest.
//!
//! This binary counts heap allocations made while the reactor runs a turn,
//! with a counting global allocator, so it holds this one test only.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use selectloop::backend::BackendKind;
use selectloop::codec::Lines;
use selectloop::{Config, ConnId, Context, Reactor};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// One request and its echo, with allocations counted only inside the turns.
fn round_trip(
    reactor: &mut Reactor,
    handler: &mut (impl selectloop::Handler + 'static),
    client: &mut TcpStream,
    msg: &[u8],
) {
    client.write_all(msg).unwrap();
    let mut got = 0;
    let mut buf = [0u8; 64];
    let deadline = Instant::now() + Duration::from_secs(20);
    while got < msg.len() {
        assert!(Instant::now() < deadline, "no echo");
        COUNTING.with(|c| c.set(true));
        let turn = reactor.run_once(handler, Some(Duration::from_millis(1)));
        COUNTING.with(|c| c.set(false));
        turn.unwrap();
        match client.read(&mut buf) {
            Ok(n) => {
                assert_eq!(&buf[..n], &msg[got..got + n]);
                got += n;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("read: {e}"),
        }
    }
}

fn echo_steady_path_allocates_nothing(backend: BackendKind) {
    let mut reactor =
        Reactor::with_config(Config::new().backend(backend).codec(Lines::new(256))).unwrap();
    let listener = reactor.listen("127.0.0.1:0").unwrap();
    let addr = reactor.local_addr(listener).unwrap();
    let mut handler = |cx: &mut Context<'_>, conn: ConnId, msg: &[u8]| {
        cx.send_frame(conn, msg).unwrap();
    };
    let mut clients: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(addr).unwrap()).collect();
    for client in &mut clients {
        client.set_nonblocking(true).unwrap();
        client.set_nodelay(true).unwrap();
    }
    // Warm up with the messages that are then counted: the slab, the pool,
    // the event and list vectors, and (on io_uring) each connection's
    // buffers reach their size.
    let line = b"a message of some forty bytes, or so\n";
    for _ in 0..50 {
        for client in &mut clients {
            round_trip(&mut reactor, &mut handler, client, line);
        }
    }
    let before = reactor.stats();
    ALLOCATIONS.store(0, Ordering::Relaxed);
    for _ in 0..500 {
        for client in &mut clients {
            round_trip(&mut reactor, &mut handler, client, line);
        }
    }
    let after = reactor.stats();
    assert_eq!(after.messages - before.messages, 2000);
    assert_eq!(
        ALLOCATIONS.load(Ordering::Relaxed),
        0,
        "allocations during 2,000 echoed messages"
    );
    assert_eq!(
        after.writes_blocked, 0,
        "no write ever needed WRITABLE interest"
    );
}
// One test per backend, run one after the other: the allocation counter is
// global, so two reactors counting at once would see each other's work.
#[test]
fn echo_steady_path_allocates_nothing_on_each_backend() {
    let backends = [
        BackendKind::Epoll,
        BackendKind::Poll,
        BackendKind::Select,
        // Its connections' bytes go through buffers each connection keeps
        // once they have grown to its messages: none is made per message.
        BackendKind::Uring,
    ];
    for backend in backends {
        echo_steady_path_allocates_nothing(backend);
    }
}
