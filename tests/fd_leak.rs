//! The seed drops departed sockets from `inputs` but never closes them.
//! This binary holds a single test so that no other test's sockets move the
//! process's descriptor count while it is measured.

mod util;

use selectloop::codec::Chunks;
use selectloop::Config;
use util::{connect, read_n, write_all, Respond, Server, GREETING};

#[test]
fn departed_clients_descriptors_are_closed() {
    let server = Server::start(Config::new().codec(Chunks::new(1024)), Respond);
    // Warm up, so lazily opened descriptors are not counted as leaks.
    let mut first = connect(server.addr);
    assert_eq!(read_n(&mut first, GREETING.len()), GREETING);
    drop(first);
    server.wait_for("the warm-up client to close", |s| s.closed == 1);
    let before = util::open_fds();

    for i in 0..200 {
        let mut client = connect(server.addr);
        assert_eq!(read_n(&mut client, GREETING.len()), GREETING);
        if i % 2 == 0 {
            write_all(&mut client, b"bye");
        }
    }
    server.wait_for("every client to close", |s| s.closed == 201);
    // The slot (and socket) of a connection closed in a turn is freed at the
    // end of that turn; let one more turn pass.
    util::wait_until("descriptors to return to their count", || {
        (util::open_fds() <= before).then_some(())
    });
}
