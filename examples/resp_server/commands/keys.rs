//! The keyspace: DEL, EXISTS, DBSIZE, FLUSHALL, and expiry: EXPIRE,
//! PEXPIRE, EXPIREAT, PEXPIREAT (with NX, XX, GT, LT), TTL, PTTL, PERSIST
//! (Redis's `db.c` and `expire.c`).

use super::{Request, NOT_INTEGER, SYNTAX};
use crate::db::Db;
use crate::resp::reply;

pub fn del(db: &mut Db, rq: &mut Request<'_>) {
    let mut deleted = 0;
    for i in 1..rq.argc() {
        deleted += i64::from(db.remove(rq.args.get(rq.bytes, i), rq.now_ms));
    }
    reply::int(rq.out, deleted);
}

pub fn exists(db: &mut Db, rq: &mut Request<'_>) {
    let mut found = 0;
    for i in 1..rq.argc() {
        found += i64::from(db.get(rq.args.get(rq.bytes, i), rq.now_ms).is_some());
    }
    reply::int(rq.out, found);
}

pub fn dbsize(db: &mut Db, rq: &mut Request<'_>) {
    reply::int(rq.out, db.len() as i64);
}

/// `FLUSHALL [ASYNC | SYNC]`: both empty the keyspace at once here.
pub fn flushall(db: &mut Db, rq: &mut Request<'_>) {
    let mode_ok = match rq.argc() {
        1 => true,
        2 => matches!(
            rq.option(1).to_ascii_uppercase().as_slice(),
            b"ASYNC" | b"SYNC"
        ),
        _ => false,
    };
    if !mode_ok {
        return reply::error(rq.out, SYNTAX);
    }
    db.clear();
    reply::simple(rq.out, "OK");
}

pub fn expire(db: &mut Db, rq: &mut Request<'_>) {
    let now = rq.now_ms;
    set_expiry(db, rq, "expire", now, 1000);
}

pub fn pexpire(db: &mut Db, rq: &mut Request<'_>) {
    let now = rq.now_ms;
    set_expiry(db, rq, "pexpire", now, 1);
}

pub fn expireat(db: &mut Db, rq: &mut Request<'_>) {
    set_expiry(db, rq, "expireat", 0, 1000);
}

pub fn pexpireat(db: &mut Db, rq: &mut Request<'_>) {
    set_expiry(db, rq, "pexpireat", 0, 1);
}

/// Which of NX, XX, GT, LT an EXPIRE was given.
#[derive(Default)]
struct Conditions {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

/// Redis 7.0's `expireGenericCommand`: options first, then the number
/// (`base_ms + number * unit_ms`, refused if that overflows), then the
/// key; a deadline already past deletes the key.
fn set_expiry(db: &mut Db, rq: &mut Request<'_>, name: &str, base_ms: i64, unit_ms: i64) {
    let Some(when) = conditions(rq) else {
        return;
    };
    let Some(number) = rq.int_arg(2) else {
        return reply::error(rq.out, NOT_INTEGER);
    };
    let Some(at) = number
        .checked_mul(unit_ms)
        .and_then(|ms| ms.checked_add(base_ms))
    else {
        return reply::error(
            rq.out,
            &format!("ERR invalid expire time in '{name}' command"),
        );
    };
    let key = rq.args.get(rq.bytes, 1);
    let Ok(current) = db.deadline(key, rq.now_ms) else {
        return reply::int(rq.out, 0);
    };
    // No deadline counts as an infinite one: GT never passes it, LT
    // always does.
    let refused = (when.nx && current.is_some())
        || (when.xx && current.is_none())
        || (when.gt && current.is_none_or(|current| at <= current))
        || (when.lt && current.is_some_and(|current| at >= current));
    if refused {
        return reply::int(rq.out, 0);
    }
    if at <= rq.now_ms {
        db.remove(key, rq.now_ms);
    } else {
        db.expire_at(key, at, rq.now_ms);
    }
    reply::int(rq.out, 1);
}

/// EXPIRE's options, or `None` after replying with Redis's error.
fn conditions(rq: &mut Request<'_>) -> Option<Conditions> {
    let mut when = Conditions::default();
    for i in 3..rq.argc() {
        match rq.option(i).to_ascii_uppercase().as_slice() {
            b"NX" => when.nx = true,
            b"XX" => when.xx = true,
            b"GT" => when.gt = true,
            b"LT" => when.lt = true,
            _ => {
                let text = [b"ERR Unsupported option ", rq.option(i)].concat();
                reply::error_bytes(rq.out, &text);
                return None;
            }
        }
    }
    if when.nx && (when.xx || when.gt || when.lt) {
        reply::error(
            rq.out,
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        );
        return None;
    }
    if when.gt && when.lt {
        reply::error(
            rq.out,
            "ERR GT and LT options at the same time are not compatible",
        );
        return None;
    }
    Some(when)
}

pub fn ttl(db: &mut Db, rq: &mut Request<'_>) {
    time_to_live(db, rq, false);
}

pub fn pttl(db: &mut Db, rq: &mut Request<'_>) {
    time_to_live(db, rq, true);
}

/// -2 for no key, -1 for no deadline, else what is left: in milliseconds,
/// or in seconds rounded as Redis does, `(ms + 500) / 1000`.
fn time_to_live(db: &mut Db, rq: &mut Request<'_>, in_ms: bool) {
    let left = match db.deadline(rq.args.get(rq.bytes, 1), rq.now_ms) {
        Err(()) => -2,
        Ok(None) => -1,
        Ok(Some(at)) => {
            let ms = at.saturating_sub(rq.now_ms).max(0);
            if in_ms {
                ms
            } else {
                (ms + 500) / 1000
            }
        }
    };
    reply::int(rq.out, left);
}

pub fn persist(db: &mut Db, rq: &mut Request<'_>) {
    let removed = db.persist(rq.args.get(rq.bytes, 1), rq.now_ms);
    reply::int(rq.out, i64::from(removed));
}
