//! The commands: each takes the request's arguments and writes its reply,
//! with Redis's words for every error.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use crate::db::{Db, Score, SortedSet, Value};
use crate::resp::{parse_int, reply, Args};

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
const SYNTAX: &str = "ERR syntax error";

/// One request: its bytes, its arguments, and where its reply goes.
pub struct Request<'a> {
    pub bytes: &'a [u8],
    pub args: &'a Args,
    pub out: &'a mut Vec<u8>,
    pub now: Instant,
}

impl Request<'_> {
    fn int_arg(&self, i: usize) -> Option<i64> {
        parse_int(self.args.get(self.bytes, i))
    }
}

/// The command name upper-cased into `buf` (names are short; longer ones
/// are unknown anyway).
fn upper<'b>(name: &[u8], buf: &'b mut [u8; 24]) -> &'b [u8] {
    let n = name.len().min(buf.len());
    for (slot, b) in buf.iter_mut().zip(&name[..n]) {
        *slot = b.to_ascii_uppercase();
    }
    &buf[..n]
}

/// Runs one request against `db`.
pub fn run(db: &mut Db, rq: &mut Request<'_>) {
    let argc = rq.args.len();
    if argc == 0 {
        return; // an empty request gets no reply, as in Redis
    }
    let mut name_buf = [0u8; 24];
    let name = upper(rq.args.get(rq.bytes, 0), &mut name_buf);
    let Some(arity) = arity(name) else {
        unknown(rq);
        return;
    };
    let arity_ok = if arity > 0 {
        argc as i64 == arity
    } else {
        argc as i64 >= -arity
    };
    if !arity_ok {
        let lower = String::from_utf8_lossy(name).to_lowercase();
        reply::error(
            rq.out,
            &format!("ERR wrong number of arguments for '{lower}' command"),
        );
        return;
    }
    match name {
        b"PING" => match argc {
            1 => reply::simple(rq.out, "PONG"),
            2 => reply::bulk(rq.out, rq.args.get(rq.bytes, 1)),
            _ => reply::error(rq.out, "ERR wrong number of arguments for 'ping' command"),
        },
        b"ECHO" => reply::bulk(rq.out, rq.args.get(rq.bytes, 1)),
        b"GET" => get(db, rq),
        b"SET" => set(db, rq),
        b"DEL" | b"EXISTS" => {
            let delete = name == b"DEL";
            let mut n = 0;
            for i in 1..argc {
                let key = rq.args.get(rq.bytes, i);
                n += i64::from(if delete {
                    db.remove(key, rq.now)
                } else {
                    db.get(key, rq.now).is_some()
                });
            }
            reply::int(rq.out, n);
        }
        b"INCR" => incr_by(db, rq, 1),
        b"DECR" => incr_by(db, rq, -1),
        b"INCRBY" => match rq.int_arg(2) {
            Some(by) => incr_by(db, rq, by),
            None => reply::error(rq.out, NOT_INTEGER),
        },
        b"MSET" => {
            if argc.is_multiple_of(2) {
                reply::error(rq.out, "ERR wrong number of arguments for 'mset' command");
                return;
            }
            for i in (1..argc).step_by(2) {
                db.set(
                    rq.args.get(rq.bytes, i),
                    Value::Str(rq.args.get(rq.bytes, i + 1).to_vec()),
                );
            }
            reply::simple(rq.out, "OK");
        }
        b"MGET" => {
            reply::array(rq.out, argc - 1);
            for i in 1..argc {
                match db.get(rq.args.get(rq.bytes, i), rq.now) {
                    Some(Value::Str(s)) => reply::bulk(rq.out, s),
                    _ => reply::nil(rq.out),
                }
            }
        }
        b"EXPIRE" => match rq.int_arg(2) {
            Some(seconds) => {
                let key = rq.args.get(rq.bytes, 1);
                let done = if seconds <= 0 {
                    db.remove(key, rq.now)
                } else {
                    let at = rq.now + Duration::from_secs(seconds as u64);
                    db.expire_at(key, at, rq.now)
                };
                reply::int(rq.out, i64::from(done));
            }
            None => reply::error(rq.out, NOT_INTEGER),
        },
        b"TTL" => {
            let ttl = match db.deadline(rq.args.get(rq.bytes, 1), rq.now) {
                Err(()) => -2,
                Ok(None) => -1,
                Ok(Some(at)) => {
                    let left = at.saturating_duration_since(rq.now);
                    // Rounded as Redis does: (ms + 500) / 1000.
                    ((left.as_millis() + 500) / 1000) as i64
                }
            };
            reply::int(rq.out, ttl);
        }
        b"DBSIZE" => reply::int(rq.out, db.len() as i64),
        b"FLUSHALL" => {
            db.clear();
            reply::simple(rq.out, "OK");
        }
        b"LPUSH" | b"RPUSH" => push(db, rq, name == b"LPUSH"),
        b"LPOP" | b"RPOP" => pop(db, rq, name == b"LPOP"),
        b"LRANGE" => lrange(db, rq),
        b"LLEN" | b"SCARD" => {
            let len = match db.get(rq.args.get(rq.bytes, 1), rq.now) {
                None => Some(0),
                Some(Value::List(l)) if name == b"LLEN" => Some(l.len()),
                Some(Value::Set(s)) if name == b"SCARD" => Some(s.len()),
                Some(_) => None,
            };
            match len {
                Some(n) => reply::int(rq.out, n as i64),
                None => reply::error(rq.out, WRONGTYPE),
            }
        }
        b"SADD" => sadd(db, rq),
        b"SPOP" => spop(db, rq),
        b"HSET" => hset(db, rq),
        b"HGET" => match db.get(rq.args.get(rq.bytes, 1), rq.now) {
            None => reply::nil(rq.out),
            Some(Value::Hash(h)) => match h.get(rq.args.get(rq.bytes, 2)) {
                Some(v) => reply::bulk(rq.out, v),
                None => reply::nil(rq.out),
            },
            Some(_) => reply::error(rq.out, WRONGTYPE),
        },
        b"ZADD" => zadd(db, rq),
        b"ZPOPMIN" => zpopmin(db, rq),
        // What clients send as they start: answered enough to satisfy them.
        b"COMMAND" => reply::array(rq.out, 0),
        b"CONFIG" => config(rq),
        b"CLIENT" => reply::simple(rq.out, "OK"),
        _ => unknown(rq),
    }
}

/// How many arguments a command takes, its name included: exactly that
/// many when positive, at least that many when negative (Redis's arity).
fn arity(name: &[u8]) -> Option<i64> {
    Some(match name {
        b"DBSIZE" => 1,
        b"ECHO" | b"GET" | b"INCR" | b"DECR" | b"TTL" | b"LLEN" | b"SCARD" => 2,
        b"INCRBY" | b"EXPIRE" | b"HGET" => 3,
        b"LRANGE" => 4,
        b"PING" | b"FLUSHALL" | b"COMMAND" | b"CONFIG" | b"CLIENT" => -1,
        b"DEL" | b"EXISTS" | b"MGET" | b"LPOP" | b"RPOP" | b"SPOP" | b"ZPOPMIN" => -2,
        b"SET" | b"LPUSH" | b"RPUSH" | b"SADD" | b"ZADD" | b"MSET" | b"HSET" => -3,
        _ => return None,
    })
}

/// `-ERR unknown command 'NAME', with args beginning with: 'a' 'b' `, as
/// Redis 7 words it. HELLO gets it too, as from Redis 5: clients then speak
/// RESP2.
fn unknown(rq: &mut Request<'_>) {
    let mut text = format!(
        "ERR unknown command '{}', with args beginning with: ",
        String::from_utf8_lossy(rq.args.get(rq.bytes, 0))
    );
    for i in 1..rq.args.len() {
        text.push_str(&format!(
            "'{}' ",
            String::from_utf8_lossy(rq.args.get(rq.bytes, i))
        ));
    }
    reply::error(rq.out, &text);
}

fn get(db: &mut Db, rq: &mut Request<'_>) {
    match db.get(rq.args.get(rq.bytes, 1), rq.now) {
        None => reply::nil(rq.out),
        Some(Value::Str(s)) => reply::bulk(rq.out, s),
        Some(_) => reply::error(rq.out, WRONGTYPE),
    }
}

/// `SET key value [EX seconds | PX milliseconds] [NX | XX]`.
fn set(db: &mut Db, rq: &mut Request<'_>) {
    let mut ttl = None;
    let (mut nx, mut xx) = (false, false);
    let mut i = 3;
    while i < rq.args.len() {
        let mut buf = [0u8; 24];
        let option = upper(rq.args.get(rq.bytes, i), &mut buf);
        match option {
            b"NX" if !xx => nx = true,
            b"XX" if !nx => xx = true,
            b"EX" | b"PX" if ttl.is_none() && i + 1 < rq.args.len() => {
                let Some(n) = rq.int_arg(i + 1) else {
                    return reply::error(rq.out, NOT_INTEGER);
                };
                if n <= 0 {
                    return reply::error(rq.out, "ERR invalid expire time in 'set' command");
                }
                ttl = Some(if option == b"EX" {
                    Duration::from_secs(n as u64)
                } else {
                    Duration::from_millis(n as u64)
                });
                i += 1;
            }
            _ => return reply::error(rq.out, SYNTAX),
        }
        i += 1;
    }
    let key = rq.args.get(rq.bytes, 1);
    let exists = db.get(key, rq.now).is_some();
    if (nx && exists) || (xx && !exists) {
        return reply::nil(rq.out);
    }
    db.set(key, Value::Str(rq.args.get(rq.bytes, 2).to_vec()));
    if let Some(ttl) = ttl {
        db.expire_at(key, rq.now + ttl, rq.now);
    }
    reply::simple(rq.out, "OK");
}

fn incr_by(db: &mut Db, rq: &mut Request<'_>, by: i64) {
    let value = db.get_or_insert(rq.args.get(rq.bytes, 1), rq.now, || {
        Value::Str(b"0".to_vec())
    });
    let Value::Str(s) = value else {
        return reply::error(rq.out, WRONGTYPE);
    };
    let Some(n) = parse_int(s).and_then(|n| n.checked_add(by)) else {
        return reply::error(rq.out, NOT_INTEGER);
    };
    *s = n.to_string().into_bytes();
    reply::int(rq.out, n);
}

fn push(db: &mut Db, rq: &mut Request<'_>, front: bool) {
    let key = rq.args.get(rq.bytes, 1);
    let value = db.get_or_insert(key, rq.now, || Value::List(VecDeque::new()));
    let Value::List(list) = value else {
        return reply::error(rq.out, WRONGTYPE);
    };
    for i in 2..rq.args.len() {
        let item = rq.args.get(rq.bytes, i).to_vec();
        if front {
            list.push_front(item);
        } else {
            list.push_back(item);
        }
    }
    reply::int(rq.out, list.len() as i64);
}

/// `LPOP key [count]`, `RPOP key [count]`.
fn pop(db: &mut Db, rq: &mut Request<'_>, front: bool) {
    let count = match rq.args.len() {
        2 => None,
        3 => match rq.int_arg(2) {
            Some(n) if n >= 0 => Some(n as usize),
            _ => return reply::error(rq.out, "ERR value is out of range, must be positive"),
        },
        _ => return reply::error(rq.out, SYNTAX),
    };
    let key = rq.args.get(rq.bytes, 1);
    let list = match db.get(key, rq.now) {
        None => {
            return if count.is_some() {
                reply::nil_array(rq.out)
            } else {
                reply::nil(rq.out)
            }
        }
        Some(Value::List(list)) => list,
        Some(_) => return reply::error(rq.out, WRONGTYPE),
    };
    let take = |list: &mut VecDeque<Vec<u8>>| {
        if front {
            list.pop_front()
        } else {
            list.pop_back()
        }
    };
    match count {
        None => match take(list) {
            Some(item) => reply::bulk(rq.out, &item),
            None => reply::nil(rq.out),
        },
        Some(n) => {
            let n = n.min(list.len());
            reply::array(rq.out, n);
            for _ in 0..n {
                if let Some(item) = take(list) {
                    reply::bulk(rq.out, &item);
                }
            }
        }
    }
    db.drop_if_empty(key);
}

fn lrange(db: &mut Db, rq: &mut Request<'_>) {
    let (Some(start), Some(stop)) = (rq.int_arg(2), rq.int_arg(3)) else {
        return reply::error(rq.out, NOT_INTEGER);
    };
    let list = match db.get(rq.args.get(rq.bytes, 1), rq.now) {
        None => return reply::array(rq.out, 0),
        Some(Value::List(list)) => list,
        Some(_) => return reply::error(rq.out, WRONGTYPE),
    };
    let len = list.len() as i64;
    let start = if start < 0 {
        (len + start).max(0)
    } else {
        start
    };
    let stop = if stop < 0 {
        len + stop
    } else {
        stop.min(len - 1)
    };
    if start > stop || start >= len {
        return reply::array(rq.out, 0);
    }
    reply::array(rq.out, (stop - start + 1) as usize);
    for item in list.range(start as usize..=stop as usize) {
        reply::bulk(rq.out, item);
    }
}

fn sadd(db: &mut Db, rq: &mut Request<'_>) {
    let key = rq.args.get(rq.bytes, 1);
    let Value::Set(set) = db.get_or_insert(key, rq.now, || Value::Set(HashSet::new())) else {
        return reply::error(rq.out, WRONGTYPE);
    };
    let mut added = 0;
    for i in 2..rq.args.len() {
        added += i64::from(set.insert(rq.args.get(rq.bytes, i).to_vec()));
    }
    reply::int(rq.out, added);
}

fn spop(db: &mut Db, rq: &mut Request<'_>) {
    let key = rq.args.get(rq.bytes, 1);
    let set = match db.get(key, rq.now) {
        None => return reply::nil(rq.out),
        Some(Value::Set(set)) => set,
        Some(_) => return reply::error(rq.out, WRONGTYPE),
    };
    // A HashSet's first element is as good as a random one for SPOP.
    let member = set.iter().next().cloned();
    match member {
        Some(member) => {
            set.remove(&member);
            reply::bulk(rq.out, &member);
        }
        None => reply::nil(rq.out),
    }
    db.drop_if_empty(key);
}

fn hset(db: &mut Db, rq: &mut Request<'_>) {
    if !rq.args.len().is_multiple_of(2) {
        return reply::error(rq.out, "ERR wrong number of arguments for 'hset' command");
    }
    let key = rq.args.get(rq.bytes, 1);
    let Value::Hash(hash) = db.get_or_insert(key, rq.now, || Value::Hash(HashMap::new())) else {
        return reply::error(rq.out, WRONGTYPE);
    };
    let mut added = 0;
    for i in (2..rq.args.len()).step_by(2) {
        let field = rq.args.get(rq.bytes, i).to_vec();
        let value = rq.args.get(rq.bytes, i + 1).to_vec();
        added += i64::from(hash.insert(field, value).is_none());
    }
    reply::int(rq.out, added);
}

/// A score as Redis writes it: integers without a fraction.
fn format_score(score: f64) -> String {
    if score.fract() == 0.0 && score.abs() < 1e17 {
        format!("{}", score as i64)
    } else {
        format!("{score}")
    }
}

/// `ZADD key score member [score member ...]`.
fn zadd(db: &mut Db, rq: &mut Request<'_>) {
    let argc = rq.args.len();
    if !argc.is_multiple_of(2) {
        return reply::error(rq.out, SYNTAX);
    }
    let mut pairs = Vec::with_capacity((argc - 2) / 2);
    for i in (2..argc).step_by(2) {
        let score = std::str::from_utf8(rq.args.get(rq.bytes, i))
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|s| !s.is_nan());
        let Some(score) = score else {
            return reply::error(rq.out, "ERR value is not a valid float");
        };
        pairs.push((Score(score), rq.args.get(rq.bytes, i + 1).to_vec()));
    }
    let key = rq.args.get(rq.bytes, 1);
    let Value::Zset(zset) = db.get_or_insert(key, rq.now, || Value::Zset(SortedSet::default()))
    else {
        return reply::error(rq.out, WRONGTYPE);
    };
    let mut added = 0;
    for (score, member) in pairs {
        match zset.scores.insert(member.clone(), score) {
            Some(old) => {
                zset.by_score.remove(&(old, member.clone()));
            }
            None => added += 1,
        }
        zset.by_score.insert((score, member));
    }
    reply::int(rq.out, added);
}

/// `ZPOPMIN key [count]`: member, score pairs, lowest first.
fn zpopmin(db: &mut Db, rq: &mut Request<'_>) {
    let count = match rq.args.len() {
        2 => 1,
        3 => match rq.int_arg(2) {
            Some(n) if n >= 0 => n as usize,
            _ => return reply::error(rq.out, "ERR value is out of range, must be positive"),
        },
        _ => return reply::error(rq.out, SYNTAX),
    };
    let key = rq.args.get(rq.bytes, 1);
    let zset = match db.get(key, rq.now) {
        None => return reply::array(rq.out, 0),
        Some(Value::Zset(zset)) => zset,
        Some(_) => return reply::error(rq.out, WRONGTYPE),
    };
    let n = count.min(zset.scores.len());
    reply::array(rq.out, 2 * n);
    for _ in 0..n {
        if let Some((score, member)) = zset.by_score.pop_first() {
            zset.scores.remove(&member);
            reply::bulk(rq.out, &member);
            reply::bulk(rq.out, format_score(score.0).as_bytes());
        }
    }
    db.drop_if_empty(key);
}

/// `CONFIG GET name`: what redis-benchmark asks at start (`save`,
/// `appendonly`); the answer is Redis's for a server that persists nothing.
fn config(rq: &mut Request<'_>) {
    let mut buf = [0u8; 24];
    let sub = if rq.args.len() > 1 {
        upper(rq.args.get(rq.bytes, 1), &mut buf).to_vec()
    } else {
        Vec::new()
    };
    if sub != b"GET" || rq.args.len() != 3 {
        return reply::error(
            rq.out,
            "ERR unknown subcommand or wrong number of arguments for 'config' command",
        );
    }
    let name = rq.args.get(rq.bytes, 2).to_vec();
    let value: Option<&[u8]> = match name.to_ascii_lowercase().as_slice() {
        b"save" => Some(b""),
        b"appendonly" => Some(b"no"),
        _ => None,
    };
    match value {
        Some(value) => {
            reply::array(rq.out, 2);
            reply::bulk(rq.out, &name);
            reply::bulk(rq.out, value);
        }
        None => reply::array(rq.out, 0),
    }
}
