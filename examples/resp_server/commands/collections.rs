//! Lists, sets and hashes: LPUSH, RPUSH, LPOP, RPOP, LRANGE, LLEN; SADD,
//! SPOP, SCARD; HSET, HGET (Redis's `t_list.c`, `t_set.c`, `t_hash.c`).

use std::collections::{HashMap, HashSet, VecDeque};

use super::{positive_count, Request, NOT_INTEGER, SYNTAX, WRONGTYPE};
use crate::db::{Db, Value};
use crate::resp::reply;

pub fn lpush(db: &mut Db, rq: &mut Request<'_>) {
    push(db, rq, true);
}

pub fn rpush(db: &mut Db, rq: &mut Request<'_>) {
    push(db, rq, false);
}

fn push(db: &mut Db, rq: &mut Request<'_>, front: bool) {
    let key = rq.args.get(rq.bytes, 1);
    let Value::List(list) = db.get_or_insert(key, rq.now_ms, || Value::List(VecDeque::new()))
    else {
        return reply::error(rq.out, WRONGTYPE);
    };
    for i in 2..rq.argc() {
        let item = rq.args.get(rq.bytes, i).to_vec();
        if front {
            list.push_front(item);
        } else {
            list.push_back(item);
        }
    }
    reply::int(rq.out, list.len() as i64);
}

pub fn lpop(db: &mut Db, rq: &mut Request<'_>) {
    pop(db, rq, "lpop", true);
}

pub fn rpop(db: &mut Db, rq: &mut Request<'_>) {
    pop(db, rq, "rpop", false);
}

/// `LPOP key [count]`: one item (nil if none), or an array of up to
/// `count` (a nil array if there is no list).
fn pop(db: &mut Db, rq: &mut Request<'_>, name: &str, front: bool) {
    let count = match rq.argc() {
        2 => None,
        3 => match positive_count(rq, 2) {
            Some(n) => Some(n),
            None => return,
        },
        _ => return rq.arity_error(name),
    };
    let key = rq.args.get(rq.bytes, 1);
    let list = match db.get(key, rq.now_ms) {
        None if count.is_some() => return reply::nil_array(rq.out),
        None => return reply::nil(rq.out),
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

pub fn lrange(db: &mut Db, rq: &mut Request<'_>) {
    let (Some(start), Some(stop)) = (rq.int_arg(2), rq.int_arg(3)) else {
        return reply::error(rq.out, NOT_INTEGER);
    };
    let list = match db.get(rq.args.get(rq.bytes, 1), rq.now_ms) {
        None => return reply::array(rq.out, 0),
        Some(Value::List(list)) => list,
        Some(_) => return reply::error(rq.out, WRONGTYPE),
    };
    // Redis's arithmetic: negative indexes count from the end, then the
    // range is clamped to the list.
    let len = list.len() as i64;
    let start = if start < 0 {
        len.saturating_add(start)
    } else {
        start
    }
    .max(0);
    let stop = if stop < 0 {
        len.saturating_add(stop)
    } else {
        stop
    };
    if start > stop || start >= len {
        return reply::array(rq.out, 0);
    }
    let stop = stop.min(len - 1);
    reply::array(rq.out, (stop - start + 1) as usize);
    for item in list.range(start as usize..=stop as usize) {
        reply::bulk(rq.out, item);
    }
}

pub fn llen(db: &mut Db, rq: &mut Request<'_>) {
    match db.get(rq.args.get(rq.bytes, 1), rq.now_ms) {
        None => reply::int(rq.out, 0),
        Some(Value::List(list)) => reply::int(rq.out, list.len() as i64),
        Some(_) => reply::error(rq.out, WRONGTYPE),
    }
}

pub fn sadd(db: &mut Db, rq: &mut Request<'_>) {
    let key = rq.args.get(rq.bytes, 1);
    let Value::Set(set) = db.get_or_insert(key, rq.now_ms, || Value::Set(HashSet::new())) else {
        return reply::error(rq.out, WRONGTYPE);
    };
    let mut added = 0;
    for i in 2..rq.argc() {
        added += i64::from(set.insert(rq.args.get(rq.bytes, i).to_vec()));
    }
    reply::int(rq.out, added);
}

/// `SPOP key [count]`: one member (nil if none), or an array of up to
/// `count` members (empty if there is no set). Which member goes is up
/// to the server: here the hash set's first.
pub fn spop(db: &mut Db, rq: &mut Request<'_>) {
    let count = match rq.argc() {
        2 => None,
        3 => match positive_count(rq, 2) {
            Some(n) => Some(n),
            None => return,
        },
        _ => return reply::error(rq.out, SYNTAX),
    };
    let key = rq.args.get(rq.bytes, 1);
    let set = match db.get(key, rq.now_ms) {
        None if count.is_some() => return reply::array(rq.out, 0),
        None => return reply::nil(rq.out),
        Some(Value::Set(set)) => set,
        Some(_) => return reply::error(rq.out, WRONGTYPE),
    };
    match count {
        None => {
            let member = set.iter().next().cloned();
            match member {
                Some(member) => {
                    set.remove(&member);
                    reply::bulk(rq.out, &member);
                }
                None => reply::nil(rq.out),
            }
        }
        Some(n) => {
            let members: Vec<Vec<u8>> = set.iter().take(n).cloned().collect();
            reply::array(rq.out, members.len());
            for member in members {
                set.remove(&member);
                reply::bulk(rq.out, &member);
            }
        }
    }
    db.drop_if_empty(key);
}

pub fn scard(db: &mut Db, rq: &mut Request<'_>) {
    match db.get(rq.args.get(rq.bytes, 1), rq.now_ms) {
        None => reply::int(rq.out, 0),
        Some(Value::Set(set)) => reply::int(rq.out, set.len() as i64),
        Some(_) => reply::error(rq.out, WRONGTYPE),
    }
}

pub fn hset(db: &mut Db, rq: &mut Request<'_>) {
    if !rq.argc().is_multiple_of(2) {
        return rq.arity_error("hset");
    }
    let key = rq.args.get(rq.bytes, 1);
    let Value::Hash(hash) = db.get_or_insert(key, rq.now_ms, || Value::Hash(HashMap::new())) else {
        return reply::error(rq.out, WRONGTYPE);
    };
    let mut added = 0;
    for i in (2..rq.argc()).step_by(2) {
        let field = rq.args.get(rq.bytes, i).to_vec();
        let value = rq.args.get(rq.bytes, i + 1).to_vec();
        added += i64::from(hash.insert(field, value).is_none());
    }
    reply::int(rq.out, added);
}

pub fn hget(db: &mut Db, rq: &mut Request<'_>) {
    match db.get(rq.args.get(rq.bytes, 1), rq.now_ms) {
        None => reply::nil(rq.out),
        Some(Value::Hash(hash)) => match hash.get(rq.args.get(rq.bytes, 2)) {
            Some(value) => reply::bulk(rq.out, value),
            None => reply::nil(rq.out),
        },
        Some(_) => reply::error(rq.out, WRONGTYPE),
    }
}
