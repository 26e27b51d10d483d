//! Servers under test and the load generator, as the benchmark binaries
//! drive them: start a server pinned to a CPU, run `loadgen` against it,
//! read its result line, and read the server's CPU time, memory,
//! descriptors and system calls from the kernel.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::report::free_port;

/// How a server is told where to listen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PortArg {
    /// `--addr 127.0.0.1:0`, prints `listening on ADDR` first.
    Announces,
    /// Takes a port number as its last argument and prints nothing useful.
    Positional,
}

/// A server under test.
#[derive(Clone, Debug)]
pub struct Server {
    /// Column name in the tables.
    pub name: &'static str,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub port_arg: PortArg,
    /// Bytes of greeting to skip, and the reply prefix (select_server protocol).
    pub greeting: usize,
    pub prefix: &'static str,
    /// Serves only one message at a time of 64 bytes (the seed's protocol
    /// has no framing, so deeper pipelines merge chunks).
    pub only_ping_pong_64: bool,
    pub max_connections: usize,
}

impl Server {
    /// A server that takes `--addr` and announces its address.
    pub fn announcing(name: &'static str, program: PathBuf, args: &[&str]) -> Server {
        Server {
            name,
            program,
            args: args.iter().map(|s| s.to_string()).collect(),
            port_arg: PortArg::Announces,
            greeting: 0,
            prefix: "",
            only_ping_pong_64: false,
            max_connections: usize::MAX,
        }
    }

    /// The project's Python port of the seed's select() server
    /// (examples/select_server.py), if python3 is installed.
    pub fn python_select(root: &Path, name: &'static str) -> Option<Server> {
        let script = root.join("examples/select_server.py");
        let has_python = Command::new("python3")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        (script.exists() && has_python).then(|| Server {
            greeting: 17,
            prefix: "response: ",
            only_ping_pong_64: true,
            // select() watches at most 1,024 descriptors.
            max_connections: 1000,
            ..Server::announcing(
                name,
                PathBuf::from("python3"),
                &[&script.display().to_string(), "--quiet"],
            )
        })
    }

    /// Starts the server pinned to `cpu`; returns it and its address.
    pub fn start_on(&self, cpu: usize) -> io::Result<(Child, SocketAddr)> {
        self.start_on_cpus(&cpu.to_string())
    }

    /// Starts the server on the CPUs of `cpus` (a taskset list: `0`, `0-1`).
    pub fn start_on_cpus(&self, cpus: &str) -> io::Result<(Child, SocketAddr)> {
        let mut command = Command::new("taskset");
        command
            .args(["-c", cpus])
            .arg(&self.program)
            .args(&self.args);
        let fixed_port = match self.port_arg {
            PortArg::Announces => {
                command.args(["--addr", "127.0.0.1:0"]);
                command.stdout(Stdio::piped());
                None
            }
            PortArg::Positional => {
                let port = free_port()?;
                command.arg(port.to_string());
                command.stdout(Stdio::null());
                Some(port)
            }
        };
        let mut child = command.stderr(Stdio::null()).spawn()?;
        let addr = match fixed_port {
            None => {
                let stdout = child
                    .stdout
                    .take()
                    .ok_or_else(|| io::Error::other("no stdout"))?;
                let mut line = String::new();
                BufReader::new(stdout).read_line(&mut line)?;
                line.trim()
                    .strip_prefix("listening on ")
                    .and_then(|a| a.parse().ok())
                    .ok_or_else(|| io::Error::other(format!("unexpected first line {line:?}")))?
            }
            Some(port) => {
                let addr: SocketAddr = ([127, 0, 0, 1], port).into();
                let deadline = Instant::now() + Duration::from_secs(10);
                while TcpStream::connect(addr).is_err() {
                    if Instant::now() > deadline {
                        let _ = child.kill();
                        return Err(io::Error::other("server did not start listening"));
                    }
                    thread::sleep(Duration::from_millis(20));
                }
                // That probe connection is a client the server now knows about;
                // give it a moment to see it go.
                thread::sleep(Duration::from_millis(100));
                addr
            }
        };
        Ok((child, addr))
    }
}

/// Fails with what to run if any of `programs` has not been built.
pub fn require_built<'a>(programs: impl IntoIterator<Item = &'a Path>) -> io::Result<()> {
    match programs.into_iter().find(|p| !p.exists()) {
        None => Ok(()),
        Some(missing) => Err(io::Error::other(format!(
            "{} is not built: run `cargo build --release --examples` and \
             `cargo build --release -p selectloop-bench --bins`",
            missing.display()
        ))),
    }
}

/// Kills a server and reaps it.
pub fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// One load: how many connections, how deep each pipelines, how big a
/// message, and for how long (seconds, after a warm-up).
#[derive(Clone, Copy, Debug)]
pub struct Load {
    pub connections: usize,
    pub pipeline: usize,
    pub size: usize,
    pub duration: f64,
    pub warmup: f64,
}

/// Where the load generator runs and with how many threads: by default one
/// thread on CPU 1, beside a server on CPU 0.
#[derive(Clone, Copy, Debug)]
pub struct Generator {
    pub cpus: &'static str,
    pub threads: usize,
}

impl Default for Generator {
    fn default() -> Generator {
        Generator {
            cpus: "1",
            threads: 1,
        }
    }
}

/// What one run of the load generator measured, and the server's CPU time.
#[derive(Clone, Debug, Default)]
pub struct Run {
    pub msgs_per_s: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub p9999_us: f64,
    pub max_us: f64,
    pub errors: u64,
    pub total_msgs: u64,
    /// The server's CPU time over the load generator's measured window, or
    /// over the whole run (set-up and warm-up included) for figures taken
    /// before the load generator measured it.
    pub cpu_s: f64,
    /// The messages answered while `cpu_s` was counted.
    pub cpu_msgs: u64,
}

impl Run {
    /// Server CPU microseconds per message.
    pub fn cpu_per_msg_us(&self) -> f64 {
        self.cpu_s * 1e6 / self.cpu_msgs.max(1) as f64
    }
}

/// The load generator pinned to CPU 1, aimed at `server` on `addr`.
pub fn loadgen_command(loadgen: &Path, server: &Server, addr: SocketAddr, load: Load) -> Command {
    loadgen_command_on(loadgen, server, addr, load, Generator::default())
}

/// The load generator as `generator` says, aimed at `server` on `addr`.
pub fn loadgen_command_on(
    loadgen: &Path,
    server: &Server,
    addr: SocketAddr,
    load: Load,
    generator: Generator,
) -> Command {
    let mut command = Command::new("taskset");
    command
        .args(["-c", generator.cpus])
        .arg(loadgen)
        .args(["--threads", &generator.threads.to_string()])
        .args(["--addr", &addr.to_string()])
        .args(["--connections", &load.connections.to_string()])
        .args(["--pipeline", &load.pipeline.to_string()])
        .args(["--size", &load.size.to_string()])
        .args(["--duration", &load.duration.to_string()])
        .args(["--warmup", &load.warmup.to_string()]);
    if server.greeting > 0 {
        command.args(["--greeting", &server.greeting.to_string()]);
    }
    if !server.prefix.is_empty() {
        command.args(["--prefix", server.prefix]);
    }
    command
}

/// Reads the load generator's last line (`msgs_per_s=... total_msgs=...`).
pub fn parse_loadgen(stdout: &str) -> io::Result<Run> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with("msgs_per_s="))
        .ok_or_else(|| io::Error::other("no result line from the load generator"))?;
    let mut run = Run::default();
    for field in line.split_whitespace() {
        let Some((key, value)) = field.split_once('=') else {
            continue;
        };
        let value: f64 = value.parse().unwrap_or(0.0);
        match key {
            "msgs_per_s" => run.msgs_per_s = value,
            "p50_us" => run.p50_us = value,
            "p99_us" => run.p99_us = value,
            "p999_us" => run.p999_us = value,
            "p9999_us" => run.p9999_us = value,
            "max_us" => run.max_us = value,
            "errors" => run.errors = value as u64,
            "total_msgs" => run.total_msgs = value as u64,
            "server_cpu_s" => run.cpu_s = value,
            "measured_msgs" => run.cpu_msgs = value as u64,
            _ => {}
        }
    }
    Ok(run)
}

/// Runs the load generator against a started server (`pid` on `addr`) and
/// takes the server's CPU time over the run.
pub fn run_load(
    loadgen: &Path,
    server: &Server,
    pid: u32,
    addr: SocketAddr,
    load: Load,
) -> io::Result<Run> {
    run_load_with(loadgen, server, pid, addr, load, Generator::default())
}

/// [`run_load`] with the load generator placed by `generator`.
pub fn run_load_with(
    loadgen: &Path,
    server: &Server,
    pid: u32,
    addr: SocketAddr,
    load: Load,
    generator: Generator,
) -> io::Result<Run> {
    // The load generator takes the server's CPU over its measured window
    // itself: connecting thousands of clients and the warm-up (where a
    // server fills its pools) are not part of CPU per message.
    let output = loadgen_command_on(loadgen, server, addr, load, generator)
        .args(["--server-pid", &pid.to_string()])
        .output()?;
    let failed = || {
        io::Error::other(format!(
            "load generator failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    };
    let run = parse_loadgen(&String::from_utf8_lossy(&output.stdout)).map_err(|_| failed())?;
    if !output.status.success() && run.errors == 0 {
        return Err(failed());
    }
    Ok(run)
}

/// Counts tracepoint `events` in process `pid` (perf stat) while `work`
/// runs; returns `work`'s result and one count per event, in order.
pub fn count_events<T>(
    pid: u32,
    events: &[&str],
    work: impl FnOnce() -> io::Result<T>,
) -> io::Result<(T, Vec<f64>)> {
    let perf_out = std::env::temp_dir().join(format!("selectloop-perf-{pid}.txt"));
    let mut perf = Command::new("perf");
    perf.args(["stat", "-x,"]);
    for event in events {
        perf.args(["-e", event]);
    }
    let mut perf = perf
        .args(["-p", &pid.to_string(), "-o"])
        .arg(&perf_out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    thread::sleep(Duration::from_millis(300)); // perf attaches
    let result = work();
    // SAFETY: kill has no memory preconditions; perf prints its counts on SIGINT.
    #[cfg(unix)]
    unsafe {
        libc::kill(perf.id() as libc::pid_t, libc::SIGINT)
    };
    // perf is Linux's: elsewhere it never started.
    #[cfg(not(unix))]
    let _ = perf.kill();
    let _ = perf.wait();
    let text = fs::read_to_string(&perf_out)?;
    let _ = fs::remove_file(&perf_out);
    let counts = events
        .iter()
        .map(|event| {
            text.lines()
                .find(|l| l.split(',').any(|field| field == *event))
                .and_then(|l| l.split(',').next())
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| io::Error::other(format!("no count for {event}: {text:?}")))
        })
        .collect::<io::Result<Vec<f64>>>()?;
    Ok((result?, counts))
}

/// Resident memory of a process, in bytes.
pub fn rss_bytes(pid: u32) -> io::Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|kib| kib.parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .ok_or_else(|| io::Error::other("no VmRSS"))
}

/// Bytes each of the kernel's slab caches holds, all processes together:
/// active objects times their size, by cache, from `/proc/slabinfo`
/// (readable by root only). The kernel's share of a socket (its TCP
/// state, its file, an `epitem` or an io_uring request) is there, and in
/// no process's VmRSS.
pub fn slab_caches() -> io::Result<BTreeMap<String, u64>> {
    let info = fs::read_to_string("/proc/slabinfo")?;
    let mut caches = BTreeMap::new();
    // Two header lines, then: name active_objs num_objs objsize ...
    for line in info.lines().skip(2) {
        let mut fields = line.split_whitespace();
        let name = fields.next();
        let active = fields.next().and_then(|f| f.parse::<u64>().ok());
        let size = fields.nth(1).and_then(|f| f.parse::<u64>().ok());
        match (name, active, size) {
            (Some(name), Some(active), Some(size)) => {
                *caches.entry(name.to_string()).or_insert(0) += active * size;
            }
            _ => {
                return Err(io::Error::other(format!(
                    "unreadable slabinfo line: {line}"
                )))
            }
        }
    }
    Ok(caches)
}

/// The slab caches once they have settled: read until two readings half
/// a second apart differ by less than 64 KiB in all (5 s at most), so
/// that what a previous server freed late is not counted against the
/// next.
pub fn settled_slab_caches() -> io::Result<BTreeMap<String, u64>> {
    let total = |caches: &BTreeMap<String, u64>| caches.values().sum::<u64>();
    let give_up_at = Instant::now() + Duration::from_secs(5);
    let mut last = slab_caches()?;
    loop {
        thread::sleep(Duration::from_millis(500));
        let now = slab_caches()?;
        if total(&now).abs_diff(total(&last)) < 64 * 1024 || Instant::now() > give_up_at {
            return Ok(now);
        }
        last = now;
    }
}

/// Descriptors a process holds open.
pub fn open_fds(pid: u32) -> io::Result<usize> {
    Ok(fs::read_dir(format!("/proc/{pid}/fd"))?.count())
}

/// Windows has no open-file limit to raise.
#[cfg(not(unix))]
pub fn raise_fd_limit(_wanted: u64) {}

/// Raises this process's open-file limit towards `wanted` (its children
/// inherit it).
#[cfg(unix)]
pub fn raise_fd_limit(wanted: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write only the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = (wanted as libc::rlim_t).min(limit.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
