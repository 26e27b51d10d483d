//! Strings and counters: GET, SET, INCR, DECR, INCRBY, DECRBY, MSET, MGET
//! (Redis's `t_string.c`).

use super::{Request, NOT_INTEGER, SYNTAX, WRONGTYPE};
use crate::db::{Db, Value};
use crate::resp::{parse_int, reply};

pub fn get(db: &mut Db, rq: &mut Request<'_>) {
    reply_value(db, rq);
}

/// GET's reply for argument 1; `false` after a WRONGTYPE error.
fn reply_value(db: &mut Db, rq: &mut Request<'_>) -> bool {
    match db.get(rq.args.get(rq.bytes, 1), rq.now_ms) {
        None => reply::nil(rq.out),
        Some(Value::Str(s)) => reply::bulk(rq.out, s),
        Some(_) => {
            reply::error(rq.out, WRONGTYPE);
            return false;
        }
    }
    true
}

/// How SET's time to live is given.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expiry {
    None,
    KeepTtl,
    /// `EX`, `PX`, `EXAT`, `PXAT`: the argument index of the number.
    In {
        seconds: bool,
        absolute: bool,
        arg: usize,
    },
}

/// `SET key value [NX | XX] [GET] [EX s | PX ms | EXAT unix-s | PXAT
/// unix-ms | KEEPTTL]`, parsed as Redis 7.0's
/// `parseExtendedStringArgumentsOrReply` does: an option repeated is
/// allowed, two that conflict are a syntax error, EX/PX/EXAT/PXAT need a
/// number after them.
pub fn set(db: &mut Db, rq: &mut Request<'_>) {
    let (mut nx, mut xx, mut get) = (false, false, false);
    let mut expiry = Expiry::None;
    let mut i = 3;
    while i < rq.argc() {
        let option = rq.option(i).to_ascii_uppercase();
        let has_next = i + 1 < rq.argc();
        let timed = |expiry: Expiry, seconds: bool, absolute: bool| match expiry {
            Expiry::None => true,
            Expiry::KeepTtl => false,
            Expiry::In {
                seconds: s,
                absolute: a,
                ..
            } => s == seconds && a == absolute,
        };
        match option.as_slice() {
            b"NX" if !xx => nx = true,
            b"XX" if !nx => xx = true,
            b"GET" => get = true,
            b"KEEPTTL" if matches!(expiry, Expiry::None | Expiry::KeepTtl) => {
                expiry = Expiry::KeepTtl
            }
            b"EX" | b"PX" | b"EXAT" | b"PXAT" => {
                let seconds = option.starts_with(b"E");
                let absolute = option.ends_with(b"AT");
                if !has_next || !timed(expiry, seconds, absolute) {
                    return reply::error(rq.out, SYNTAX);
                }
                expiry = Expiry::In {
                    seconds,
                    absolute,
                    arg: i + 1,
                };
                i += 1;
            }
            _ => return reply::error(rq.out, SYNTAX),
        }
        i += 1;
    }
    let deadline = match expiry {
        Expiry::In {
            seconds,
            absolute,
            arg,
        } => match expire_ms(rq, arg, seconds, absolute) {
            Some(at) => Some(at),
            None => return,
        },
        _ => None,
    };
    if get && !reply_value(db, rq) {
        return;
    }
    let key = rq.args.get(rq.bytes, 1);
    let exists = db.get(key, rq.now_ms).is_some();
    if (nx && exists) || (xx && !exists) {
        if !get {
            reply::nil(rq.out);
        }
        return;
    }
    let value = Value::Str(rq.args.get(rq.bytes, 2).to_vec());
    if expiry == Expiry::KeepTtl {
        db.replace_keeping_ttl(key, value);
    } else {
        db.set(key, value);
    }
    if let Some(at) = deadline {
        db.expire_at(key, at, rq.now_ms);
    }
    if !get {
        reply::simple(rq.out, "OK");
    }
}

/// SET's deadline in Unix milliseconds, as Redis 7.0's
/// `getExpireMillisecondsOrReply` computes it: a positive integer, scaled
/// without overflow, added to the time now without passing `i64`; `None`
/// after replying with the error.
fn expire_ms(rq: &mut Request<'_>, arg: usize, seconds: bool, absolute: bool) -> Option<i64> {
    let Some(given) = rq.int_arg(arg) else {
        reply::error(rq.out, NOT_INTEGER);
        return None;
    };
    let scaled = if seconds {
        given.checked_mul(1000)
    } else {
        Some(given)
    };
    // A positive number stays positive scaled (or overflows: `None`).
    let at = scaled.filter(|_| given > 0).and_then(|ms| {
        if absolute {
            Some(ms)
        } else {
            ms.checked_add(rq.now_ms)
        }
    });
    if at.is_none() {
        reply::error(rq.out, "ERR invalid expire time in 'set' command");
    }
    at
}

pub fn incr(db: &mut Db, rq: &mut Request<'_>) {
    add(db, rq, 1);
}

pub fn decr(db: &mut Db, rq: &mut Request<'_>) {
    add(db, rq, -1);
}

pub fn incrby(db: &mut Db, rq: &mut Request<'_>) {
    match rq.int_arg(2) {
        Some(by) => add(db, rq, by),
        None => reply::error(rq.out, NOT_INTEGER),
    }
}

pub fn decrby(db: &mut Db, rq: &mut Request<'_>) {
    match rq.int_arg(2) {
        // Negating i64::MIN would overflow before the sum is tried.
        Some(i64::MIN) => reply::error(rq.out, "ERR decrement would overflow"),
        Some(by) => add(db, rq, -by),
        None => reply::error(rq.out, NOT_INTEGER),
    }
}

/// Redis's `incrDecrCommand`: the value (0 if there is none) must be an
/// integer, and the sum must fit; the key keeps its time to live.
fn add(db: &mut Db, rq: &mut Request<'_>, by: i64) {
    let key = rq.args.get(rq.bytes, 1);
    let current = match db.get(key, rq.now_ms) {
        None => Some(0),
        Some(Value::Str(s)) => parse_int(s),
        Some(_) => return reply::error(rq.out, WRONGTYPE),
    };
    let Some(current) = current else {
        return reply::error(rq.out, NOT_INTEGER);
    };
    let Some(sum) = current.checked_add(by) else {
        return reply::error(rq.out, "ERR increment or decrement would overflow");
    };
    db.replace_keeping_ttl(key, Value::Str(sum.to_string().into_bytes()));
    reply::int(rq.out, sum);
}

pub fn mset(db: &mut Db, rq: &mut Request<'_>) {
    if rq.argc().is_multiple_of(2) {
        return rq.arity_error("mset");
    }
    for i in (1..rq.argc()).step_by(2) {
        let value = Value::Str(rq.args.get(rq.bytes, i + 1).to_vec());
        db.set(rq.args.get(rq.bytes, i), value);
    }
    reply::simple(rq.out, "OK");
}

pub fn mget(db: &mut Db, rq: &mut Request<'_>) {
    reply::array(rq.out, rq.argc() - 1);
    for i in 1..rq.argc() {
        match db.get(rq.args.get(rq.bytes, i), rq.now_ms) {
            Some(Value::Str(s)) => reply::bulk(rq.out, s),
            _ => reply::nil(rq.out),
        }
    }
}
