//! The commands: one table of what resp_server serves (name, arity, flags,
//! keys), and one file per family, as Redis splits its own (`t_string.c`,
//! `expire.c`, `t_list.c`...). Each command reads its arguments and writes
//! its reply, with Redis 7.0's words for every error; tests/it/resp_vs_redis.rs
//! sends the same commands to redis-server and compares the bytes.

mod collections;
mod info;
mod keys;
mod server;
mod strings;
mod zset;

use std::collections::HashMap;

use selectloop::ConnId;

use crate::db::Db;
use crate::resp::{parse_int, reply, Request as Args};

pub use info::ServerInfo;

pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
pub const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
pub const SYNTAX: &str = "ERR syntax error";
pub const MUST_BE_POSITIVE: &str = "ERR value is out of range, must be positive";

/// What the server knows of one client connection.
#[derive(Debug, Default)]
pub struct Client {
    /// `CLIENT ID`: unique for the server's life, from 1.
    pub id: u64,
    /// `CLIENT SETNAME`, `HELLO ... SETNAME`.
    pub name: Option<Vec<u8>>,
}

/// One request: its bytes, its arguments, and where its reply goes.
pub struct Request<'a> {
    pub bytes: &'a [u8],
    pub args: &'a Args,
    pub out: &'a mut Vec<u8>,
    /// Unix time in milliseconds, as Redis's `mstime()`.
    pub now_ms: i64,
    /// Every client, and which this request came from: looked up only by
    /// the commands about the client (CLIENT, HELLO), not on every request.
    pub clients: &'a mut HashMap<ConnId, Client>,
    pub conn: ConnId,
    /// The server-wide figures, for INFO.
    pub server: &'a ServerInfo,
}

impl Request<'_> {
    /// The client this request came from.
    pub fn client(&mut self) -> &mut Client {
        self.clients.entry(self.conn).or_default()
    }

    pub fn argc(&self) -> usize {
        self.args.len()
    }

    pub fn arg(&self, i: usize) -> &[u8] {
        self.args.get(self.bytes, i)
    }

    /// Argument `i` as `string2ll` reads it.
    pub fn int_arg(&self, i: usize) -> Option<i64> {
        parse_int(self.arg(i))
    }

    /// Argument `i` as a C string: what comes before its first NUL. Redis
    /// compares options with `strcasecmp`, which stops there.
    pub fn option(&self, i: usize) -> &[u8] {
        let arg = self.arg(i);
        let end = arg.iter().position(|&b| b == 0).unwrap_or(arg.len());
        &arg[..end]
    }

    /// `ERR wrong number of arguments for 'NAME' command`.
    pub fn arity_error(&mut self, name: &str) {
        reply::error(
            self.out,
            &format!("ERR wrong number of arguments for '{name}' command"),
        );
    }
}

/// A count argument as Redis's `getPositiveLongFromObjectOrReply` reads
/// it: `Some(n)`, or `None` after replying "must be positive" (for a
/// negative number and for no number alike).
pub fn positive_count(rq: &mut Request<'_>, i: usize) -> Option<usize> {
    match rq.int_arg(i) {
        Some(n) if n >= 0 => Some(n as usize),
        _ => {
            reply::error(rq.out, MUST_BE_POSITIVE);
            None
        }
    }
}

/// One command of the table.
pub struct Command {
    /// Lower case, as Redis's error messages and `COMMAND` write it.
    pub name: &'static str,
    /// Arguments, the name included: exactly that many when positive, at
    /// least that many when negative.
    pub arity: i64,
    /// `COMMAND`'s flags.
    pub flags: &'static [&'static str],
    /// `COMMAND`'s first key, last key and step.
    pub keys: (i64, i64, i64),
    pub run: fn(&mut Db, &mut Request<'_>),
}

const READ: &[&str] = &["readonly", "fast"];
const WRITE: &[&str] = &["write", "denyoom", "fast"];
const DELETE: &[&str] = &["write", "fast"];
const SERVER: &[&str] = &["loading", "stale", "fast"];

/// Every command resp_server serves; the most used first.
pub static COMMANDS: &[Command] = &[
    Command {
        name: "get",
        arity: 2,
        flags: READ,
        keys: (1, 1, 1),
        run: strings::get,
    },
    Command {
        name: "set",
        arity: -3,
        flags: WRITE,
        keys: (1, 1, 1),
        run: strings::set,
    },
    Command {
        name: "incr",
        arity: 2,
        flags: WRITE,
        keys: (1, 1, 1),
        run: strings::incr,
    },
    Command {
        name: "decr",
        arity: 2,
        flags: WRITE,
        keys: (1, 1, 1),
        run: strings::decr,
    },
    Command {
        name: "incrby",
        arity: 3,
        flags: WRITE,
        keys: (1, 1, 1),
        run: strings::incrby,
    },
    Command {
        name: "decrby",
        arity: 3,
        flags: WRITE,
        keys: (1, 1, 1),
        run: strings::decrby,
    },
    Command {
        name: "mset",
        arity: -3,
        flags: WRITE,
        keys: (1, -1, 2),
        run: strings::mset,
    },
    Command {
        name: "mget",
        arity: -2,
        flags: READ,
        keys: (1, -1, 1),
        run: strings::mget,
    },
    Command {
        name: "lpush",
        arity: -3,
        flags: WRITE,
        keys: (1, 1, 1),
        run: collections::lpush,
    },
    Command {
        name: "rpush",
        arity: -3,
        flags: WRITE,
        keys: (1, 1, 1),
        run: collections::rpush,
    },
    Command {
        name: "lpop",
        arity: -2,
        flags: DELETE,
        keys: (1, 1, 1),
        run: collections::lpop,
    },
    Command {
        name: "rpop",
        arity: -2,
        flags: DELETE,
        keys: (1, 1, 1),
        run: collections::rpop,
    },
    Command {
        name: "lrange",
        arity: 4,
        flags: &["readonly"],
        keys: (1, 1, 1),
        run: collections::lrange,
    },
    Command {
        name: "llen",
        arity: 2,
        flags: READ,
        keys: (1, 1, 1),
        run: collections::llen,
    },
    Command {
        name: "sadd",
        arity: -3,
        flags: WRITE,
        keys: (1, 1, 1),
        run: collections::sadd,
    },
    Command {
        name: "spop",
        arity: -2,
        flags: DELETE,
        keys: (1, 1, 1),
        run: collections::spop,
    },
    Command {
        name: "scard",
        arity: 2,
        flags: READ,
        keys: (1, 1, 1),
        run: collections::scard,
    },
    Command {
        name: "hset",
        arity: -4,
        flags: WRITE,
        keys: (1, 1, 1),
        run: collections::hset,
    },
    Command {
        name: "hget",
        arity: 3,
        flags: READ,
        keys: (1, 1, 1),
        run: collections::hget,
    },
    Command {
        name: "zadd",
        arity: -4,
        flags: WRITE,
        keys: (1, 1, 1),
        run: zset::zadd,
    },
    Command {
        name: "zpopmin",
        arity: -2,
        flags: DELETE,
        keys: (1, 1, 1),
        run: zset::zpopmin,
    },
    Command {
        name: "del",
        arity: -2,
        flags: &["write"],
        keys: (1, -1, 1),
        run: keys::del,
    },
    Command {
        name: "exists",
        arity: -2,
        flags: READ,
        keys: (1, -1, 1),
        run: keys::exists,
    },
    Command {
        name: "expire",
        arity: -3,
        flags: DELETE,
        keys: (1, 1, 1),
        run: keys::expire,
    },
    Command {
        name: "pexpire",
        arity: -3,
        flags: DELETE,
        keys: (1, 1, 1),
        run: keys::pexpire,
    },
    Command {
        name: "expireat",
        arity: -3,
        flags: DELETE,
        keys: (1, 1, 1),
        run: keys::expireat,
    },
    Command {
        name: "pexpireat",
        arity: -3,
        flags: DELETE,
        keys: (1, 1, 1),
        run: keys::pexpireat,
    },
    Command {
        name: "ttl",
        arity: 2,
        flags: READ,
        keys: (1, 1, 1),
        run: keys::ttl,
    },
    Command {
        name: "pttl",
        arity: 2,
        flags: READ,
        keys: (1, 1, 1),
        run: keys::pttl,
    },
    Command {
        name: "persist",
        arity: 2,
        flags: DELETE,
        keys: (1, 1, 1),
        run: keys::persist,
    },
    Command {
        name: "dbsize",
        arity: 1,
        flags: READ,
        keys: (0, 0, 0),
        run: keys::dbsize,
    },
    Command {
        name: "flushall",
        arity: -1,
        flags: &["write"],
        keys: (0, 0, 0),
        run: keys::flushall,
    },
    Command {
        name: "ping",
        arity: -1,
        flags: &["fast"],
        keys: (0, 0, 0),
        run: server::ping,
    },
    Command {
        name: "echo",
        arity: 2,
        flags: &["fast"],
        keys: (0, 0, 0),
        run: server::echo,
    },
    Command {
        name: "hello",
        arity: -1,
        flags: SERVER,
        keys: (0, 0, 0),
        run: server::hello,
    },
    Command {
        name: "client",
        arity: -2,
        flags: SERVER,
        keys: (0, 0, 0),
        run: server::client,
    },
    Command {
        name: "command",
        arity: -1,
        flags: SERVER,
        keys: (0, 0, 0),
        run: server::command,
    },
    Command {
        name: "info",
        arity: -1,
        flags: &["loading", "stale"],
        keys: (0, 0, 0),
        run: info::info,
    },
    Command {
        name: "config",
        arity: -2,
        flags: SERVER,
        keys: (0, 0, 0),
        run: server::config,
    },
];

/// The command called `name`, in any case.
pub fn lookup(name: &[u8]) -> Option<&'static Command> {
    COMMANDS
        .iter()
        .find(|command| command.name.as_bytes().eq_ignore_ascii_case(name))
}

/// Runs one request against `db`.
pub fn run(db: &mut Db, rq: &mut Request<'_>) {
    let argc = rq.argc();
    if argc == 0 {
        return; // an empty request gets no reply, as in Redis
    }
    let Some(command) = lookup(rq.arg(0)) else {
        return unknown(rq);
    };
    let arity_ok = if command.arity > 0 {
        argc as i64 == command.arity
    } else {
        argc as i64 >= -command.arity
    };
    if !arity_ok {
        return rq.arity_error(command.name);
    }
    (command.run)(db, rq);
}

/// `-ERR unknown command 'NAME', with args beginning with: 'a' 'b' `, as
/// Redis 7.0 writes it: the name cut at 128 bytes, then the arguments
/// quoted while the quotes so far are under 128 bytes, each cut to what is
/// left of those 128 (and, being C strings, at a NUL).
fn unknown(rq: &mut Request<'_>) {
    const QUOTE_MAX: usize = 128;
    let mut text = b"ERR unknown command '".to_vec();
    let name = rq.option(0);
    text.extend_from_slice(&name[..name.len().min(QUOTE_MAX)]);
    text.extend_from_slice(b"', with args beginning with: ");
    let mut quoted = Vec::new();
    for i in 1..rq.argc() {
        if quoted.len() >= QUOTE_MAX {
            break;
        }
        let arg = rq.option(i);
        let room = QUOTE_MAX - quoted.len();
        quoted.push(b'\'');
        quoted.extend_from_slice(&arg[..arg.len().min(room)]);
        quoted.extend_from_slice(b"' ");
    }
    text.extend_from_slice(&quoted);
    reply::error_bytes(rq.out, &text);
}
