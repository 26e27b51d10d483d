//! `cargo xtask wine`: the crate on Windows, checked here. Cross-compiles
//! the library's unit tests, the integration tests (`tests/it`) and the
//! examples for x86_64-pc-windows-gnu (Debian's mingw-w64 links them),
//! runs the tests under Wine, then serves the seed's Python client from
//! `select_server.exe` on each backend (the client runs here, the server
//! under Wine, on loopback).
//!
//! Wine 8 lacks `bcryptprimitives.dll`, from which Rust's standard
//! library imports `ProcessPrng`: a stand-in (`.ci/wine/bcryptprimitives.c`,
//! on `RtlGenRandom`) is built and put beside the binaries.
//!
//! Tests that cannot pass there are skipped by name, each with its reason
//! ([`SKIPPED`]); everything else must pass.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use crate::tools::Tool;

const TARGET: &str = "x86_64-pc-windows-gnu";

/// Debian's Wine loader for 64-bit Windows programs (not on `PATH`).
const WINE: &str = "/usr/lib/wine/wine64";

/// What the Windows build and its run need beside Rust.
const LINKER: Tool = Tool {
    command: "x86_64-w64-mingw32-gcc",
    debian_package: "gcc-mingw-w64-x86-64",
    used_for: "links the Windows binaries",
};
const WINE_PACKAGE: Tool = Tool {
    command: WINE,
    debian_package: "wine64",
    used_for: "runs the Windows tests",
};
/// Wine's standard suite (a recommendation of `wine64`, which the
/// installer does not take by itself): what sets a prefix up.
const WINE_SUITE: Tool = Tool {
    command: "/usr/bin/wine",
    debian_package: "wine",
    used_for: "sets up Wine's prefix",
};

/// Tests skipped under Wine (a name, or the start of one), and why.
const SKIPPED: &[(&str, &str)] = &[
    // The real clients the tests drive are Linux programs: a Windows
    // process cannot start them.
    ("examples::python_", "runs python3 (the Python client is checked from outside, below)"),
    ("http_server::ab_keep_alive", "runs ab and wrk"),
    ("http_server::curl_", "runs curl"),
    ("http_server::large_files", "runs curl"),
    ("resp_server::info_answers", "runs redis-cli"),
    ("resp_server::redis_", "runs redis-cli and redis-benchmark"),
    ("dns_server::", "runs dig"),
    // The example is Unix's select(2) itself and refuses to start.
    ("select_literal::", "select_literal is Unix-only"),
    // Winsock's fd_set holds 64 sockets: these select cases hold more.
    ("mass::two_hundred_connections", "200 connections on select: FD_SETSIZE is 64"),
    ("scale::burst_of_connections_beyond_a_backlog_of_five_is_accepted::select", "100 connections on select: FD_SETSIZE is 64"),
    ("scale::more_than_1024_clients_are_each_answered::select", "1,100 connections on select: FD_SETSIZE is 64"),
    ("threads::a_thousand_jobs_from_100_connections", "100 connections on select: FD_SETSIZE is 64"),
    ("limits::slowloris_clients_are_closed_by_the_message_deadline_while_others_are_served::select", "more than 64 connections on select"),
    // Wine's own limits, not Windows's.
    ("datagrams::a_udp_flood_does_not_starve_the_stream_clients", "Wine receives about one datagram in sixty of a loopback flood: a turn's budget never fills"),
];

/// Runs the task; extra arguments go to every test binary (a filter).
pub fn run(root: &Path, args: &[OsString]) -> ExitCode {
    match run_all(root, args) {
        Ok(()) => {
            println!("xtask wine: everything passed");
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("xtask wine: {why}");
            ExitCode::FAILURE
        }
    }
}

fn run_all(root: &Path, args: &[OsString]) -> Result<(), String> {
    set_up()?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target_dir = root.join("target");
    let shim = build_shim(root, &target_dir)?;
    let step = |what: &str, cargo_args: &[&str]| {
        println!("xtask wine: {what}");
        let status = Command::new(&cargo)
            .args(cargo_args)
            .args(["--quiet", "--target", TARGET])
            .current_dir(root)
            .status()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        status
            .success()
            .then_some(())
            .ok_or_else(|| format!("{what} failed: {status}"))
    };
    step("building the examples", &["build", "--examples"])?;
    step(
        "building the tests",
        &["test", "--no-run", "--lib", "--test", "it"],
    )?;
    let profile_dir = target_dir.join(TARGET).join("debug");
    for dir in ["deps", "examples"] {
        std::fs::copy(&shim, profile_dir.join(dir).join("bcryptprimitives.dll"))
            .map_err(|e| format!("cannot place the stand-in DLL: {e}"))?;
    }
    let prefix = target_dir.join("wine").join("prefix");
    wine_server(&prefix, "-p60");
    make_prefix(&prefix)?;
    let mut failed = Vec::new();
    for binary in ["selectloop", "it"] {
        let exe = newest(&profile_dir.join("deps"), binary)?;
        println!("xtask wine: running {} under Wine", exe.display());
        let mut command = wine(&prefix);
        command.arg(&exe).args(["--test-threads", "4"]).args(args);
        for (name, _) in SKIPPED {
            command.args(["--skip", name]);
        }
        let status = command
            .status()
            .map_err(|e| format!("cannot run Wine: {e}"))?;
        if !status.success() {
            failed.push(binary);
        }
    }
    println!("xtask wine: skipped there, and why:");
    for (name, why) in SKIPPED {
        println!("  {name}: {why}");
    }
    let served = python_client_against_select_server(root, &profile_dir, &prefix);
    wine_server(&prefix, "-k");
    if !failed.is_empty() {
        return Err(format!("tests failed under Wine: {}", failed.join(", ")));
    }
    served
}

/// Installs the linker and Wine where missing, and the Rust target.
fn set_up() -> Result<(), String> {
    let needed = [LINKER, WINE_PACKAGE, WINE_SUITE];
    let missing: Vec<Tool> = needed
        .into_iter()
        .filter(|tool| !is_there(tool.command))
        .collect();
    if !missing.is_empty() {
        let installer = crate::package_installer()?;
        crate::install(&installer, &missing);
    }
    if let Some(tool) = needed.iter().find(|t| !is_there(t.command)) {
        return Err(format!(
            "{} is missing ({}): install it, on Debian or Ubuntu with `apt-get install {}`",
            tool.command, tool.used_for, tool.debian_package
        ));
    }
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run rustup: {e}"))?;
    status
        .success()
        .then_some(())
        .ok_or_else(|| format!("rustup target add {TARGET} failed"))
}

fn is_there(command: &str) -> bool {
    if command.starts_with('/') {
        Path::new(command).exists()
    } else {
        crate::tools::is_installed(command)
    }
}

/// Builds the stand-in `bcryptprimitives.dll` (see the module's text).
fn build_shim(root: &Path, target_dir: &Path) -> Result<PathBuf, String> {
    let out = target_dir.join("wine");
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let dll = out.join("bcryptprimitives.dll");
    let status = Command::new(LINKER.command)
        .args(["-O2", "-shared", "-o"])
        .arg(&dll)
        .arg(root.join(".ci/wine/bcryptprimitives.c"))
        .status()
        .map_err(|e| format!("cannot run {}: {e}", LINKER.command))?;
    if !status.success() {
        return Err(format!("building the stand-in DLL failed: {status}"));
    }
    Ok(dll)
}

/// The newest `NAME-HASH.exe` in `deps`: the test binary just built.
fn newest(deps: &Path, name: &str) -> Result<PathBuf, String> {
    let prefix = format!("{name}-");
    std::fs::read_dir(deps)
        .map_err(|e| format!("cannot read {}: {e}", deps.display()))?
        .filter_map(Result::ok)
        .filter(|entry| {
            let file = entry.file_name();
            let file = file.to_string_lossy();
            file.starts_with(&prefix) && file.ends_with(".exe")
        })
        .max_by_key(|entry| entry.metadata().and_then(|m| m.modified()).ok())
        .map(|entry| entry.path())
        .ok_or_else(|| format!("no {name} test binary in {}", deps.display()))
}

/// Wine, in a prefix of the project's own, quiet, without offering to
/// install Mono or Gecko.
fn wine(prefix: &Path) -> Command {
    let mut command = Command::new(WINE);
    command
        .env("WINEPREFIX", prefix)
        .env("WINEDEBUG", "-all")
        .env("WINEDLLOVERRIDES", "mscoree,mshtml=");
    command
}

/// Makes the prefix before any test runs in it. Left to the first
/// program, Wine makes it while that program starts, and the program may
/// look for `kernel32.dll` before it is there ("could not load
/// kernel32.dll, status c0000135": the whole binary's tests fail).
fn make_prefix(prefix: &Path) -> Result<(), String> {
    let kernel32 = prefix.join("drive_c/windows/system32/kernel32.dll");
    let settings = prefix.join("system.reg");
    if kernel32.exists() && settings.exists() {
        return Ok(());
    }
    println!("xtask wine: making the prefix");
    let _ = wine(prefix)
        .args(["wineboot", "--init"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    // wineboot may hand the last of it to other processes: wait for the
    // files the programs load.
    let give_up_at = Instant::now() + Duration::from_secs(120);
    while !(kernel32.exists() && settings.exists()) {
        if Instant::now() > give_up_at {
            return Err(format!(
                "Wine did not make its prefix in {}",
                prefix.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// Runs the prefix's Wine server with `option`, its output to nowhere:
/// `-p60` starts it apart (it stays a minute after its last client;
/// started by the first Wine program, it would write to the tests' output,
/// listing the objects of each process killed at the end), `-k` stops it
/// and what still runs in it. Either is tidiness: a failure is ignored.
fn wine_server(prefix: &Path, option: &str) {
    // The server needs its prefix's directory; Wine fills an empty one.
    let _ = std::fs::create_dir_all(prefix);
    let _ = Command::new("/usr/lib/wine/wineserver")
        .arg(option)
        .env("WINEPREFIX", prefix)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The seed's Python client (run here) against `select_server.exe` (under
/// Wine) on each backend: the greeting, then an answer per word.
fn python_client_against_select_server(
    root: &Path,
    profile_dir: &Path,
    prefix: &Path,
) -> Result<(), String> {
    let server_exe = profile_dir.join("examples").join("select_server.exe");
    for backend in ["epoll", "poll", "select"] {
        let mut server = KillOnDrop(
            wine(prefix)
                .arg(&server_exe)
                .args(["--addr", "127.0.0.1:0", "--backend", backend])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot start select_server under Wine: {e}"))?,
        );
        let addr = listening_address(&mut server.0)?;
        let output = Command::new("python3")
            .arg(root.join("examples/select_client.py"))
            .args(["--addr", &addr, "one", "two"])
            .output()
            .map_err(|e| format!("cannot run python3: {e}"))?;
        let said = String::from_utf8_lossy(&output.stdout);
        let expected = "Hello client-side\nresponse: one\nresponse: two\n";
        if !output.status.success() || said != expected {
            return Err(format!(
                "the Python client against select_server.exe --backend {backend}: {:?}, said {said:?}, {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        println!("xtask wine: select_server.exe --backend {backend} served the Python client");
    }
    Ok(())
}

/// Reads `listening on ADDR`, the server's first line (60 s at most: the
/// first Wine start creates its prefix).
fn listening_address(server: &mut Child) -> Result<String, String> {
    let stdout = server.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let started = Instant::now();
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .map_err(|_| format!("select_server.exe said nothing in {:?}", started.elapsed()))?;
    line.trim_end()
        .strip_prefix("listening on ")
        .map(str::to_string)
        .ok_or_else(|| format!("select_server.exe began with {line:?}"))
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
