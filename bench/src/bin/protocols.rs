//! The protocols section of the benchmarks: selectloop's protocol servers
//! against the servers users compare them with, on one machine, in one run.
//!
//! ```text
//! cargo build --release --examples
//! cargo build --release -p selectloop-bench --bins
//! target/release/protocols           # medians of 3, about 5 minutes
//! target/release/protocols --quick   # one repeat of each point
//! ```
//!
//! - `resp_server` against `redis-server` (Debian's), driven by
//!   `redis-benchmark`: SET and GET, `-d 64`, 50 and 500 connections,
//!   pipeline 1 and 16.
//! - `memcached_server` against `memcached -t 1` (Debian's), both with
//!   1 GiB for items, driven by `memcaslap` (libmemcached's load
//!   generator, one thread): its default mix of 90% `get` and 10% `set`
//!   of about 1 KiB values, 50 and 500 connections, one request at a time
//!   each.
//! - `dns_server` against `nsd` (Debian's, one server process, rate
//!   limiting off) serving the same zone file, driven by `dnsperf` (one
//!   thread) with a mix of A, AAAA, TXT, a CNAME and an NXDOMAIN over UDP:
//!   50 and 500 simulated clients.
//! - `http_server` against `nginx` with one worker answering
//!   `return 200 "Hello, World!"`, driven by `wrk -t1` on `/`: 50 and 500
//!   connections, one request at a time and 16 pipelined; and driven by
//!   `ab` without keep-alive (`GET / (close)`: HTTP/1.0, a new connection
//!   for every request, which the server accepts, answers and closes), 50
//!   and 500 at a time, the cost of a connection's whole life.
//!
//! Each server runs on CPU 0 and the client on CPU 1 (`taskset`); the two
//! servers of a pair take turns at each point, so that drift in the machine
//! hits both alike. The server's CPU time (all its processes) comes from
//! `/proc/PID/stat`. Results go to docs/benchmarks/protocols.csv,
//! docs/benchmarks/protocols.svg, and the table between the `protocols`
//! markers of docs/benchmarks.md.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, BufRead, BufReader};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use selectloop_bench::report::{
    cpu_seconds, env_date, free_port, machine, median_min_max, plot_lines, release_dir, repo_root,
    write_between_markers, YScale,
};

/// One measured point of one server.
struct Sample {
    server: &'static str,
    bench: String,
    connections: usize,
    pipeline: usize,
    requests_per_s: f64,
    cpu_us_per_request: f64,
}

/// A server under test, started on CPU 0.
struct Running {
    child: Child,
    port: u16,
    /// The processes whose CPU time counts (nginx: its worker).
    pids: Vec<u32>,
}

impl Drop for Running {
    /// Asks the server to stop (SIGTERM: nginx's master then stops its
    /// worker; a SIGKILL would orphan the worker, serving on and holding
    /// its port after the run), and kills it after two seconds.
    fn drop(&mut self) {
        // SAFETY: a signal to our own child, which `wait` has not reaped.
        #[cfg(unix)]
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM)
        };
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The master did not stop its workers: stop them here (the peers
        // are Linux's: nothing to stop elsewhere).
        #[cfg(unix)]
        for &pid in self.pids.iter().filter(|&&pid| pid != self.child.id()) {
            // SAFETY: a signal to a worker the master started for this run.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
    }
}

fn need(tool: &str, package: &str) -> io::Result<()> {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{tool} not found: apt-get install {package}"
        )))
    }
}

fn wait_for_port(port: u16) -> io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(io::Error::other(format!("nothing listens on port {port}")));
        }
        thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Starts one of selectloop's example servers, which announces its address.
fn start_example(path: &Path, extra: &[&str]) -> io::Result<Running> {
    let mut child = Command::new("taskset")
        .args(["-c", "0"])
        .arg(path)
        .args(["--addr", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line)?;
    let port = line
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| io::Error::other(format!("unexpected first line {line:?}")))?;
    let pids = vec![child.id()];
    Ok(Running { child, port, pids })
}

/// Starts a peer server on CPU 0 with `args` (which name `port`), and
/// waits until it listens.
fn start_peer(args: &[&str], port: u16) -> io::Result<Running> {
    let child = Command::new("taskset")
        .args(["-c", "0"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    wait_for_port(port)?;
    let pids = vec![child.id()];
    Ok(Running { child, port, pids })
}

fn start_redis() -> io::Result<Running> {
    let port = free_port()?;
    let port_arg = port.to_string();
    let args = [
        "redis-server",
        "--port",
        &port_arg,
        "--save",
        "",
        "--appendonly",
        "no",
    ];
    start_peer(&[&args[..], &["--loglevel", "warning"]].concat(), port)
}

fn start_memcached() -> io::Result<Running> {
    let port = free_port()?;
    let port_arg = port.to_string();
    let args = [
        "memcached",
        "-u",
        "root",
        "-l",
        "127.0.0.1",
        "-U",
        "0",
        "-t",
        "1",
    ];
    start_peer(
        &[&args[..], &["-m", "1024", "-p", &port_arg]].concat(),
        port,
    )
}

/// NSD on CPU 0, serving `zone` (a file in `dir`), rate limiting off. It
/// forks: xfrd, then main, then the server that answers; all their CPU
/// time counts.
fn start_nsd(dir: &Path, zone: &Path) -> io::Result<Running> {
    let port = free_port()?;
    fs::create_dir_all(dir)?;
    fs::copy(zone, dir.join("zone"))?;
    let conf = dir.join("nsd.conf");
    fs::write(
        &conf,
        format!(
            "server:\n  ip-address: 127.0.0.1@{port}\n  server-count: 1\n  username: \"\"\n\
             \x20 chroot: \"\"\n  zonesdir: \"{dir}\"\n  zonelistfile: \"{dir}/zone.list\"\n\
             \x20 xfrdfile: \"{dir}/xfrd.state\"\n  pidfile: \"{dir}/nsd.pid\"\n\
             \x20 database: \"\"\n  rrl-ratelimit: 0\n  verbosity: 0\n\
             remote-control:\n  control-enable: no\n\
             zone:\n  name: example.test\n  zonefile: zone\n",
            dir = dir.display()
        ),
    )?;
    let child = Command::new("taskset")
        .args(["-c", "0", "nsd", "-d", "-c"])
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    // UDP: wait until it answers, then list its processes.
    let probe = std::net::UdpSocket::bind("127.0.0.1:0")?;
    probe.set_read_timeout(Some(Duration::from_millis(100)))?;
    let query = b"\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x07example\x04test\x00\x00\x01\x00\x01";
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        probe.send_to(query, ("127.0.0.1", port))?;
        if probe.recv(&mut [0u8; 512]).is_ok() {
            break;
        }
        if Instant::now() > deadline {
            return Err(io::Error::other("nsd does not answer"));
        }
    }
    let pids = descendants(child.id());
    Ok(Running { child, port, pids })
}

/// `pid` and every process below it.
fn descendants(pid: u32) -> Vec<u32> {
    let mut all = vec![pid];
    let mut at = 0;
    while at < all.len() {
        let children = Command::new("pgrep")
            .args(["-P", &all[at].to_string()])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        all.extend(
            children
                .split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
        at += 1;
    }
    all
}

/// dnsperf: `Queries completed: N (...)` and `Queries per second: R`.
fn parse_dnsperf(text: &str) -> Option<(f64, f64)> {
    let field = |label: &str| -> Option<f64> {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(label))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    Some((field("Queries per second:")?, field("Queries completed:")?))
}

fn dnsperf(port: u16, queries: &Path, clients: usize, seconds: u64) -> Command {
    let mut client = Command::new("taskset");
    client
        .args(["-c", "1", "dnsperf", "-s", "127.0.0.1"])
        .args(["-p", &port.to_string(), "-d"])
        .arg(queries)
        .args(["-c", &clients.to_string(), "-l", &seconds.to_string()]);
    client
}

fn start_nginx(dir: &Path) -> io::Result<Running> {
    let port = free_port()?;
    fs::create_dir_all(dir.join("logs"))?;
    let conf = dir.join("nginx.conf");
    fs::write(
        &conf,
        format!(
            "worker_processes 1; daemon off; master_process on;\n\
             error_log {dir}/logs/error.log; pid {dir}/nginx.pid;\n\
             events {{ worker_connections 4096; }}\n\
             http {{ access_log off; keepalive_requests 1000000;\n\
               server {{ listen 127.0.0.1:{port};\n\
                 location / {{ default_type text/plain; return 200 \"Hello, World!\"; }} }} }}\n",
            dir = dir.display()
        ),
    )?;
    let child = Command::new("taskset")
        .args(["-c", "0", "nginx", "-c"])
        .arg(&conf)
        .arg("-p")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    wait_for_port(port)?;
    // The worker does the serving; its CPU time is what counts.
    let children = Command::new("pgrep")
        .args(["-P", &child.id().to_string()])
        .output()?;
    let mut pids: Vec<u32> = String::from_utf8_lossy(&children.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    pids.push(child.id());
    Ok(Running { child, port, pids })
}

fn cpu_of(pids: &[u32]) -> f64 {
    pids.iter().filter_map(|&p| cpu_seconds(p).ok()).sum()
}

/// Runs `client` (on CPU 1) against `server`: requests/s, and the server's
/// CPU time per request. `parse` reads the client's rate and request count.
fn measure(
    server: &Running,
    client: &mut Command,
    parse: fn(&str) -> Option<(f64, f64)>,
) -> io::Result<(f64, f64)> {
    let before = cpu_of(&server.pids);
    let output = client.output()?;
    let after = cpu_of(&server.pids);
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    let (rate, requests) =
        parse(&text).ok_or_else(|| io::Error::other(format!("no figures in: {text}")))?;
    Ok((rate, (after - before) * 1e6 / requests.max(1.0)))
}

/// redis-benchmark -q -n N: `GET: 123456.79 requests per second, ...`; the
/// request count is the `-n` given, passed through the environment of the
/// parse (see `redis_benchmark`).
fn parse_redis_benchmark(text: &str) -> Option<(f64, f64)> {
    let last = text.rsplit('\r').next()?;
    let rate: f64 = last.split_whitespace().nth(1)?.parse().ok()?;
    let requests: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("requests="))?
        .trim()
        .parse()
        .ok()?;
    Some((rate, requests))
}

/// A redis-benchmark run of `test`, its output prefixed with the request
/// count (redis-benchmark -q does not print it).
fn redis_benchmark(
    port: u16,
    test: &str,
    requests: usize,
    connections: usize,
    pipeline: usize,
) -> Command {
    let mut client = Command::new("sh");
    client.args([
        "-c",
        &format!(
            "echo requests={requests}; taskset -c 1 redis-benchmark -q -d 64 -p {port} \
             -t {test} -n {requests} -c {connections} -P {pipeline}"
        ),
    ]);
    client
}

/// memcaslap: `Run time: 3.0s Ops: 362153 TPS: 120707 Net_rate: ...`.
fn parse_memcaslap(text: &str) -> Option<(f64, f64)> {
    let line = text.lines().find(|l| l.starts_with("Run time:"))?;
    let mut words = line.split_whitespace();
    let after = |words: &mut std::str::SplitWhitespace<'_>, label: &str| -> Option<f64> {
        words.find(|w| *w == label)?;
        words.next()?.parse().ok()
    };
    let requests = after(&mut words, "Ops:")?;
    let rate = after(&mut words, "TPS:")?;
    Some((rate, requests))
}

fn memcaslap(port: u16, connections: usize, seconds: u64) -> Command {
    let mut client = Command::new("taskset");
    client
        .args(["-c", "1", "memcaslap", "-T", "1"])
        .arg(format!("-s127.0.0.1:{port}"))
        .arg(format!("-c{connections}"))
        .arg(format!("-t{seconds}s"));
    client
}

/// wrk: `N requests in Ts` and `Requests/sec: R`; errors make it fail.
fn parse_wrk(text: &str) -> Option<(f64, f64)> {
    if text.contains("Non-2xx") || text.contains("Socket errors") {
        return None;
    }
    let requests: f64 = text
        .lines()
        .find(|l| l.contains(" requests in "))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let rate: f64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))?
        .trim()
        .parse()
        .ok()?;
    Some((rate, requests))
}

/// ab: `Complete requests: N` and `Requests per second: R`; failed
/// requests or other answers than 2xx make it fail.
fn parse_ab(text: &str) -> Option<(f64, f64)> {
    let field = |name: &str| -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    let clean = field("Failed requests:") == Some(0.0) && !text.contains("Non-2xx responses");
    clean.then_some((field("Requests per second:")?, field("Complete requests:")?))
}

/// ab for `seconds`, `connections` at a time, each request on a new
/// connection (no `-k`).
fn ab(port: u16, connections: usize, seconds: u64) -> Command {
    let mut client = Command::new("taskset");
    client.args(["-c", "1", "ab", "-q", "-n", "100000000"]);
    client
        .arg(format!("-c{connections}"))
        .arg(format!("-t{seconds}"))
        .arg(format!("http://127.0.0.1:{port}/"));
    client
}

fn wrk(port: u16, connections: usize, script: Option<&Path>, seconds: u64) -> Command {
    let mut client = Command::new("taskset");
    client.args(["-c", "1", "wrk", "-t1"]);
    client
        .arg(format!("-c{connections}"))
        .arg(format!("-d{seconds}s"));
    if let Some(script) = script {
        client.arg("-s").arg(script);
    }
    client.arg(format!("http://127.0.0.1:{port}/"));
    client
}

/// What `--help` prints: the commands of the doc above.
const USAGE: &str = "cargo build --release --examples\n\
cargo build --release -p selectloop-bench --bins\n\
target/release/protocols           # medians of 3, about 5 minutes\n\
target/release/protocols --quick   # one repeat of each point\n\
";

fn main() -> io::Result<()> {
    let quick = !selectloop_bench::switches(USAGE, &["--quick"]).is_empty();
    let repeats = if quick { 1 } else { 3 };
    let seconds = if quick { 2 } else { 3 };
    for (tool, package) in [
        ("redis-server", "redis-server"),
        ("redis-benchmark", "redis-tools"),
        ("nginx", "nginx-light"),
        ("wrk", "wrk"),
        ("ab", "apache2-utils"),
        ("memcached", "memcached"),
        ("memcaslap", "libmemcached-tools"),
        ("nsd", "nsd"),
        ("dnsperf", "dnsperf"),
        ("taskset", "util-linux"),
    ] {
        need(tool, package)?;
    }
    let root = repo_root()?;
    let examples = release_dir()?.join("examples");
    for example in [
        "resp_server",
        "http_server",
        "memcached_server",
        "dns_server",
    ] {
        if !examples.join(example).exists() {
            return Err(io::Error::other(format!(
                "{example} is not built: cargo build --release --examples"
            )));
        }
    }
    let work = std::env::temp_dir().join(format!("selectloop-protocols-{}", std::process::id()));
    fs::create_dir_all(&work)?;
    let pipeline_script = work.join("pipeline16.lua");
    fs::write(
        &pipeline_script,
        "init = function(args)\n  local r = {}\n  for i = 1, 16 do r[i] = wrk.format(nil, \"/\") end\n  \
         req = table.concat(r)\nend\nrequest = function() return req end\n",
    )?;
    let zone = root.join("examples/dns_server/example.test.zone");
    let queries = work.join("queries");
    fs::write(
        &queries,
        "www.example.test A\nwww.example.test AAAA\ntxt.example.test TXT\n\
         alias.example.test A\nnope.example.test A\n",
    )?;
    let mut samples = Vec::new();
    let mut record = |server: &'static str, bench: &str, connections, pipeline, (rate, cpu)| {
        println!(
            "{server:>12} {bench:>4} c={connections:<4} P={pipeline:<2} {rate:>10.0} req/s  \
             server cpu {cpu:6.2} us/req"
        );
        samples.push(Sample {
            server,
            bench: bench.to_string(),
            connections,
            pipeline,
            requests_per_s: rate,
            cpu_us_per_request: cpu,
        });
    };
    for connections in [50, 500] {
        for pipeline in [1, 16] {
            let requests =
                (if pipeline == 1 { 100_000 } else { 1_000_000 }) / (if quick { 2 } else { 1 });
            for _ in 0..repeats {
                for server in ["redis-server", "resp_server", "resp_server (uring)"] {
                    let running = match server {
                        "redis-server" => start_redis()?,
                        "resp_server" => start_example(&examples.join("resp_server"), &[])?,
                        _ => start_example(&examples.join("resp_server"), &["--backend", "uring"])?,
                    };
                    for test in ["SET", "GET"] {
                        let mut client = redis_benchmark(
                            running.port,
                            &test.to_lowercase(),
                            requests,
                            connections,
                            pipeline,
                        );
                        let figures = measure(&running, &mut client, parse_redis_benchmark)?;
                        record(server, test, connections, pipeline, figures);
                    }
                }
                for server in ["memcached", "memcached_server"] {
                    if pipeline > 1 {
                        break; // memcaslap sends one request at a time
                    }
                    let running = match server {
                        "memcached" => start_memcached()?,
                        _ => start_example(
                            &examples.join("memcached_server"),
                            &["--memory-mb", "1024"],
                        )?,
                    };
                    let mut client = memcaslap(running.port, connections, seconds);
                    let figures = measure(&running, &mut client, parse_memcaslap)?;
                    record(server, "get/set", connections, pipeline, figures);
                }
                for server in ["nsd", "dns_server"] {
                    if pipeline > 1 {
                        break; // one query per datagram
                    }
                    let running = match server {
                        "nsd" => start_nsd(&work.join("nsd"), &zone)?,
                        _ => start_example(
                            &examples.join("dns_server"),
                            &["--zone", &zone.to_string_lossy()],
                        )?,
                    };
                    let mut client = dnsperf(running.port, &queries, connections, seconds);
                    let figures = measure(&running, &mut client, parse_dnsperf)?;
                    record(server, "query", connections, pipeline, figures);
                }
                for server in ["nginx", "http_server", "http_server (uring)"] {
                    let running = match server {
                        "nginx" => start_nginx(&work.join("nginx"))?,
                        "http_server" => start_example(
                            &examples.join("http_server"),
                            &["--max-requests", "1000000000"],
                        )?,
                        _ => start_example(
                            &examples.join("http_server"),
                            &["--max-requests", "1000000000", "--backend", "uring"],
                        )?,
                    };
                    let script = (pipeline > 1).then_some(pipeline_script.as_path());
                    let mut client = wrk(running.port, connections, script, seconds);
                    let figures = measure(&running, &mut client, parse_wrk)?;
                    record(server, "GET /", connections, pipeline, figures);
                    if pipeline == 1 {
                        let mut client = ab(running.port, connections, seconds);
                        let figures = measure(&running, &mut client, parse_ab)?;
                        record(server, "GET / (close)", connections, pipeline, figures);
                    }
                }
            }
        }
    }
    let _ = fs::remove_dir_all(&work);
    write_results(&root, &samples)
}

/// The CSV, the table between the `protocols` markers, and the plot.
fn write_results(root: &Path, samples: &[Sample]) -> io::Result<()> {
    let out_dir = root.join("docs/benchmarks");
    fs::create_dir_all(&out_dir)?;
    let mut csv = String::from(
        "server,bench,connections,pipeline,requests_per_s,server_cpu_us_per_request\n",
    );
    for s in samples {
        let _ = writeln!(
            csv,
            "{},{},{},{},{:.0},{:.3}",
            s.server, s.bench, s.connections, s.pipeline, s.requests_per_s, s.cpu_us_per_request
        );
    }
    fs::write(out_dir.join("protocols.csv"), csv)?;

    // (peer, ours, bench, the plot's name for it); each row: medians
    // (min-max), and ours / peer.
    let pairs = [
        (
            "redis-server",
            "resp_server",
            "SET",
            "resp_server / redis-server, SET",
        ),
        (
            "redis-server",
            "resp_server",
            "GET",
            "resp_server / redis-server, GET",
        ),
        (
            "memcached",
            "memcached_server",
            "get/set",
            "memcached_server / memcached, 90% get",
        ),
        (
            "nsd",
            "dns_server",
            "query",
            "dns_server / nsd, UDP queries",
        ),
        (
            "nginx",
            "http_server",
            "GET /",
            "http_server / nginx, GET /",
        ),
        (
            "nginx",
            "http_server",
            "GET / (close)",
            "http_server / nginx, a connection per GET /",
        ),
        (
            "redis-server",
            "resp_server (uring)",
            "SET",
            "resp_server (uring) / redis-server, SET",
        ),
        (
            "redis-server",
            "resp_server (uring)",
            "GET",
            "resp_server (uring) / redis-server, GET",
        ),
        (
            "nginx",
            "http_server (uring)",
            "GET /",
            "http_server (uring) / nginx, GET /",
        ),
        (
            "nginx",
            "http_server (uring)",
            "GET / (close)",
            "http_server (uring) / nginx, a connection per GET /",
        ),
    ];
    let median = |server: &str, bench: &str, c: usize, p: usize, field: fn(&Sample) -> f64| {
        let mut values: Vec<f64> = samples
            .iter()
            .filter(|s| {
                s.server == server && s.bench == bench && s.connections == c && s.pipeline == p
            })
            .map(field)
            .collect();
        (!values.is_empty()).then(|| median_min_max(&mut values))
    };
    let mut table = format!(
        "Measured {} on {}; server on CPU 0, client on CPU 1; medians of the runs, \
         min-max below.\n\n\
         | bench | connections | pipeline | peer | req/s | server CPU us/req | selectloop | req/s (× peer) | server CPU us/req (× peer) |\n\
         |---|---:|---:|---|---:|---:|---|---:|---:|\n",
        env_date(),
        machine()
    );
    let mut series = Vec::new();
    for (peer, ours, bench, name) in pairs {
        let mut ratio_points = Vec::new();
        for c in [50, 500] {
            for p in [1, 16] {
                let rate = |s: &Sample| s.requests_per_s;
                let cpu = |s: &Sample| s.cpu_us_per_request;
                let (Some(pr), Some(pc), Some(or), Some(oc)) = (
                    median(peer, bench, c, p, rate),
                    median(peer, bench, c, p, cpu),
                    median(ours, bench, c, p, rate),
                    median(ours, bench, c, p, cpu),
                ) else {
                    continue;
                };
                let _ = writeln!(
                    table,
                    "| {bench} | {c} | {p} | {peer} | {:.0}<br>{:.0}–{:.0} | {:.2} | {ours} | {:.0} (×{:.2})<br>{:.0}–{:.0} | {:.2} (×{:.2}) |",
                    pr.0, pr.1, pr.2, pc.0, or.0, or.0 / pr.0, or.1, or.2, oc.0, oc.0 / pc.0
                );
                ratio_points.push(((c * p) as f64, or.0 / pr.0));
            }
        }
        ratio_points.sort_by(|a, b| a.0.total_cmp(&b.0));
        series.push((name, ratio_points));
    }
    table.push_str(
        "\n![selectloop's protocol servers against their peers](benchmarks/protocols.svg)\n\n",
    );
    write_between_markers(&root.join("docs/benchmarks.md"), "protocols", &table)?;
    plot_lines(
        &out_dir.join("protocols.svg"),
        "Requests/s, selectloop's server / its peer",
        "connections × pipeline depth",
        "ratio (1.0 = as fast as the peer)",
        &series,
        YScale::Linear,
    )?;
    println!(
        "wrote docs/benchmarks/protocols.csv, protocols.svg and the table in docs/benchmarks.md"
    );
    Ok(())
}
