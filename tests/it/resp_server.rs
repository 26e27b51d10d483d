//! The resp_server example, driven by a raw-socket client and by the real
//! `redis-cli` and `redis-benchmark` (Debian's `redis-tools`, which
//! `.ci/run` installs).

use crate::util;

use util::BackendKind;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use util::{connect, read_n, resp_command as command, start_example, write_all};

fn ask(client: &mut TcpStream, args: &[&[u8]], answer: &str) {
    write_all(client, &command(args));
    assert_eq!(
        String::from_utf8_lossy(&read_n(client, answer.len())),
        answer,
        "{:?}",
        args.iter()
            .map(|a| String::from_utf8_lossy(a))
            .collect::<Vec<_>>()
    );
}

/// One reply line, `\r\n` included.
fn read_line(client: &mut TcpStream) -> String {
    let mut line = Vec::new();
    while !line.ends_with(b"\r\n") {
        line.extend_from_slice(&read_n(client, 1));
    }
    String::from_utf8_lossy(&line).into_owned()
}

fn pipelined_commands_split_at_every_byte_get_their_answers_in_order(backend: BackendKind) {
    let server = start_example("resp_server", &["--backend", backend.name()]);
    let mut wire = Vec::new();
    let mut expected = String::new();
    for (args, answer) in [
        (vec![&b"SET"[..], b"k", b"v1"], "+OK\r\n"),
        (vec![&b"GET"[..], b"k"], "$2\r\nv1\r\n"),
        (vec![&b"INCR"[..], b"n"], ":1\r\n"),
        (vec![&b"INCRBY"[..], b"n", b"41"], ":42\r\n"),
        (vec![&b"RPUSH"[..], b"l", b"a", b"b", b"c"], ":3\r\n"),
        (
            vec![&b"LRANGE"[..], b"l", b"0", b"-1"],
            "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n",
        ),
        (
            vec![&b"ECHO"[..], b"with\r\nCRLF"],
            "$10\r\nwith\r\nCRLF\r\n",
        ),
        (vec![&b"DEL"[..], b"k", b"l", b"missing"], ":2\r\n"),
    ] {
        wire.extend_from_slice(&command(&args));
        expected.push_str(answer);
    }
    // Inline, as telnet sends it.
    wire.extend_from_slice(b"PING\r\nEXISTS n k\n");
    expected.push_str("+PONG\r\n:1\r\n");
    // Fed a byte at a time, then all at once, each time on a clean database.
    for piece in [1, wire.len()] {
        let mut client = connect(server.addr);
        client.set_nodelay(true).unwrap();
        ask(&mut client, &[b"FLUSHALL"], "+OK\r\n");
        for chunk in wire.chunks(piece) {
            write_all(&mut client, chunk);
        }
        let got = read_n(&mut client, expected.len());
        assert_eq!(String::from_utf8_lossy(&got), expected, "pieces of {piece}");
    }
}
per_backend!(pipelined_commands_split_at_every_byte_get_their_answers_in_order);

fn errors_are_worded_as_redis_words_them(backend: BackendKind) {
    let server = start_example("resp_server", &["--backend", backend.name()]);
    let mut client = connect(server.addr);
    ask(&mut client, &[b"SET", b"s", b"text"], "+OK\r\n");
    ask(
        &mut client,
        &[b"LPUSH", b"s", b"x"],
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
    );
    ask(
        &mut client,
        &[b"INCR", b"s"],
        "-ERR value is not an integer or out of range\r\n",
    );
    ask(
        &mut client,
        &[b"GET"],
        "-ERR wrong number of arguments for 'get' command\r\n",
    );
    ask(
        &mut client,
        &[b"NOSUCH", b"a", b"b"],
        "-ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' \r\n",
    );
    ask(
        &mut client,
        &[b"SET", b"k", b"v", b"BOGUS"],
        "-ERR syntax error\r\n",
    );
    ask(
        &mut client,
        &[b"SET", b"k", b"v", b"EX", b"0"],
        "-ERR invalid expire time in 'set' command\r\n",
    );
    ask(&mut client, &[b"SET", b"k", b"v", b"NX"], "+OK\r\n");
    ask(&mut client, &[b"SET", b"k", b"w", b"NX"], "$-1\r\n");
    ask(&mut client, &[b"SET", b"nope", b"w", b"XX"], "$-1\r\n");
    ask(&mut client, &[b"GET", b"k"], "$1\r\nv\r\n");
}
per_backend!(errors_are_worded_as_redis_words_them);

fn a_protocol_error_is_answered_after_earlier_commands_and_closes_only_that_client(
    backend: BackendKind,
) {
    let server = start_example("resp_server", &["--backend", backend.name()]);
    let mut other = connect(server.addr);
    ask(&mut other, &[b"SET", b"kept", b"yes"], "+OK\r\n");
    for (bad, why) in [
        (&b"*1\r\n$-5\r\n"[..], "invalid bulk length"),
        (b"*x\r\n", "invalid multibulk length"),
        (b"*1\r\n:12\r\n", "expected '$', got ':'"),
        (b"GET \"unbalanced\r\n", "unbalanced quotes in request"),
    ] {
        let mut client = connect(server.addr);
        let mut wire = command(&[b"PING"]);
        wire.extend_from_slice(bad);
        write_all(&mut client, &wire);
        // Answered, then ended (a lingering close: no reset, even with
        // bytes of the client's left unread).
        let mut answer = Vec::new();
        client
            .read_to_end(&mut answer)
            .expect("end of file, not a reset");
        assert_eq!(
            String::from_utf8_lossy(&answer),
            format!("+PONG\r\n-ERR Protocol error: {why}\r\n")
        );
    }
    ask(&mut other, &[b"GET", b"kept"], "$3\r\nyes\r\n");
}
per_backend!(a_protocol_error_is_answered_after_earlier_commands_and_closes_only_that_client);

fn keys_expire_when_touched_and_by_the_sweep(backend: BackendKind) {
    let server = start_example("resp_server", &["--backend", backend.name()]);
    let mut client = connect(server.addr);
    for i in 0..10 {
        let key = format!("short{i}");
        ask(
            &mut client,
            &[b"SET", key.as_bytes(), b"v", b"PX", b"50"],
            "+OK\r\n",
        );
    }
    ask(
        &mut client,
        &[b"SET", b"long", b"v", b"EX", b"100"],
        "+OK\r\n",
    );
    ask(&mut client, &[b"TTL", b"long"], ":100\r\n");
    ask(&mut client, &[b"TTL", b"missing"], ":-2\r\n");
    // Nobody touches the short keys: the sweep deletes them.
    util::wait_until("the sweep to delete the expired keys", || {
        write_all(&mut client, &command(&[b"DBSIZE"]));
        (read_line(&mut client) == ":1\r\n").then_some(())
    });
    ask(&mut client, &[b"GET", b"short3"], "$-1\r\n");
    ask(&mut client, &[b"EXPIRE", b"long", b"0"], ":1\r\n");
    ask(&mut client, &[b"EXISTS", b"long"], ":0\r\n");
}
per_backend!(keys_expire_when_touched_and_by_the_sweep);

fn sets_hashes_and_sorted_sets(backend: BackendKind) {
    let server = start_example("resp_server", &["--backend", backend.name()]);
    let mut client = connect(server.addr);
    ask(&mut client, &[b"SADD", b"s", b"a", b"b", b"a"], ":2\r\n");
    ask(&mut client, &[b"SCARD", b"s"], ":2\r\n");
    write_all(&mut client, &command(&[b"SPOP", b"s"]));
    let popped = read_n(&mut client, 7);
    assert!(
        popped == b"$1\r\na\r\n" || popped == b"$1\r\nb\r\n",
        "{popped:?}"
    );
    ask(
        &mut client,
        &[b"HSET", b"h", b"f", b"1", b"g", b"2"],
        ":2\r\n",
    );
    ask(&mut client, &[b"HGET", b"h", b"g"], "$1\r\n2\r\n");
    ask(
        &mut client,
        &[b"ZADD", b"z", b"2", b"two", b"1.5", b"one"],
        ":2\r\n",
    );
    ask(
        &mut client,
        &[b"ZPOPMIN", b"z", b"5"],
        "*4\r\n$3\r\none\r\n$3\r\n1.5\r\n$3\r\ntwo\r\n$1\r\n2\r\n",
    );
    ask(&mut client, &[b"MSET", b"a", b"1", b"b", b"2"], "+OK\r\n");
    ask(
        &mut client,
        &[b"MGET", b"a", b"x", b"b"],
        "*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n2\r\n",
    );
    ask(&mut client, &[b"LPOP", b"nolist"], "$-1\r\n");
}
per_backend!(sets_hashes_and_sorted_sets);

/// What cannot be compared with redis-server byte for byte
/// (tests/resp_vs_redis.rs compares the rest): ids, the server's own
/// description, the command table, random members, milliseconds left.
fn what_differs_from_redis_by_nature_is_still_right(backend: BackendKind) {
    let server = start_example("resp_server", &["--backend", backend.name()]);
    let mut first = connect(server.addr);
    let mut second = connect(server.addr);
    // CLIENT ID: an integer per connection, the same each time asked.
    let id = |client: &mut TcpStream| {
        write_all(client, &command(&[b"CLIENT", b"ID"]));
        let line = read_line(client);
        line.trim_end()
            .strip_prefix(':')
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    let (a, b) = (id(&mut first), id(&mut second));
    assert_ne!(a, b);
    assert_eq!(id(&mut first), a);
    // HELLO 3 is refused, the connection stays in RESP2; HELLO 2 gives
    // the server's description with this client's id and sets its name.
    ask(
        &mut first,
        &[b"HELLO", b"3"],
        "-NOPROTO unsupported protocol version\r\n",
    );
    write_all(&mut first, &command(&[b"HELLO", b"2", b"SETNAME", b"me"]));
    let hello = [
        "*14\r\n$6\r\nserver\r\n$10\r\nselectloop\r\n$7\r\nversion\r\n$5\r\n7.0.0\r\n",
        "$5\r\nproto\r\n:2\r\n$2\r\nid\r\n",
        &format!(":{a}\r\n"),
        "$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n",
        "$7\r\nmodules\r\n*0\r\n",
    ]
    .concat();
    assert_eq!(
        String::from_utf8_lossy(&read_n(&mut first, hello.len())),
        hello
    );
    ask(&mut first, &[b"CLIENT", b"GETNAME"], "$2\r\nme\r\n");
    ask(&mut second, &[b"CLIENT", b"GETNAME"], "$-1\r\n");
    // COMMAND: as many entries as COMMAND COUNT says; INFO describes one.
    write_all(&mut first, &command(&[b"COMMAND", b"COUNT"]));
    let count: usize = read_line(&mut first).trim_end()[1..].parse().unwrap();
    assert!(count >= 38, "{count}");
    write_all(&mut first, &command(&[b"COMMAND"]));
    assert_eq!(read_line(&mut first), format!("*{count}\r\n"));
    ask(
        &mut second,
        &[b"COMMAND", b"INFO", b"get"],
        "*1\r\n*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n\
         *0\r\n*0\r\n*0\r\n*0\r\n",
    );
    // SPOP with a count: that many distinct members, gone from the set.
    ask(&mut second, &[b"SADD", b"s", b"a", b"b", b"c"], ":3\r\n");
    write_all(&mut second, &command(&[b"SPOP", b"s", b"2"]));
    assert_eq!(read_line(&mut second), "*2\r\n");
    let popped = [read_n(&mut second, 7), read_n(&mut second, 7)];
    assert_ne!(popped[0], popped[1]);
    ask(&mut second, &[b"SCARD", b"s"], ":1\r\n");
    // PTTL: milliseconds, at most what was given.
    ask(
        &mut second,
        &[b"SET", b"k", b"v", b"PX", b"100000"],
        "+OK\r\n",
    );
    write_all(&mut second, &command(&[b"PTTL", b"k"]));
    let left: i64 = read_line(&mut second).trim_end()[1..].parse().unwrap();
    assert!((90_000..=100_000).contains(&left), "{left}");
}
per_backend!(what_differs_from_redis_by_nature_is_still_right);

/// A value the server accepts can be read back: a 40 MiB GET reply, larger
/// than the loop's 32 MiB output limit, goes out whole after the small
/// replies pipelined before it (before, the connection was closed and
/// every queued reply lost).
fn a_value_larger_than_the_output_limit_is_read_back_whole(backend: BackendKind) {
    let server = start_example("resp_server", &["--backend", backend.name()]);
    let mut client = connect(server.addr);
    let value = vec![b'v'; 40 << 20];
    ask(&mut client, &[b"SET", b"big", &value], "+OK\r\n");
    let mut wire = command(&[b"PING"]);
    wire.extend_from_slice(&command(&[b"GET", b"big"]));
    wire.extend_from_slice(&command(&[b"ECHO", b"after"]));
    write_all(&mut client, &wire);
    assert_eq!(read_line(&mut client), "+PONG\r\n");
    assert_eq!(read_line(&mut client), format!("${}\r\n", value.len()));
    assert!(read_n(&mut client, value.len()) == value);
    assert_eq!(read_n(&mut client, 2), b"\r\n");
    assert_eq!(read_n(&mut client, 11), b"$5\r\nafter\r\n");
}
per_backend!(a_value_larger_than_the_output_limit_is_read_back_whole);

/// What `redis-cli -p PORT ARGS...` prints; it must succeed.
fn redis_cli(port: &str, args: &[&str]) -> String {
    let output = util::tool("redis-cli")
        .args(["-h", "127.0.0.1", "-p", port])
        .args(args)
        .output()
        .expect("run redis-cli");
    assert!(output.status.success(), "redis-cli {args:?}: {output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn redis_cli_talks_to_it(backend: BackendKind) {
    let server = start_example("resp_server", &["--backend", backend.name()]);
    let port = server.addr.port().to_string();
    let cli = |args: &[&str]| redis_cli(&port, args).trim_end().to_string();
    assert_eq!(cli(&["PING"]), "PONG");
    assert_eq!(cli(&["SET", "greeting", "hello world"]), "OK");
    assert_eq!(cli(&["GET", "greeting"]), "hello world");
    assert_eq!(cli(&["RPUSH", "list", "a", "b"]), "2");
    assert_eq!(cli(&["LRANGE", "list", "0", "-1"]), "a\nb");
    assert_eq!(cli(&["DBSIZE"]), "2");
    // Many commands through one connection, from standard input.
    let mut piped = util::tool("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run redis-cli");
    let script: String = (0..100).map(|i| format!("INCR counter {i}\n")).collect();
    // `INCR counter i` is a wrong-arity error each time: answers in order.
    piped
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let output = piped.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        text.lines()
            .filter(|l| l.contains("wrong number of arguments for 'incr'"))
            .count(),
        100,
        "{text}"
    );
}
per_backend!(redis_cli_talks_to_it);

fn redis_benchmark_runs_against_it_pipelined(backend: BackendKind) {
    let server = start_example("resp_server", &["--backend", backend.name()]);
    let output = util::tool("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &server.addr.port().to_string()])
        .args([
            "-t", "set,get", "-n", "20000", "-c", "20", "-P", "16", "-d", "64", "-q",
        ])
        .output()
        .expect("run redis-benchmark");
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{text}");
    for test in ["SET", "GET"] {
        assert!(
            text.lines()
                .any(|l| l.contains(&format!("{test}: ")) && l.contains("requests per second")),
            "no {test} figure in: {text}"
        );
    }
    // What it set is there: 64 bytes at its fixed key.
    let mut client = connect(server.addr);
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write_all(&mut client, &command(&[b"GET", b"key:__rand_int__"]));
    assert_eq!(read_line(&mut client), "$64\r\n");
    assert_eq!(read_n(&mut client, 66)[64..], *b"\r\n");
}
per_backend!(redis_benchmark_runs_against_it_pipelined);

/// `redis-cli info`, the first thing a Redis user types: the server,
/// clients, memory, stats and keyspace sections, in Redis's layout, with
/// this server's own figures; one section when asked for one; nothing for
/// a section it does not have.
#[test]
fn info_answers_the_sections_redis_cli_reads() {
    let server = start_example("resp_server", &["--backend", "poll"]);
    let port = server.addr.port().to_string();
    // Not on a terminal, redis-cli prints the bulk string as it is.
    let cli = |args: &[&str]| redis_cli(&port, args).replace("\r\n", "\n");
    cli(&["SET", "plain", "1"]);
    cli(&["SET", "brief", "2", "EX", "100"]);
    // A second client stays connected while INFO is asked.
    let _other = connect(server.addr);
    let info = cli(&["INFO"]);
    let headings: Vec<&str> = info.lines().filter(|l| l.starts_with('#')).collect();
    assert_eq!(
        headings,
        ["# Server", "# Clients", "# Memory", "# Stats", "# Keyspace"],
        "{info}"
    );
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap_or_else(|| panic!("no {name} in {info}"))
            .to_string()
    };
    assert_eq!(field("redis_version"), "7.0.0");
    assert_eq!(field("tcp_port"), port);
    assert_eq!(field("multiplexing_api"), "poll");
    assert_eq!(field("process_id"), server.child.id().to_string());
    assert_eq!(field("connected_clients"), "2");
    assert_eq!(field("total_connections_received"), "4");
    assert_eq!(field("total_commands_processed"), "2");
    assert!(field("used_memory").parse::<u64>().unwrap() > 0);
    assert_eq!(field("db0"), "keys=2,expires=1,avg_ttl=0");
    assert_eq!(
        cli(&["INFO", "keyspace"]).trim_end(),
        "# Keyspace\ndb0:keys=2,expires=1,avg_ttl=0"
    );
    let two = cli(&["info", "CLIENTS", "stats"]);
    assert!(
        two.starts_with("# Clients\n") && two.contains("\n# Stats\n"),
        "{two}"
    );
    assert_eq!(cli(&["INFO", "replication"]).trim_end(), "");
    // The raw reply: one bulk string, sections apart by a blank line.
    let mut client = connect(server.addr);
    write_all(&mut client, &command(&[b"INFO", b"clients"]));
    let body = "# Clients\r\nconnected_clients:2\r\nblocked_clients:0\r\n";
    let reply = format!("${}\r\n{body}\r\n", body.len());
    assert_eq!(
        String::from_utf8_lossy(&read_n(&mut client, reply.len())),
        reply
    );
}
