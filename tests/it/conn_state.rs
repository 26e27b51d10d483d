//! State the loop keeps per connection for the handler
//! (`Context::set_state`, `with_state`, `take_state`): no map beside the
//! loop's own table, dropped with the connection.

use crate::util;

use util::BackendKind;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use selectloop::{CloseReason, Config, ConnId, Context, Handler};
use util::{connect, read_n, write_all, Server};

/// What the loop keeps for one client: its name and how many lines it
/// sent; its drop is counted.
struct Session {
    name: String,
    lines: u32,
    dropped: Arc<AtomicUsize>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

/// Names each client on connect, counts its lines, answers with both, and
/// reports the count at close (for the clients that said `report`).
struct Counting {
    dropped: Arc<AtomicUsize>,
    reports: Arc<Mutex<Vec<(String, u32)>>>,
    next: u32,
}

impl Handler for Counting {
    fn on_connect(&mut self, cx: &mut Context<'_>, conn: ConnId) {
        self.next += 1;
        let session = Session {
            name: format!("client{}", self.next),
            lines: 0,
            dropped: self.dropped.clone(),
        };
        assert!(cx.set_state(conn, session));
    }

    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, msg: &[u8]) {
        // The wrong type finds nothing, and leaves the state where it is.
        assert!(cx.with_state(conn, |_: &mut u64, _| ()).is_none());
        let answered = cx.with_state(conn, |session: &mut Session, cx| {
            session.lines += 1;
            if msg == b"report" {
                session.name.push('!');
            }
            let line = format!("{} {}\n", session.name, session.lines);
            let _ = cx.send(conn, line.as_bytes());
        });
        assert!(answered.is_some());
    }

    fn on_close(&mut self, cx: &mut Context<'_>, conn: ConnId, _reason: &CloseReason) {
        // The last look: only for the clients that asked.
        let reported = cx.with_state(conn, |session: &mut Session, _| session.name.ends_with('!'));
        if reported == Some(true) {
            let session = cx
                .take_state::<Session>(conn)
                .expect("still there in on_close");
            self.reports
                .lock()
                .unwrap()
                .push((session.name.clone(), session.lines));
        }
    }
}

fn each_connection_keeps_its_own_state_until_it_closes(backend: BackendKind) {
    let dropped = Arc::new(AtomicUsize::new(0));
    let reports = Arc::new(Mutex::new(Vec::new()));
    let handler = Counting {
        dropped: dropped.clone(),
        reports: reports.clone(),
        next: 0,
    };
    let server = Server::start(Config::new().backend(backend), handler);
    let mut first = connect(server.addr);
    write_all(&mut first, b"a\n");
    assert_eq!(read_n(&mut first, 10), b"client1 1\n");
    let mut second = connect(server.addr);
    write_all(&mut second, b"a\nb\n");
    assert_eq!(read_n(&mut second, 20), b"client2 1\nclient2 2\n");
    write_all(&mut first, b"report\n");
    assert_eq!(read_n(&mut first, 11), b"client1! 2\n");
    drop(first);
    drop(second);
    let stats = server.wait_for("both closed", |s| s.closed == 2);
    assert_eq!(stats.closed, 2);
    // Taken in on_close for one, dropped with its connection for the
    // other: each dropped once, none kept.
    util::wait_until("both sessions dropped", || {
        (dropped.load(Ordering::SeqCst) == 2).then_some(())
    });
    assert_eq!(
        reports.lock().unwrap().as_slice(),
        [("client1!".to_string(), 2)]
    );
    drop(server);
    assert_eq!(dropped.load(Ordering::SeqCst), 2);
}
per_backend!(each_connection_keeps_its_own_state_until_it_closes);
