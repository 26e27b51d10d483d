//! The connection and the server: PING, ECHO, HELLO, CLIENT (ID, GETNAME,
//! SETNAME), COMMAND (COUNT, INFO, DOCS, LIST) and CONFIG GET, which
//! clients send as they start.
//!
//! This server speaks RESP2 only: `HELLO 2` (or `HELLO` alone) answers the
//! server's description, `HELLO 3` is refused with `-NOPROTO`, as Redis
//! answers a protocol it does not speak, and the client carries on in
//! RESP2.

use super::{lookup, Command, Request, COMMANDS};
use crate::db::Db;
use crate::resp::reply;

pub fn ping(_db: &mut Db, rq: &mut Request<'_>) {
    match rq.argc() {
        1 => reply::simple(rq.out, "PONG"),
        2 => reply::bulk(rq.out, rq.args.get(rq.bytes, 1)),
        _ => rq.arity_error("ping"),
    }
}

pub fn echo(_db: &mut Db, rq: &mut Request<'_>) {
    reply::bulk(rq.out, rq.args.get(rq.bytes, 1));
}

/// The Redis version whose behaviour this server follows, as HELLO says.
pub const FOLLOWS_VERSION: &str = "7.0.0";

/// `HELLO [protover [AUTH username password] [SETNAME name]]`.
pub fn hello(_db: &mut Db, rq: &mut Request<'_>) {
    if rq.argc() >= 2 {
        match rq.int_arg(1) {
            None => {
                return reply::error(
                    rq.out,
                    "ERR Protocol version is not an integer or out of range",
                )
            }
            Some(2) => {}
            Some(_) => return reply::error(rq.out, "NOPROTO unsupported protocol version"),
        }
    }
    let mut name = None;
    let mut i = 2;
    while i < rq.argc() {
        let left = rq.argc() - 1 - i;
        match rq.option(i).to_ascii_uppercase().as_slice() {
            // No user has a password here: the default user takes any.
            b"AUTH" if left >= 2 => {
                if rq.arg(i + 1) != b"default" {
                    return reply::error(
                        rq.out,
                        "WRONGPASS invalid username-password pair or user is disabled.",
                    );
                }
                i += 3;
            }
            b"SETNAME" if left >= 1 => {
                if !valid_client_name(rq.arg(i + 1)) {
                    return reply::error(rq.out, BAD_NAME);
                }
                name = Some(rq.arg(i + 1).to_vec());
                i += 2;
            }
            _ => {
                let text = [b"ERR Syntax error in HELLO option '", rq.option(i), b"'"].concat();
                return reply::error_bytes(rq.out, &text);
            }
        }
    }
    if let Some(name) = name {
        rq.client().name = (!name.is_empty()).then_some(name);
    }
    reply::array(rq.out, 14);
    for (field, value) in [("server", "selectloop"), ("version", FOLLOWS_VERSION)] {
        reply::bulk(rq.out, field.as_bytes());
        reply::bulk(rq.out, value.as_bytes());
    }
    reply::bulk(rq.out, b"proto");
    reply::int(rq.out, 2);
    reply::bulk(rq.out, b"id");
    let id = rq.client().id;
    reply::int(rq.out, id as i64);
    for (field, value) in [("mode", "standalone"), ("role", "master")] {
        reply::bulk(rq.out, field.as_bytes());
        reply::bulk(rq.out, value.as_bytes());
    }
    reply::bulk(rq.out, b"modules");
    reply::array(rq.out, 0);
}

const BAD_NAME: &str = "ERR Client names cannot contain spaces, newlines or special characters.";

/// Redis's `validateClientName`: empty (no name), or `!` to `~` only.
fn valid_client_name(name: &[u8]) -> bool {
    name.iter().all(|&b| (b'!'..=b'~').contains(&b))
}

/// A subcommand of a container command (CLIENT, COMMAND, CONFIG), with
/// its own arity as Redis 7.0 keeps it (`client|setname`).
struct Subcommand {
    name: &'static str,
    arity: i64,
}

/// Finds `sub` (argument 1) among `subs` and checks its arity; `None`
/// after replying with Redis 7.0's error.
fn subcommand(rq: &mut Request<'_>, container: &str, subs: &[Subcommand]) -> Option<&'static str> {
    let given = rq.arg(1);
    let Some(sub) = subs
        .iter()
        .find(|s| s.name.as_bytes().eq_ignore_ascii_case(given))
    else {
        let given = rq.option(1);
        let given = &given[..given.len().min(128)];
        let text = [
            b"ERR unknown subcommand '".as_slice(),
            given,
            format!("'. Try {} HELP.", container.to_ascii_uppercase()).as_bytes(),
        ]
        .concat();
        reply::error_bytes(rq.out, &text);
        return None;
    };
    let argc = rq.argc() as i64;
    let arity_ok = if sub.arity > 0 {
        argc == sub.arity
    } else {
        argc >= -sub.arity
    };
    if !arity_ok {
        rq.arity_error(&format!("{container}|{}", sub.name));
        return None;
    }
    Some(sub.name)
}

pub fn client(_db: &mut Db, rq: &mut Request<'_>) {
    const SUBS: &[Subcommand] = &[
        Subcommand {
            name: "id",
            arity: 2,
        },
        Subcommand {
            name: "getname",
            arity: 2,
        },
        Subcommand {
            name: "setname",
            arity: 3,
        },
    ];
    match subcommand(rq, "client", SUBS) {
        Some("id") => {
            let id = rq.client().id;
            reply::int(rq.out, id as i64);
        }
        Some("getname") => {
            let name = rq.client().name.clone();
            match name {
                Some(name) => reply::bulk(rq.out, &name),
                None => reply::nil(rq.out),
            }
        }
        Some("setname") => {
            let name = rq.arg(2);
            if !valid_client_name(name) {
                return reply::error(rq.out, BAD_NAME);
            }
            let name = (!name.is_empty()).then(|| name.to_vec());
            rq.client().name = name;
            reply::simple(rq.out, "OK");
        }
        _ => {}
    }
}

pub fn config(_db: &mut Db, rq: &mut Request<'_>) {
    const SUBS: &[Subcommand] = &[Subcommand {
        name: "get",
        arity: -3,
    }];
    if subcommand(rq, "config", SUBS).is_none() {
        return;
    }
    // What redis-benchmark asks at start, answered as by a Redis that
    // persists nothing; other parameters are not known here.
    let mut found = Vec::new();
    for i in 2..rq.argc() {
        for (name, value) in [("save", ""), ("appendonly", "no")] {
            if rq.arg(i).eq_ignore_ascii_case(name.as_bytes()) && !found.contains(&(name, value)) {
                found.push((name, value));
            }
        }
    }
    reply::array(rq.out, 2 * found.len());
    for (name, value) in found {
        reply::bulk(rq.out, name.as_bytes());
        reply::bulk(rq.out, value.as_bytes());
    }
}

/// `COMMAND`: every command of the table, as Redis 7.0 describes each in
/// RESP2; `COMMAND COUNT`, `COMMAND INFO name...`, `COMMAND LIST`, and
/// `COMMAND DOCS` (no documentation here: an empty answer).
pub fn command(_db: &mut Db, rq: &mut Request<'_>) {
    if rq.argc() == 1 {
        reply::array(rq.out, COMMANDS.len());
        for command in COMMANDS {
            describe(rq.out, command);
        }
        return;
    }
    const SUBS: &[Subcommand] = &[
        Subcommand {
            name: "count",
            arity: 2,
        },
        Subcommand {
            name: "info",
            arity: -2,
        },
        Subcommand {
            name: "list",
            arity: 2,
        },
        Subcommand {
            name: "docs",
            arity: -2,
        },
    ];
    match subcommand(rq, "command", SUBS) {
        Some("count") => reply::int(rq.out, COMMANDS.len() as i64),
        Some("list") => {
            reply::array(rq.out, COMMANDS.len());
            for command in COMMANDS {
                reply::bulk(rq.out, command.name.as_bytes());
            }
        }
        Some("info") => {
            reply::array(rq.out, rq.argc() - 2);
            for i in 2..rq.argc() {
                match lookup(rq.arg(i)) {
                    Some(command) => describe(rq.out, command),
                    None => reply::nil(rq.out),
                }
            }
        }
        Some("docs") => reply::array(rq.out, 0),
        _ => {}
    }
}

/// One command as `COMMAND INFO` gives it in RESP2: name, arity, flags,
/// first key, last key, step, ACL categories, tips, key specs, subcommands.
fn describe(out: &mut Vec<u8>, command: &Command) {
    reply::array(out, 10);
    reply::bulk(out, command.name.as_bytes());
    reply::int(out, command.arity);
    reply::array(out, command.flags.len());
    for flag in command.flags {
        reply::simple(out, flag);
    }
    let (first, last, step) = command.keys;
    reply::int(out, first);
    reply::int(out, last);
    reply::int(out, step);
    for _ in 0..4 {
        reply::array(out, 0);
    }
}
