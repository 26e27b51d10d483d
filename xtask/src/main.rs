//! The project's own tasks, run as `cargo xtask TASK` (the alias is in
//! `.cargo/config.toml`):
//!
//! - `cargo xtask test [ARGS]`: the README's test command. Looks for every
//!   real client the tests drive, installs the
//!   missing ones from the distribution's packages where it can (Debian or
//!   Ubuntu, as root or with password-less sudo), says in one sentence per
//!   tool what to install where it cannot, then runs `cargo test ARGS`.
//!   The list is `tests/util/tools.rs`, which the tests read too.
//! - `cargo xtask tools`: the same set-up, without the tests.
//! - `cargo xtask exercises [NAME...]`: checks the reader's answers to the
//!   book's exercises (`exercises/`), each against its tests.
//! - `cargo xtask wine [FILTER]`: the Windows build's tests, run under
//!   Wine (installs mingw-w64 and Wine where missing); see `wine.rs`.
//! - `cargo xtask mutants [ARGS]`: mutation testing (cargo-mutants) of the
//!   files whose every rule a unit test must pin: the connection's state
//!   machines, buffers and decoder checks, the timers and the sweep, the
//!   codecs. Each surviving mutant is a behaviour no test holds. Not part
//!   of CI: it rebuilds the crate once per mutant (about half an hour on
//!   two cores); the report is in `mutants.out/`.
//!
//! Plain `cargo test` works as well once the tools are there; a test whose
//! tool is missing fails and names `cargo xtask test`.

// The one list of tools, shared with the tests (their helpers name
// `cargo xtask test` when one is missing).
#[path = "../../tests/util/tools.rs"]
#[allow(dead_code)] // `find` serves the tests
mod tools;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use tools::{Tool, TOOLS};

mod exercises;
mod wine;

const USAGE: &str = "\
cargo xtask test [ARGS]   install the real clients the tests drive where missing,
                          then run `cargo test ARGS` (every test)
cargo xtask tools         install the missing clients only, and list them all
cargo xtask exercises [NAME...]  check your answers to the book's exercises
                          (exercises/NAME.rs), each against its tests
cargo xtask wine [FILTER]   the Windows tests, cross-compiled and run under Wine
cargo xtask mutants [ARGS]  mutation testing of the core files (cargo-mutants, ~30 min)
cargo xtask help          this text";

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let task = args.next();
    let rest: Vec<OsString> = args.collect();
    match task.as_ref().and_then(|task| task.to_str()) {
        Some("test") => {
            set_up_tools();
            run_tests(&rest)
        }
        Some("tools") if rest.is_empty() => {
            if set_up_tools() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Some("mutants") => run_mutants(&rest),
        Some("wine") => wine::run(&workspace_root(), &rest),
        Some("exercises") => {
            let asked: Vec<String> = rest
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            exercises::run(&workspace_root(), &asked)
        }
        Some("help" | "--help" | "-h") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("xtask: unknown task {task:?}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// Installs what is missing where it can, and says what is still missing.
/// True when every tool is there afterwards.
fn set_up_tools() -> bool {
    let missing = missing_tools();
    if missing.is_empty() {
        println!("xtask: all {} test clients found", TOOLS.len());
        return true;
    }
    let names: Vec<&str> = missing.iter().map(|tool| tool.command).collect();
    println!("xtask: missing {}", names.join(", "));
    match package_installer() {
        Ok(installer) => install(&installer, &missing),
        Err(why) => println!("xtask: cannot install them here: {why}"),
    }
    let still_missing = missing_tools();
    for tool in &still_missing {
        // One sentence per tool, enough to act on without reading code.
        println!(
            "xtask: {} is missing ({}): install it, on Debian or Ubuntu with `apt-get install {}`; \
             its tests fail until then.",
            tool.command, tool.used_for, tool.debian_package
        );
    }
    if still_missing.is_empty() {
        println!("xtask: installed {}", names.join(", "));
    }
    still_missing.is_empty()
}

fn missing_tools() -> Vec<Tool> {
    TOOLS
        .iter()
        .filter(|tool| !tools::is_installed(tool.command))
        .copied()
        .collect()
}

/// The command line that runs `apt-get` with the rights to install:
/// `apt-get` itself as root, `sudo -n apt-get` where sudo needs no password.
fn package_installer() -> Result<Vec<String>, String> {
    if !tools::is_installed("apt-get") {
        return Err("no apt-get (not Debian or Ubuntu)".into());
    }
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.status.success() && out.stdout.trim_ascii() == b"0");
    if is_root {
        return Ok(vec!["apt-get".into()]);
    }
    let has_sudo = tools::is_installed("sudo")
        && Command::new("sudo")
            .args(["-n", "true"])
            .status()
            .is_ok_and(|status| status.success());
    if has_sudo {
        return Ok(vec!["sudo".into(), "-n".into(), "apt-get".into()]);
    }
    Err("not root, and sudo asks for a password".into())
}

fn install(installer: &[String], missing: &[Tool]) {
    let mut packages: Vec<&str> = missing.iter().map(|tool| tool.debian_package).collect();
    packages.sort_unstable();
    packages.dedup();
    println!(
        "xtask: {} install {}",
        installer.join(" "),
        packages.join(" ")
    );
    // apt-get's progress is noise when it works; its output is shown
    // when it fails.
    let apt_get = |args: &[&str]| {
        let output = Command::new(&installer[0])
            .args(&installer[1..])
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output();
        match output {
            Ok(output) if output.status.success() => true,
            Ok(output) => {
                println!("xtask: apt-get {} failed: {}", args[0], output.status);
                print!("{}", String::from_utf8_lossy(&output.stdout));
                print!("{}", String::from_utf8_lossy(&output.stderr));
                false
            }
            Err(error) => {
                println!("xtask: could not run {}: {error}", installer[0]);
                false
            }
        }
    };
    // A fresh machine's package lists may be empty or stale: update first.
    if apt_get(&["update", "-qq"]) {
        let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
        args.extend(&packages);
        apt_get(&args);
    }
}

/// Runs `cargo test ARGS` in the workspace root and passes its exit status on.
fn run_tests(args: &[OsString]) -> ExitCode {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    println!("xtask: cargo test {}", display(args));
    let status = Command::new(cargo)
        .arg("test")
        .args(args)
        .current_dir(workspace_root())
        .status();
    match status {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(status) => {
            let code = status.code().unwrap_or(1).clamp(1, 255);
            ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
        Err(error) => {
            eprintln!("xtask: could not run cargo: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The files `cargo xtask mutants` mutates: the rules that unit tests, run
/// in well under a minute, must pin one by one.
const MUTATED: &[&str] = &[
    "src/conn/state.rs",
    "src/conn/buffer.rs",
    "src/conn/conn.rs",
    "src/conn/decode.rs",
    "src/conn/turn.rs",
    "src/conn/output.rs",
    "src/sources/datagram.rs",
    "src/sources/mmsg.rs",
    "src/schedule/timer.rs",
    "src/schedule/sweeper.rs",
    "src/codec/*.rs",
];

/// Runs cargo-mutants on [`MUTATED`] with the unit tests, in the
/// `mutants` profile (unoptimised: quicker rebuilds).
fn run_mutants(args: &[OsString]) -> ExitCode {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let installed = Command::new(&cargo)
        .args(["mutants", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        eprintln!(
            "xtask: cargo-mutants is missing: install it with \
             `cargo install --locked cargo-mutants`"
        );
        return ExitCode::FAILURE;
    }
    let mut command = Command::new(cargo);
    command.args(["mutants", "--profile", "mutants", "--jobs", "2"]);
    for file in MUTATED {
        command.args(["--file", file]);
    }
    command.args(args).args(["--", "--lib"]);
    println!("xtask: cargo mutants on {} (unit tests)", MUTATED.join(" "));
    match command.current_dir(workspace_root()).status() {
        // cargo-mutants exits 2 when mutants survive: the report says which.
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(status) => ExitCode::from(u8::try_from(status.code().unwrap_or(1)).unwrap_or(1)),
        Err(error) => {
            eprintln!("xtask: could not run cargo mutants: {error}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    let xtask_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask_dir.parent().unwrap_or(xtask_dir).to_path_buf()
}

fn display(args: &[OsString]) -> String {
    let words: Vec<_> = args.iter().map(|arg| arg.to_string_lossy()).collect();
    words.join(" ")
}
