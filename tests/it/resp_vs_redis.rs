//! resp_server beside the real redis-server 7.0 (Debian's `redis-server`,
//! which `cargo xtask test` installs): the same commands sent to both,
//! byte for byte the same replies, errors included. This is the check that
//! every command and option resp_server claims behaves as Redis's does.
//!
//! Replies that cannot match by nature (a client id, the server's name and
//! version, the command table, a random member, a time to live in
//! milliseconds) are tested on their own in tests/resp_server.rs.

use crate::util;

use std::io::{BufRead, BufReader, Read, Write};
use std::time::Duration;

use util::{connect, resp_command as command, start_example, SocketPeer};

/// A redis-server of its own, persisting nothing.
fn redis_server() -> SocketPeer {
    SocketPeer::start("redis-server", |command, socket, dir| {
        command
            .args(["--port", "0", "--unixsocket"])
            .arg(socket)
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(dir);
    })
}

/// One whole RESP2 reply, as the bytes it came in.
fn read_reply(reader: &mut impl BufRead) -> Vec<u8> {
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line).expect("a reply");
    assert!(line.ends_with(b"\r\n"), "cut reply {line:?}");
    let number = || -> i64 {
        std::str::from_utf8(&line[1..line.len() - 2])
            .unwrap()
            .parse()
            .unwrap()
    };
    match line[0] {
        b'+' | b'-' | b':' => line,
        b'$' => {
            let len = number();
            if len >= 0 {
                let mut body = vec![0; len as usize + 2];
                reader.read_exact(&mut body).unwrap();
                line.extend_from_slice(&body);
            }
            line
        }
        b'*' => {
            let count = number();
            for _ in 0..count.max(0) {
                let item = read_reply(reader);
                line.extend_from_slice(&item);
            }
            line
        }
        other => panic!("not a reply: {:?}", char::from(other)),
    }
}

/// What one peer answers, command by command.
fn reply_to<S: Read + Write>(peer: &mut BufReader<S>, args: &[&[u8]]) -> Vec<u8> {
    peer.get_mut().write_all(&command(args)).unwrap();
    read_reply(peer)
}

/// Sends `script` to both servers, each on a fresh connection after
/// FLUSHALL, a command to one then the same to the other (so that times
/// to live are read within a millisecond of each other), and lists every
/// reply that differs.
fn differences(script: &[Vec<&[u8]>]) -> Vec<String> {
    let redis = redis_server();
    let ours = start_example("resp_server", &[]);
    let flush: Vec<&[u8]> = vec![b"FLUSHALL"];
    let with_flush: Vec<Vec<&[u8]>> = std::iter::once(flush)
        .chain(script.iter().cloned())
        .collect();
    let mut theirs_peer = BufReader::new(redis.connect());
    let mut mine_peer = BufReader::new(connect(ours.addr));
    let (theirs, mine): (Vec<Vec<u8>>, Vec<Vec<u8>>) = with_flush
        .iter()
        .map(|args| {
            (
                reply_to(&mut theirs_peer, args),
                reply_to(&mut mine_peer, args),
            )
        })
        .unzip();
    let show = |bytes: &[u8]| String::from_utf8_lossy(bytes).replace("\r\n", "\\r\\n");
    with_flush
        .iter()
        .zip(theirs.iter().zip(&mine))
        .filter(|(_, (theirs, mine))| theirs != mine)
        .map(|(args, (theirs, mine))| {
            let args: Vec<_> = args.iter().map(|a| show(a)).collect();
            format!(
                "{args:?}\n  redis:       {}\n  resp_server: {}",
                show(theirs),
                show(mine)
            )
        })
        .collect()
}

/// Splits each line on spaces into a command (no argument here has one).
fn script(lines: &[&'static str]) -> Vec<Vec<&'static [u8]>> {
    lines
        .iter()
        .map(|line| line.split(' ').map(str::as_bytes).collect())
        .collect()
}

fn assert_same_as_redis(lines: &[&'static str]) {
    util::assert_no_differences(&differences(&script(lines)));
}

#[test]
fn strings_and_counters_answer_as_redis() {
    assert_same_as_redis(&[
        "SET k v",
        "GET k",
        "SET k v2 GET",
        "SET k v3 NX",
        "SET k v3 XX",
        "SET nx-new v NX GET",
        "SET k v NX XX",
        "SET k v EX",
        "SET k v EX 10 PX 100",
        "SET k v EX 10 KEEPTTL",
        "SET k v KEEPTTL EX 10",
        "SET k v EX 10 EX 20",
        "TTL k",
        "SET k v PXAT 99999999999999 PXAT 99999999999999",
        "SET xx-missing v XX",
        "GET xx-missing",
        "SET k v EX abc",
        "SET k v EX 0",
        "SET k v EX -1",
        "SET k v PX 0",
        "SET k v EX 9223372036854775807",
        "SET k v PX 9223372036854775807",
        "SET k v EX 9223372036854775",
        "SET k v EXAT 9223372036854775807",
        "SET k v PXAT 9223372036854775807",
        "GET k",
        "SET k v EX 100",
        "TTL k",
        "SET k v2 KEEPTTL",
        "TTL k",
        "SET k v3",
        "TTL k",
        "SET k v PXAT 1",
        "GET k",
        "SET k v EXAT 99999999999",
        // Not TTL: seconds left to an absolute deadline round up or down
        // with the millisecond each server reads the clock.
        "PERSIST k",
        "TTL k",
        "SET k v exat 99999999999 xx get",
        "SET k v BOGUS",
        "LPUSH list a",
        "SET list v GET",
        "GET list",
        "SET n 9223372036854775806",
        "INCR n",
        "INCR n",
        "GET n",
        "SET n -9223372036854775807",
        "DECR n",
        "DECR n",
        "DECRBY n 1",
        "SET m 10",
        "DECRBY m 3",
        "DECRBY m -9223372036854775808",
        "DECRBY m abc",
        "INCRBY m 9223372036854775807",
        "INCRBY m x",
        "SET s 01",
        "INCR s",
        "SET s +1",
        "INCR s",
        "SET s 1.5",
        "INCR s",
        "INCRBY newkey -5",
        "DECR other",
        "MSET a 1 b 2",
        "MSET a 1 b",
        "MGET a b c list",
        "DEL a b c",
        "EXISTS a n n",
        "ECHO hi",
        "PING",
        "PING hello",
        "PING a b",
        "GET",
        "DBSIZE",
        "nosuch a b",
        "FLUSHALL ASYNC x",
        "FLUSHALL BOGUS",
        "FLUSHALL SYNC",
        "DBSIZE",
    ]);
}

#[test]
fn expiry_answers_as_redis() {
    assert_same_as_redis(&[
        "SET k v",
        "EXPIRE k 100",
        "TTL k",
        "EXPIRE k 100 NX",
        "EXPIRE k 200 XX",
        "TTL k",
        "EXPIRE k 50 GT",
        "EXPIRE k 300 GT",
        "TTL k",
        "EXPIRE k 400 LT",
        "EXPIRE k 60 LT",
        "TTL k",
        "EXPIRE k 10 NX XX",
        "EXPIRE k 10 GT LT",
        "EXPIRE k 10 NX GT",
        "EXPIRE k 10 XX GT",
        "EXPIRE k 10 BOGUS",
        "EXPIRE k abc",
        "EXPIRE k abc BOGUS",
        "EXPIRE k 9223372036854775807",
        "EXPIRE k -9223372036854775807",
        "EXPIRE k 9223372036854775",
        "EXPIRE missing 10",
        "SET p v",
        "EXPIRE p 10 XX",
        "EXPIRE p 10 GT",
        "EXPIRE p 10 LT",
        "TTL p",
        "PEXPIRE p 100000",
        "PERSIST p",
        "PERSIST p",
        "TTL p",
        "EXPIREAT p 99999999999",
        "EXPIREAT p 99999999999 GT",
        "EXPIREAT p 99999999999 LT",
        "PEXPIRE p 200000",
        "PTTL p extra",
        "PEXPIREAT p 9223372036854775807",
        "PEXPIRE p 9223372036854775807",
        "EXPIRE p 0",
        "EXISTS p",
        "SET q v",
        "EXPIRE q -5",
        "GET q",
        "SET r v",
        "EXPIREAT r 1",
        "GET r",
        "TTL missing",
        "PTTL missing",
        "PERSIST missing",
        "EXPIRE",
        "TTL",
    ]);
}

#[test]
fn lists_sets_hashes_and_sorted_sets_answer_as_redis() {
    assert_same_as_redis(&[
        "RPUSH l a b c d e",
        "LPUSH l z",
        "LRANGE l 0 -1",
        "LRANGE l -100 100",
        "LRANGE l 2 1",
        "LRANGE l x 1",
        "LLEN l",
        "LPOP l",
        "RPOP l 2",
        "LPOP l 0",
        "LPOP l -1",
        "LPOP l x",
        "LPOP l 1 1",
        "RPOP l 1 1 1",
        "LPOP missing",
        "LPOP missing 2",
        "LPOP l 100",
        "EXISTS l",
        "SADD s a",
        "SADD s a",
        "SCARD s",
        "SPOP s 0",
        "SPOP s -1",
        "SPOP s x",
        "SPOP s 1 1",
        "SPOP missing",
        "SPOP missing 3",
        "SPOP s 5",
        "EXISTS s",
        "SADD s only",
        "SPOP s",
        "SPOP s",
        "SCARD missing",
        "HSET h f v g w",
        "HSET h f v2",
        "HSET h f",
        "HGET h f",
        "HGET h nope",
        "HGET missing f",
        "ZADD z 1 a 2 b",
        "ZADD z 3 c 1",
        "ZADD z",
        "ZADD z NX XX 1 a",
        "ZADD z NX GT 1 a",
        "ZADD z GT LT 1 a",
        "ZADD z INCR 1 a 2 b",
        "ZADD z x a",
        "ZADD z nan a",
        "ZADD z NX 5 a 6 n",
        "ZADD z XX 5 a 6 m",
        "ZADD z XX CH 7 a 6 m",
        "ZADD z GT CH 1 a 9 b",
        "ZADD z LT CH 1 a 9 b",
        "ZADD z CH 1 a 1 b",
        "ZADD z INCR 2.5 a",
        "ZADD z INCR -inf a",
        "ZADD z INCR +inf a",
        "ZADD z INCR NX 1 a",
        "ZADD z INCR XX 1 newmember",
        "ZADD z GT INCR -1 b",
        "ZADD z GT INCR 0 b",
        "ZADD z LT INCR 0 b",
        "ZADD z NX XX",
        "ZADD z CH",
        "ZADD z 0.0 zero 0.000 zero2 +0x10 hex",
        "ZADD z 0.1 f 1e3 g -0.5 h 1e-3 i",
        "ZADD z 1e400 j",
        "ZADD z 1e-400 j",
        "ZADD z inf k -inf l",
        "ZADD zx XX 1 a",
        "EXISTS zx",
        "ZPOPMIN z",
        "ZPOPMIN z 3",
        "ZPOPMIN z 0",
        "ZPOPMIN z -1",
        "ZPOPMIN z x",
        "ZPOPMIN z 1 1",
        "ZPOPMIN z 100",
        "ZPOPMIN missing",
        "SET str v",
        "LPUSH str a",
        "SADD str a",
        "SPOP str",
        "HSET str f v",
        "ZADD str 1 a",
        "LLEN str",
        "SCARD str",
        "HGET str f",
        "ZPOPMIN str",
        "LRANGE str 0 1",
        "LPOP str",
        "GET l",
        "INCR z",
    ]);
}

#[test]
fn the_start_of_a_session_answers_as_redis() {
    assert_same_as_redis(&[
        "CLIENT",
        "CLIENT GETNAME",
        "CLIENT SETNAME worker-1",
        "CLIENT GETNAME",
        "CLIENT SETNAME",
        "CLIENT SETNAME a b",
        "CLIENT SETNAME with\u{7f}",
        "CLIENT GETNAME extra",
        "CLIENT BOGUS",
        "CLIENT ID extra",
        "HELLO 1",
        "HELLO x",
        "HELLO 2 BOGUS",
        "CONFIG",
        "CONFIG GET",
        "CONFIG BOGUS",
        "CONFIG GET save",
        "CONFIG GET appendonly",
        "CONFIG GET no-such-parameter",
        "COMMAND BOGUS",
        "COMMAND COUNT extra",
        "COMMAND INFO no-such-command",
        "ECHO",
    ]);
}

/// Redis quotes at most 128 bytes of a command's arguments in the unknown
/// command error: a 1 MiB argument does not come back whole (nor tripled
/// by a lossy UTF-8 conversion of its 0xFF bytes).
#[test]
fn unknown_commands_quote_what_redis_quotes() {
    let big = vec![0xffu8; 1024 * 1024];
    let name_200 = vec![b'X'; 200];
    let with_nul = b"ab\0cd".to_vec();
    let script: Vec<Vec<&[u8]>> = vec![
        vec![b"nosuch", &big],
        vec![&name_200, b"a"],
        vec![b"nosuch", b"a", &with_nul, b"b"],
        vec![b"nosuch", b"with\r\nnewline"],
        vec![b"nosuch", &[b'y'; 100], &[b'z'; 100], b"c"],
        vec![b"nosuch"],
        vec![b"ECHO", b""],
        vec![b"SET", b"", b""],
        vec![b"GET", b""],
    ];
    let found = differences(&script);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// Everything a peer answers to `wire` before it closes the connection.
/// A request that breaks the protocol follows `wire`, so that both close
/// it, whatever `wire` left them waiting for.
fn answer_to_bytes<S: Read + Write>(mut stream: S, wire: &[u8]) -> Vec<u8> {
    // Written at once: a server that closes on the first error may be gone
    // before a second write.
    let _ = stream.write_all(&[wire, b"\r\n*x\r\n"].concat());
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return answer,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
}

/// Requests as bytes, well and badly formed: both servers answer the same
/// bytes, and close the connection alike.
#[test]
fn the_wire_protocol_is_read_as_redis_reads_it() {
    let redis = redis_server();
    let ours = start_example("resp_server", &[]);
    let cases: [&[u8]; 25] = [
        b"*1\n$4\r\nPING\r\n",
        b"*01\r\n$4\r\nPING\r\n",
        b"*-0\r\n",
        b"*1\r\n$4\n\r\nPING\r\n",
        b"*1\r\n$04\r\nPING\r\n",
        b"*1\r\n$-1\r\n",
        b"*3000000\r\n",
        b"*1\r\n$600000000\r\n",
        b"*2\r\n$4\r\nECHO\r\n+x\r\n",
        b"*x\r\n",
        b"PING\r\n*1\r\n$4\r\nPING\r\n*0\r\n*-1\r\nPING\n",
        b"ECHO \"a\\x41b\" 'c d'\r\n",
        b"ECHO \"unbalanced\r\n",
        b"ECHO 'x'y\r\n",
        b"\r\n\r\nPING\r\n",
        b"SET k v\r\nGET k\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$03\r\n",
        b"PING \r\n\nPING\r\n",
        b"ECHO 'a\\'b'\r\n",
        b"ECHO \"a\\bb\\ac\\q\\x4g\"\r\n",
        b"ECHO a\"b c\"\r\n",
        b"ECHO a\"b c\"d\r\n",
        b"ECHO\x0ba\r\nPING \x0b\x0c\r\n",
        b"ECHO \"a\"\x0b\r\n",
        b"*1\r\n$0\r\n\r\n",
        b"ECHO \"\xff\xfe\" \x80\r\n",
    ];
    let mut differ = Vec::new();
    for wire in cases {
        let theirs_stream = redis.connect();
        theirs_stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let theirs = answer_to_bytes(theirs_stream, wire);
        let mine_stream = connect(ours.addr);
        mine_stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mine = answer_to_bytes(mine_stream, wire);
        if theirs != mine {
            differ.push(format!(
                "{:?}\n  redis:       {:?}\n  resp_server: {:?}",
                String::from_utf8_lossy(wire),
                String::from_utf8_lossy(&theirs),
                String::from_utf8_lossy(&mine)
            ));
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}
