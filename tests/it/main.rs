//! The integration tests, in one binary: each module is one subject (a
//! limit, a backend, an example server, a bad client), each test drives a
//! real reactor over loopback sockets. One binary links once, and its tests
//! share the two cores instead of waiting for each other binary by binary.
//!
//! `cargo test --test it fairness` runs one module; `cargo test --test it`
//! all of them. Three tests live in binaries of their own because they
//! measure the whole process: `fd_leak` (its descriptor count), `memory`
//! (its resident memory) and `steady_path` (its allocations).

#[macro_use]
#[path = "../util/mod.rs"]
mod util;

mod backends;
mod bad_clients;
mod blocking_server;
mod codec_props;
mod conn_state;
mod datagrams;
mod decoder;
mod dns_server;
// Signals, descriptor limits: Unix's.
#[cfg(unix)]
mod eintr;
mod embedding;
#[cfg(unix)]
mod emfile;
mod examples;
mod examples_embedding;
mod fairness;
mod faults;
mod group;
mod house;
mod http_server;
mod limits;
mod linger;
mod mass;
#[cfg(unix)]
mod memcached_server;
// Kernel socket queues, or peers (redis-server, memcached) reached by Unix sockets.
#[cfg(unix)]
mod read_budget;
mod resp_server;
#[cfg(unix)]
mod resp_vs_redis;
mod scale;
// The seed's flaws are shown by stopping its process (SIGSTOP).
#[cfg(unix)]
mod seed_flaws;
mod select_literal;
mod select_protocol;
mod shared_sends;
mod shutdown;
#[cfg(unix)]
mod signals;
mod threads;
mod timers;
mod typed_frames;
mod write_budget;
mod write_path;
