//! The real clients the tests drive, in one list: `cargo xtask test` reads
//! it to install what is missing, and the tests (through [`super::tool`])
//! read it to say what to run when a tool is not there.
//!
//! A test that runs a program not listed here fails, so the list cannot
//! fall behind the tests.

/// A program the tests run, and the package that provides it.
#[derive(Debug, Clone, Copy)]
pub struct Tool {
    /// The command, as looked up on `PATH`.
    pub command: &'static str,
    /// The Debian and Ubuntu package that installs it.
    pub debian_package: &'static str,
    /// What the tests use it for, in a few words.
    pub used_for: &'static str,
}

/// Every program outside the Rust toolchain that `cargo test` runs.
pub const TOOLS: &[Tool] = &[
    Tool {
        command: "redis-cli",
        debian_package: "redis-tools",
        used_for: "speaks to resp_server as a Redis user would",
    },
    Tool {
        command: "redis-benchmark",
        debian_package: "redis-tools",
        used_for: "loads resp_server, plain and pipelined",
    },
    Tool {
        command: "redis-server",
        debian_package: "redis-server",
        used_for: "the reference resp_server's replies are compared with",
    },
    Tool {
        command: "curl",
        debian_package: "curl",
        used_for: "fetches from http_server",
    },
    Tool {
        command: "ab",
        debian_package: "apache2-utils",
        used_for: "loads http_server with keep-alive",
    },
    Tool {
        command: "wrk",
        debian_package: "wrk",
        used_for: "loads http_server with pipelined connections",
    },
    Tool {
        command: "dig",
        debian_package: "bind9-dnsutils",
        used_for: "asks dns_server, over UDP and TCP",
    },
    Tool {
        command: "memccapable",
        debian_package: "libmemcached-tools",
        used_for: "libmemcached's conformance check, run against memcached_server",
    },
    Tool {
        command: "memcached",
        debian_package: "memcached",
        used_for: "the reference memcached_server's replies are compared with",
    },
    Tool {
        command: "python3",
        debian_package: "python3",
        used_for: "runs the seed's server and client, examples/*.py",
    },
];

/// The listed tool called `command`, if the list has it.
pub fn find(command: &str) -> Option<&'static Tool> {
    TOOLS.iter().find(|tool| tool.command == command)
}

/// Whether `command` is an executable file in one of `PATH`'s folders.
pub fn is_installed(command: &str) -> bool {
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| is_executable(&dir.join(command)))
}

#[cfg(unix)]
fn is_executable(file: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(file)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(file: &std::path::Path) -> bool {
    file.is_file() || file.with_extension("exe").is_file()
}
