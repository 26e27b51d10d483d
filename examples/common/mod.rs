//! What the example servers share: logging warnings by default, `--help`,
//! start-up errors told as sentences, and a group run until a signal. (A
//! single reactor stops on SIGINT and SIGTERM with the crate's own
//! `Reactor::stop_on_signals`.)

use std::fmt::Display;
use std::io;
use std::process::ExitCode;
use std::time::Duration;

use selectloop::Reactor;

/// 127.0.0.1:8088, the seed's address.
#[allow(dead_code)]
pub fn default_addr() -> std::net::SocketAddr {
    ([127, 0, 0, 1], 8088).into()
}

/// A command-line error as an `io::Error`.
#[allow(dead_code)]
pub fn invalid(e: lexopt::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e.to_string())
}

/// The next flag value, parsed.
#[allow(dead_code)]
pub fn value<T>(parser: &mut lexopt::Parser) -> io::Result<T>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let raw = parser.value().map_err(invalid)?;
    let text = raw.to_string_lossy().into_owned();
    text.parse()
        .map_err(|e: T::Err| io::Error::new(io::ErrorKind::InvalidInput, format!("{text:?}: {e}")))
}

/// The value of `--addr` (or `--upstream`): an address, or a host name
/// and port (`localhost:7000`) resolved as every server resolves one, the
/// first address the resolver gives taken.
#[allow(dead_code)]
pub fn addr(parser: &mut lexopt::Parser) -> io::Result<std::net::SocketAddr> {
    use std::net::ToSocketAddrs;
    let raw = parser.value().map_err(invalid)?;
    let text = raw.to_string_lossy().into_owned();
    let refused = |why: String| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{text:?} is not HOST:PORT: {why}"),
        )
    };
    let mut found = text.to_socket_addrs().map_err(|e| refused(e.to_string()))?;
    found
        .next()
        .ok_or_else(|| refused("the name has no address".to_string()))
}

/// `--addr HOST:PORT` (default 127.0.0.1:8088) and `--help`, the only flags
/// of the simplest examples.
#[allow(dead_code)]
pub fn parse_addr(
    usage: &str,
) -> io::Result<(std::net::SocketAddr, selectloop::backend::BackendKind)> {
    let mut addr = default_addr();
    let mut kind = selectloop::backend::BackendKind::default();
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next().map_err(invalid)? {
        use lexopt::prelude::*;
        match arg {
            Long("addr") => addr = self::addr(&mut parser)?,
            Long("backend") => kind = backend(&mut parser)?,
            Long("help") | Short('h') => print_help(usage),
            other => return Err(invalid(other.unexpected())),
        }
    }
    Ok((addr, kind))
}

/// `--addr HOST:PORT` (default 127.0.0.1:8088) and one on/off `--SWITCH`,
/// for the small examples that take nothing else.
#[allow(dead_code)]
pub fn parse_addr_and_switch(
    usage: &str,
    switch: &str,
) -> io::Result<(std::net::SocketAddr, bool)> {
    let mut addr = default_addr();
    let mut on = false;
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next().map_err(invalid)? {
        use lexopt::prelude::*;
        match arg {
            Long("addr") => addr = self::addr(&mut parser)?,
            Long(name) if name == switch => on = true,
            Long("help") | Short('h') => print_help(usage),
            other => return Err(invalid(other.unexpected())),
        }
    }
    Ok((addr, on))
}

/// `--backend epoll|poll|select|uring` as a [`selectloop::backend::BackendKind`].
#[allow(dead_code)]
pub fn backend(parser: &mut lexopt::Parser) -> io::Result<selectloop::backend::BackendKind> {
    let name: String = value(parser)?;
    selectloop::backend::BackendKind::from_name(&name).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unknown backend {name:?}: expected epoll, poll, select or uring"),
        )
    })
}

/// Logs to stderr: warnings and errors by default (a fault a client causes
/// is never silent), more with `RUST_LOG` (`RUST_LOG=trace` shows each turn).
#[allow(dead_code)]
pub fn init_logging() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
}

/// The command line of a demonstration that takes no arguments: `--help`
/// prints `usage` and exits; anything else is refused (status 2), so that
/// a mistyped flag is never silently ignored.
#[allow(dead_code)]
pub fn no_arguments(name: &str, usage: &str) {
    let mut parser = lexopt::Parser::from_env();
    // The first argument decides: `--help` ends the program, anything
    // else is refused.
    let refused = match parser.next() {
        Ok(None) => return,
        Ok(Some(lexopt::Arg::Long("help") | lexopt::Arg::Short('h'))) => print_help(usage),
        Ok(Some(other)) => other.unexpected(),
        Err(e) => e,
    };
    eprintln!("{name}: {refused}\ntry `{name} --help`");
    std::process::exit(2)
}

/// Prints `usage` and exits with status 0: what `--help` does.
#[allow(dead_code)]
pub fn print_help(usage: &str) -> ! {
    print!("{usage}");
    std::process::exit(0)
}

/// Runs an example's body; an error is printed as one sentence on stderr
/// (`select_server: cannot listen on 127.0.0.1:8088: address already in
/// use`), with status 2 for a bad command line and 1 for anything else.
#[allow(dead_code)]
pub fn run(name: &str, body: impl FnOnce() -> io::Result<()>) -> ExitCode {
    match body() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
            eprintln!("{name}: {}\ntry `{name} --help`", describe(&e));
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("{name}: {}", describe(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error as a person reads it: the system's words without the
/// `(os error N)` tail, starting in lower case, to follow a colon.
#[allow(dead_code)]
pub fn describe(error: &io::Error) -> String {
    let text = error.to_string();
    let text = match (error.raw_os_error(), text.rfind(" (os error")) {
        (Some(_), Some(at)) => text[..at].to_string(),
        _ => text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) if chars.clone().next().is_some_and(char::is_lowercase) => {
            first.to_lowercase().chain(chars).collect()
        }
        _ => text,
    }
}

/// Says what was being done when `error` happened: `cannot listen on ADDR:
/// address already in use`.
#[allow(dead_code)]
pub fn failed(what: impl Display) -> impl FnOnce(io::Error) -> io::Error {
    move |error| {
        // Winsock refuses a port another socket holds exclusively (or one
        // the system reserved) as "access denied".
        let taken = error.kind() == io::ErrorKind::AddrInUse
            || (cfg!(windows) && error.kind() == io::ErrorKind::PermissionDenied);
        let hint = if taken {
            " (another server has the port: pick another with --addr)"
        } else {
            ""
        };
        io::Error::new(error.kind(), format!("{what}: {}{hint}", describe(&error)))
    }
}

/// Binds the reactor's listener, or says where it could not.
#[allow(dead_code)]
pub fn listen(
    reactor: &mut Reactor,
    addr: std::net::SocketAddr,
) -> io::Result<selectloop::ListenerId> {
    reactor
        .listen(addr)
        .map_err(failed(format!("cannot listen on {addr}")))
}

/// Runs `group` until SIGINT or SIGTERM, then shuts every loop down
/// gracefully (`grace` to drain) and waits for them.
#[allow(dead_code)] // only the examples with --threads run a group
                    // ANCHOR: run_group
pub fn run_group(mut group: selectloop::Group, grace: Duration) -> io::Result<()> {
    // Caught before the address is printed: a signal sent as soon as it
    // is read must not find the default action (death) still in place.
    group.catch_signals()?;
    println!("listening on {}", group.local_addr());
    group.run_until_signal(grace).map(|_| ())
}
// ANCHOR_END: run_group

/// `--threads N`: one loop per thread, at least one.
#[allow(dead_code)]
pub fn threads(parser: &mut lexopt::Parser) -> io::Result<usize> {
    match value::<usize>(parser)? {
        0 => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--threads 0: at least one loop is needed (--threads 1 is one loop, no group)",
        )),
        n => Ok(n),
    }
}

/// Says why a group of `threads` loops could not start on `addr`, and
/// what to do: the port is taken, or the loops need more descriptors
/// than the process may open.
#[allow(dead_code)]
pub fn group_failed(
    threads: usize,
    addr: std::net::SocketAddr,
) -> impl FnOnce(io::Error) -> io::Error {
    move |error| {
        if error.kind() == io::ErrorKind::AddrInUse {
            return failed(format!("cannot listen on {addr}"))(error);
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let what = match error.raw_os_error() {
            Some(libc::EMFILE | libc::ENFILE) => format!(
                "cannot start {threads} loops: too many open files (each loop needs a few \
                 descriptors: ask for fewer, this machine has {cores} CPUs, or raise `ulimit -n`)"
            ),
            _ => format!(
                "cannot start {threads} loops on {addr}: {}",
                describe(&error)
            ),
        };
        io::Error::new(error.kind(), what)
    }
}

/// `--balance reuseport|acceptor` as a [`selectloop::Balance`].
#[allow(dead_code)]
pub fn balance(parser: &mut lexopt::Parser) -> io::Result<selectloop::Balance> {
    let name: String = value(parser)?;
    match name.as_str() {
        "reuseport" => Ok(selectloop::Balance::ReusePort),
        "acceptor" => Ok(selectloop::Balance::Acceptor),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unknown balance {name:?}: expected reuseport or acceptor"),
        )),
    }
}

/// Prints the bound address on the first line, as every example does.
#[allow(dead_code)]
pub fn announce(reactor: &Reactor, listener: selectloop::ListenerId) -> io::Result<()> {
    let bound = reactor
        .local_addr(listener)
        .ok_or_else(|| io::Error::other("listener has no address"))?;
    println!("listening on {bound}");
    Ok(())
}
