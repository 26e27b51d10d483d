//! Helpers shared by the integration tests: a reactor running on its own
//! thread over loopback, clients with timeouts, and bounded waiting.
#![allow(dead_code)] // each test binary uses a different part

mod tools;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use selectloop::{CloseReason, Config, ConnId, Context, Handler, Reactor, Stats};

// Used by the test files that run their cases once per backend.
#[allow(unused_imports)]
pub use selectloop::backend::BackendKind;

/// Runs a test case once per backend: `per_backend!(case)` turns
/// `fn case(backend: BackendKind)` into the tests `case::epoll`,
/// `case::poll`, `case::select` and (on Linux) `case::uring`, so that one
/// `cargo test` holds the loop to the same behaviour on edge-triggered and
/// level-triggered polling alike, and on the io_uring ring.
#[macro_export]
macro_rules! per_backend {
    ($case:ident) => {
        mod $case {
            #[test]
            fn epoll() {
                super::$case(super::util::BackendKind::Epoll)
            }
            #[test]
            fn poll() {
                super::$case(super::util::BackendKind::Poll)
            }
            #[test]
            fn select() {
                let _low = super::util::few_descriptors();
                super::$case(super::util::BackendKind::Select)
            }
            #[cfg(target_os = "linux")]
            #[test]
            fn uring() {
                super::$case(super::util::BackendKind::Uring)
            }
        }
    };
}

/// [`per_backend!`] for a case that opens hundreds of descriptors in this
/// process: each of its three tests holds the descriptor lock alone
/// ([`many_descriptors`]), so that no select case runs beside it and finds
/// its descriptors pushed past `FD_SETSIZE` (the select case's own
/// descriptors then stay low: nothing else holds many).
#[macro_export]
macro_rules! per_backend_many {
    ($case:ident) => {
        mod $case {
            #[test]
            fn epoll() {
                let _many = super::util::many_descriptors();
                super::$case(super::util::BackendKind::Epoll)
            }
            #[test]
            fn poll() {
                let _many = super::util::many_descriptors();
                super::$case(super::util::BackendKind::Poll)
            }
            #[test]
            fn select() {
                let _many = super::util::many_descriptors();
                super::$case(super::util::BackendKind::Select)
            }
            #[cfg(target_os = "linux")]
            #[test]
            fn uring() {
                let _many = super::util::many_descriptors();
                super::$case(super::util::BackendKind::Uring)
            }
        }
    };
}

/// Tests of one binary run in parallel and share the process's descriptor
/// table. A select(2) case needs its descriptors below FD_SETSIZE (1,024),
/// so it holds this lock shared ([`few_descriptors`]) while a test that
/// opens more than a thousand descriptors holds it alone
/// ([`many_descriptors`]): otherwise the select case would see its
/// connections refused as unwatchable, depending on what ran beside it.
static DESCRIPTORS: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Held by a test that needs every descriptor it opens below FD_SETSIZE.
pub fn few_descriptors() -> std::sync::RwLockReadGuard<'static, ()> {
    DESCRIPTORS.read().unwrap_or_else(|e| e.into_inner())
}

/// Held by a test that opens more than a thousand descriptors.
pub fn many_descriptors() -> std::sync::RwLockWriteGuard<'static, ()> {
    DESCRIPTORS.write().unwrap_or_else(|e| e.into_inner())
}

/// Tests whose servers burn CPU on purpose (worker_pool's 50 ms hashes)
/// take turns, so that one that times the others' CPU (a ping during a
/// hash, seen by the server's CPU time moving) is not starved on a
/// two-core machine into seeing nothing move.
static HASHING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Held by a test whose server hashes, or that times one that does.
pub fn hashing_alone() -> std::sync::MutexGuard<'static, ()> {
    HASHING.lock().unwrap_or_else(|e| e.into_inner())
}

/// How long any single wait in a test may take before it fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Sets up logging once per test binary (`RUST_LOG=trace cargo test` shows
/// the loop's turns).
pub fn init_logger() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = env_logger::builder().is_test(true).try_init();
    });
}

/// A reactor serving `127.0.0.1:0` on a thread of its own.
pub struct Server {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<Stats>>,
    /// The seed's `len(inputs)` and `len(outputs)` after the last turn.
    figures: Arc<Mutex<(usize, usize)>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start<I: 'static, H: Handler<I> + Send + 'static>(config: Config, handler: H) -> Server {
        Server::start_on(
            move || Reactor::with_config(config).expect("create reactor"),
            handler,
        )
    }

    /// As [`start`](Server::start), on the reactor `make` builds (on the
    /// server's thread: a reactor is not `Send`).
    pub fn start_on<I: 'static, H: Handler<I> + Send + 'static>(
        make: impl FnOnce() -> Reactor + Send + 'static,
        handler: H,
    ) -> Server {
        init_logger();
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Mutex::new(Stats::default()));
        let figures = Arc::new(Mutex::new((0, 0)));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let thread = {
            let stop = stop.clone();
            let stats = stats.clone();
            let figures = figures.clone();
            let mut handler = handler;
            thread::spawn(move || {
                let mut reactor = make();
                let listener = reactor.listen("127.0.0.1:0").expect("listen");
                addr_tx
                    .send(reactor.local_addr(listener).expect("bound address"))
                    .expect("report address");
                while !stop.load(Ordering::Relaxed) {
                    reactor
                        .run_once(&mut handler, Some(Duration::from_millis(5)))
                        .expect("poll");
                    *stats.lock().unwrap() = reactor.stats();
                    *figures.lock().unwrap() = (reactor.inputs(), reactor.outputs());
                }
            })
        };
        let addr = addr_rx.recv_timeout(PATIENCE).expect("server address");
        Server {
            addr,
            stop,
            stats,
            figures,
            thread: Some(thread),
        }
    }

    /// The reactor's counters as of its last turn.
    pub fn stats(&self) -> Stats {
        *self.stats.lock().unwrap()
    }

    /// The seed's `len(inputs)` and `len(outputs)` as of the last turn.
    pub fn inputs_outputs(&self) -> (usize, usize) {
        *self.figures.lock().unwrap()
    }

    /// Waits until the counters satisfy `ready`; fails the test after
    /// [`PATIENCE`].
    /// The failure names the last counters seen.
    pub fn wait_for(&self, what: &str, ready: impl Fn(&Stats) -> bool) -> Stats {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let stats = self.stats();
            if ready(&stats) {
                return stats;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last seen: {stats:?}"
            );
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// Stops the loop and joins its thread; a panic on it fails the test.
    pub fn stop(mut self) -> Stats {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("server thread panicked");
        }
        self.stats()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Polls `check` every few milliseconds until it returns `Some`; panics after
/// [`PATIENCE`].
pub fn wait_until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(2));
    }
}

/// A blocking client with read and write timeouts, so a broken server fails
/// the test instead of hanging it.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.set_write_timeout(Some(PATIENCE)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// Reads exactly `n` bytes.
pub fn read_n(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    stream.read_exact(&mut buf).expect("read_exact");
    buf
}

/// Reads until the peer closes; returns everything.
pub fn read_to_end(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf)?;
    Ok(buf)
}

/// Writes everything.
pub fn write_all(stream: &mut TcpStream, bytes: &[u8]) {
    stream.write_all(bytes).expect("write_all");
}

/// The `select_server` behaviour: a greeting, then `response: ` + each message.
#[derive(Clone, Default)]
pub struct Respond;

pub const GREETING: &[u8] = b"Hello client-side";

impl Handler for Respond {
    fn on_connect(&mut self, cx: &mut Context<'_>, conn: ConnId) {
        cx.send(conn, GREETING).unwrap();
    }

    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, msg: &[u8]) {
        cx.send_parts(conn, &[b"response: ", msg]).unwrap();
    }
}

/// Echoes each message framed by the codec, and records how connections
/// closed.
#[derive(Clone, Default)]
pub struct Echo {
    pub closes: Arc<Mutex<Vec<(ConnId, String)>>>,
}

impl Handler for Echo {
    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, msg: &[u8]) {
        cx.send_frame(conn, msg).unwrap();
    }

    fn on_close(&mut self, _cx: &mut Context<'_>, conn: ConnId, reason: &CloseReason) {
        self.closes.lock().unwrap().push((conn, reason.to_string()));
    }
}

/// File descriptors this process has open (Linux: entries of /proc/self/fd).
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .count()
}

/// Raises the soft limit on open files to the hard limit, for tests that hold
/// thousands of sockets (both ends live in this process).
// `rlim_t` is not `u64` on every platform, so the casts stay.
#[cfg(unix)]
#[allow(clippy::unnecessary_cast)]
pub fn raise_fd_limit(wanted: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        if (limit.rlim_cur as u64) < wanted {
            limit.rlim_cur = (wanted as libc::rlim_t).min(limit.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        }
    }
    limit.rlim_cur as u64
}

/// Windows has no per-process limit on sockets to raise.
#[cfg(windows)]
pub fn raise_fd_limit(wanted: u64) -> u64 {
    wanted
}

/// Resident memory of this process in KiB (VmRSS of /proc/self/status).
#[cfg(unix)]
pub fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .expect("VmRSS line")
}

/// CPU time (user + system) a process has used, in clock ticks.
#[cfg(unix)]
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read stat");
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// Clock ticks per second, for [`cpu_ticks`].
#[cfg(unix)]
pub fn ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as u64
    } else {
        100
    }
}

/// A small deterministic generator (xorshift64*), so that "random" test
/// inputs are the same on every run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `low..=high`.
    pub fn range(&mut self, low: usize, high: usize) -> usize {
        low + (self.next_u64() % (high - low + 1) as u64) as usize
    }
}

/// Path of a built example, built from the sources as they are now.
///
/// A plain `cargo test` builds every example first, but `cargo test --test
/// NAME` builds none: without this, such a run would drive whatever binary
/// an earlier build left, and test old code. So each test process asks
/// cargo once, on first use, to build every example (one call, a fraction
/// of a second when they are fresh; one call per example cost seconds, and
/// made parallel tests queue on cargo's lock).
pub fn example(name: &str) -> PathBuf {
    static BUILT: Once = Once::new();
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test binary> -> target/<profile>/examples/<name>
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory");
    let path = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    // Under Wine no cargo runs: `cargo xtask wine` builds the examples
    // first.
    if cfg!(windows) && path.exists() {
        return path;
    }
    BUILT.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "--quiet", "--examples"]);
        // The profile the tests were built with (`target/debug` is `dev`'s
        // folder): release, or a custom one such as cargo-mutants'.
        match profile_dir.file_name().and_then(|dir| dir.to_str()) {
            Some("debug") | None => {}
            Some(profile) => {
                build.args(["--profile", profile]);
            }
        }
        let status = build.status().expect("run cargo build");
        assert!(status.success(), "cannot build the examples");
    });
    path
}

/// Runs a demonstration example (one that shows something and exits) and
/// returns what it printed, once it has exited successfully.
pub fn demo_output(name: &str) -> String {
    let output = Command::new(example(name))
        .output()
        .unwrap_or_else(|e| panic!("run {name}: {e}"));
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{name} failed:\n{text}{output:?}");
    text
}

/// A running example server, killed when dropped.
pub struct Running {
    pub child: Child,
    pub addr: SocketAddr,
    /// What it has written to stderr so far (its log).
    log: Arc<Mutex<String>>,
}

impl Running {
    /// The server's log (stderr) up to now.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts an example server on port 0 and reads the address it prints first.
pub fn start_example(name: &str, extra: &[&str]) -> Running {
    start_example_with(name, extra, |_| {})
}

/// Like [`start_example`], with a chance to adjust the command first (to
/// lower its descriptor limit, say).
pub fn start_example_with(
    name: &str,
    extra: &[&str],
    adjust: impl FnOnce(&mut Command),
) -> Running {
    let mut command = Command::new(example(name));
    command.args(["--addr", "127.0.0.1:0"]).args(extra);
    adjust(&mut command);
    start_process(command)
}

/// Starts a server process that prints `listening on ADDR` first, and
/// collects its log.
pub fn start_process(mut command: Command) -> Running {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn server");
    // Collected on a thread of its own, so a chatty server never blocks on
    // a full pipe; the thread ends when the server does.
    let log = Arc::new(Mutex::new(String::new()));
    let mut stderr = child.stderr.take().expect("stderr");
    {
        let log = log.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                log.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
    }
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("first line");
    let addr = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .parse()
        .expect("an address");
    Running { child, addr, log }
}

/// The path of `examples/NAME`, a Python script, after checking that
/// python3 is here to run it (see [`tool`]).
pub fn python_script(name: &str) -> PathBuf {
    require_tool("python3");
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

/// A Redis command as clients send it: a multibulk of bulk strings.
pub fn resp_command(args: &[&[u8]]) -> Vec<u8> {
    let mut wire = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        wire.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        wire.extend_from_slice(arg);
        wire.extend_from_slice(b"\r\n");
    }
    wire
}

/// A command-line program a test drives (a real client: redis-cli,
/// curl...), listed in `tools.rs`. Missing, the test fails and names the
/// command that installs it, rather than skip.
pub fn tool(name: &str) -> Command {
    require_tool(name);
    Command::new(name)
}

/// Fails the test unless `name` is listed in `tools.rs` and installed.
fn require_tool(name: &str) {
    let Some(listed) = tools::find(name) else {
        panic!("{name} is not in tests/util/tools.rs: list it there, so that `cargo xtask test` installs it");
    };
    assert!(
        tools::is_installed(name),
        "{name} is not installed ({}): run `cargo xtask test`, which installs the tests' clients, \
         or `apt-get install {}`",
        listed.used_for,
        listed.debian_package
    );
}

/// A reference server of its own (redis-server, memcached) listening on a
/// Unix socket in a fresh directory: no TCP port to race for, nothing
/// left behind. Killed when dropped.
#[cfg(unix)]
pub struct SocketPeer {
    child: Child,
    dir: PathBuf,
    pub socket: PathBuf,
}

#[cfg(unix)]
impl SocketPeer {
    /// Runs the listed tool `name` with the arguments `args` adds, given
    /// the socket's path and the directory; waits until the socket opens.
    pub fn start(
        name: &str,
        args: impl FnOnce(&mut Command, &std::path::Path, &std::path::Path),
    ) -> SocketPeer {
        // One directory per server: the tests run in parallel.
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "{name}-peer-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("peer.sock");
        let mut command = tool(name);
        args(&mut command, &socket, &dir);
        let child = command
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        let started = Instant::now();
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(
                started.elapsed() < PATIENCE,
                "{name} did not open its socket"
            );
            thread::sleep(Duration::from_millis(10));
        }
        SocketPeer { child, dir, socket }
    }

    /// A connection to it, reads timing out after 10 s.
    pub fn connect(&self) -> std::os::unix::net::UnixStream {
        let stream = std::os::unix::net::UnixStream::connect(&self.socket).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
    }
}

#[cfg(unix)]
impl Drop for SocketPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Fails with every difference listed, if any: what a comparison with a
/// reference server found.
pub fn assert_no_differences(found: &[String]) {
    assert!(
        found.is_empty(),
        "{} replies differ:\n{}",
        found.len(),
        found.join("\n")
    );
}
