//! memcached_server against clients and a server nobody here wrote: the
//! libmemcached conformance check (`memccapable -a`), and the real
//! memcached 1.6 (Debian's `memcached`), sent the same bytes, answering
//! the same bytes, errors included.

use crate::util;

use std::io::{Read, Write};

use util::{connect, start_example, SocketPeer};

/// Every ASCII test of libmemcached's conformance check passes: get,
/// gets, mget, set/add/replace/append/prepend/cas with and without
/// noreply, delete, incr, decr, flush, version, verbosity, stat, quit.
#[test]
fn memccapable_passes_every_ascii_test() {
    let server = start_example("memcached_server", &[]);
    let output = util::tool("memccapable")
        .args(["-a", "-t", "10", "-h", "127.0.0.1", "-p"])
        .arg(server.addr.port().to_string())
        .output()
        .expect("run memccapable");
    let text = String::from_utf8_lossy(&output.stdout);
    let passed = text.matches("[pass]").count();
    assert!(output.status.success(), "memccapable failed:\n{text}");
    assert!(!text.contains("[FAIL]"), "{text}");
    assert_eq!(passed, 27, "{text}");
    assert!(text.contains("All tests passed"), "{text}");
}

/// A memcached of its own: one thread, the default 1 MiB item limit.
fn memcached() -> SocketPeer {
    SocketPeer::start("memcached", |command, socket, _dir| {
        // `-u root` is needed when the tests run as root, ignored otherwise.
        command.args(["-t", "1", "-u", "root", "-s"]).arg(socket);
    })
}

/// Ends every step: a value stored and read back, so the reply to the
/// step is everything before this one's reply.
const SENTINEL: &[u8] = b"set sentinel 0 0 5\r\nMARK!\r\nget sentinel\r\n";
const SENTINEL_REPLY: &[u8] = b"STORED\r\nVALUE sentinel 0 5\r\nMARK!\r\nEND\r\n";

/// Sends `step` then the sentinel, and returns what came back before the
/// sentinel's reply.
fn reply_to(peer: &mut (impl Read + Write), step: &[u8]) -> Vec<u8> {
    peer.write_all(step).unwrap();
    peer.write_all(SENTINEL).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    while !got.ends_with(SENTINEL_REPLY) {
        let n = peer.read(&mut buf).expect("a reply within 10 s");
        assert!(
            n > 0,
            "closed early after {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    got.truncate(got.len() - SENTINEL_REPLY.len());
    got
}

/// Sends every step to both servers, in order on one connection each,
/// and lists the replies that differ.
fn differences(steps: &[Vec<u8>]) -> Vec<String> {
    let memcached = memcached();
    let ours = start_example("memcached_server", &[]);
    let mut theirs_peer = memcached.connect();
    let mut mine_peer = connect(ours.addr);
    let show = |bytes: &[u8]| {
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]);
        text.replace("\r\n", "\\r\\n")
    };
    steps
        .iter()
        .filter_map(|step| {
            let theirs = reply_to(&mut theirs_peer, step);
            let mine = reply_to(&mut mine_peer, step);
            (theirs != mine).then(|| {
                format!(
                    "{}\n  memcached:        {}\n  memcached_server: {}",
                    show(step),
                    show(&theirs),
                    show(&mine)
                )
            })
        })
        .collect()
}

fn assert_same_as_memcached(steps: &[&[u8]]) {
    let steps: Vec<Vec<u8>> = steps.iter().map(|s| s.to_vec()).collect();
    util::assert_no_differences(&differences(&steps));
}

#[test]
fn storage_commands_answer_as_memcached() {
    assert_same_as_memcached(&[
        b"set a 5 0 1\r\nx\r\n",
        b"get a\r\n",
        b"add a 0 0 1\r\ny\r\n",
        b"add fresh 0 0 1\r\ny\r\n",
        b"replace missing 0 0 1\r\ny\r\n",
        b"replace a 7 0 2\r\nxy\r\n",
        b"append a 0 0 2\r\nyz\r\n",
        b"prepend a 9 0 1\r\n<\r\n",
        b"append missing 0 0 1\r\nz\r\n",
        b"get a fresh missing a\r\n",
        b"cas missing 0 0 1 1\r\nx\r\n",
        b"set k 0 0 1 noreply\r\nx\r\n",
        b"get k\r\n",
        b"set gone 0 -1 1\r\nx\r\n",
        b"get gone\r\n",
        b"set empty 0 0 0\r\n\r\n",
        b"get empty\r\n",
        b"delete a\r\n",
        b"delete a\r\n",
        b"delete fresh 0\r\n",
        b"delete k noreply\r\n",
        b"get k\r\n",
    ]);
}

/// Values on both sides of the size from which a `get` queues the
/// store's shared buffer instead of copying it, one of them got twice in
/// one request and replaced while a reply may still hold it.
#[test]
fn large_values_answer_as_memcached() {
    let set = |key: &str, fill: u8, len: usize| {
        let line = format!("set {key} 3 0 {len}\r\n");
        [line.as_bytes(), &vec![fill; len], b"\r\n"].concat()
    };
    assert_same_as_memcached(&[
        &set("just_under", b'a', 16 * 1024 - 1),
        &set("shared", b'b', 16 * 1024),
        &set("large", b'c', 700 * 1024),
        b"get just_under shared large shared\r\n",
        &set("shared", b'd', 20 * 1024),
        b"gets shared just_under\r\n",
    ]);
}

#[test]
fn counters_touch_and_flush_answer_as_memcached() {
    assert_same_as_memcached(&[
        b"set n 0 0 2\r\n10\r\n",
        b"decr n 1\r\n",
        b"get n\r\n",
        b"incr n 5\r\n",
        b"get n\r\n",
        b"decr n 100\r\n",
        b"incr n 18446744073709551615\r\n",
        b"incr n 1\r\n",
        b"incr n 1 noreply\r\n",
        b"get n\r\n",
        b"set word 0 0 3\r\nten\r\n",
        b"incr word 1\r\n",
        b"incr missing 1\r\n",
        b"incr n -1\r\n",
        b"incr n abc\r\n",
        b"touch n 100\r\n",
        b"touch missing 100\r\n",
        b"touch n abc\r\n",
        b"touch n -1\r\n",
        b"get n\r\n",
        b"flush_all\r\n",
        b"get word\r\n",
        b"set w 0 0 1\r\nx\r\n",
        b"flush_all noreply\r\n",
        b"get w\r\n",
        b"verbosity 1\r\n",
        b"verbosity 1 noreply\r\n",
    ]);
}

#[test]
fn malformed_commands_are_refused_as_memcached_refuses_them() {
    let long_key = [b"get ".as_slice(), &[b'k'; 251], b"\r\n"].concat();
    let longest_key = [b"set ".as_slice(), &[b'k'; 250], b" 0 0 1\r\nx\r\n"].concat();
    let big_value = [
        b"set big 0 0 2000000\r\n".as_slice(),
        &vec![b'v'; 2_000_000],
        b"\r\n",
    ]
    .concat();
    let old_big = b"set big 0 0 1\r\nx\r\n";
    assert_same_as_memcached(&[
        b"bogus\r\n",
        b"\r\n",
        b"get\r\n",
        b"set k 0 0\r\n",
        b"set k abc 0 1\r\nx\r\n",
        b"set k 0 0 -1\r\n",
        b"set k 0 0 3\r\nabcd\r\n",
        b"get k\r\n",
        b"cas k 0 0 1 abc\r\nx\r\n",
        &long_key,
        &longest_key,
        b"delete a 5\r\n",
        old_big,
        &big_value,
        b"get big\r\n",
        b"flush_all abc\r\n",
        b"verbosity\r\n",
    ]);
}
