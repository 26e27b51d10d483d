//! The seed drops departed sockets from `inputs` but never closes them.
//! Here 5,000 clients come and go (leaving, sending and leaving, resetting),
//! and the process's descriptor count returns to where it was.
//! This binary holds a single test so that no other test's sockets move the
//! process's descriptor count while it is measured.

mod util;

use util::BackendKind;

use selectloop::codec::Chunks;
use selectloop::Config;
use util::{connect, read_n, write_all, Respond, Server, GREETING};

fn departed_clients_descriptors_are_closed(backend: BackendKind) {
    let server = Server::start(
        Config::new().backend(backend).codec(Chunks::new(1024)),
        Respond,
    );
    // Warm up, so lazily opened descriptors are not counted as leaks.
    let mut first = connect(server.addr);
    assert_eq!(read_n(&mut first, GREETING.len()), GREETING);
    drop(first);
    server.wait_for("the warm-up client to close", |s| s.closed == 1);
    let before = util::open_fds();

    // 5,000 connect/close cycles: a third just leave, a third send and
    // leave, a third reset the connection with data in flight.
    const CYCLES: u64 = 5000;
    for i in 0..CYCLES {
        let mut client = connect(server.addr);
        assert_eq!(read_n(&mut client, GREETING.len()), GREETING);
        match i % 3 {
            0 => {}
            1 => write_all(&mut client, b"bye"),
            _ => {
                write_all(&mut client, b"reset");
                socket2::SockRef::from(&client)
                    .set_linger(Some(std::time::Duration::ZERO))
                    .unwrap();
            }
        }
    }
    let stats = server.wait_for("every client to close", |s| s.closed == CYCLES + 1);
    assert_eq!(stats.accepted, CYCLES + 1);
    // The slot (and socket) of a connection closed in a turn is freed at the
    // end of that turn; let one more turn pass.
    util::wait_until("descriptors to return to their count", || {
        (util::open_fds() <= before).then_some(())
    });
}
per_backend!(departed_clients_descriptors_are_closed);
