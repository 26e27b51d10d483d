//! The interactive client of the seed notes, for the `select_server` example.
//!
//! ```text
//! cargo run --example select_client                      # 127.0.0.1:8088
//! cargo run --example select_client -- --addr 127.0.0.1:40000
//! printf 'hi\nq\n' | cargo run --example select_client   # scripted
//! ```
//!
//! Prints the greeting, then sends each line typed at the `>>> ` prompt and
//! prints the answer; `q` (or the end of input) quits. Like the Python client,
//! it reads one answer with one `recv(1024)`: the protocol has no framing.
//! Unlike it, an empty line is not sent (the Python client would send nothing
//! and then wait forever for an answer).

use std::io::{self, BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;

mod common;

fn main() -> ExitCode {
    match talk() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("select_client: {e}");
            ExitCode::FAILURE
        }
    }
}

fn talk() -> io::Result<()> {
    let addr = parse_addr()?;
    // Python: `sk = socket.socket(); sk.connect(addr)`
    let mut sk = TcpStream::connect(addr).map_err(|e| {
        let reason = e.to_string();
        let reason = reason
            .split(" (os error")
            .next()
            .unwrap_or("")
            .to_lowercase();
        io::Error::new(e.kind(), format!("cannot connect to {addr}: {reason}"))
    })?;
    let mut buf = [0u8; 1024];

    // Python: `print(sk.recv(1024).decode())`
    let n = sk.read(&mut buf)?;
    println!("{}", String::from_utf8_lossy(&buf[..n]));

    let stdin = io::stdin();
    let mut stdout = io::stdout();
    let mut line = String::new();
    loop {
        // Python: `inp = input(">>> ")`
        print!(">>> ");
        stdout.flush()?;
        line.clear();
        if stdin.lock().read_line(&mut line)? == 0 {
            println!();
            break; // end of input: quit as `q` would
        }
        let inp = line.trim_end_matches(['\r', '\n']);
        if inp == "q" {
            break;
        }
        if inp.is_empty() {
            continue;
        }
        // Python: `sk.sendall(bytes(inp, encoding="utf-8")); print(sk.recv(1024))`
        sk.write_all(inp.as_bytes())?;
        let n = sk.read(&mut buf)?;
        if n == 0 {
            println!("server closed the connection");
            break;
        }
        println!("{}", String::from_utf8_lossy(&buf[..n]));
    }
    Ok(())
}

/// `--addr HOST:PORT`, default 127.0.0.1:8088.
fn parse_addr() -> io::Result<SocketAddr> {
    use lexopt::prelude::*;
    let mut addr: SocketAddr = ([127, 0, 0, 1], 8088).into();
    let mut parser = lexopt::Parser::from_env();
    let invalid = |e: lexopt::Error| io::Error::new(io::ErrorKind::InvalidInput, e.to_string());
    while let Some(arg) = parser.next().map_err(invalid)? {
        match arg {
            Long("addr") => addr = common::addr(&mut parser)?,
            Long("help") | Short('h') => common::print_help(
                "usage: select_client [--addr HOST:PORT]\n\n\
                 Talks to select_server as the seed's client does: reads the greeting,\n\
                 then sends each line typed and prints the answer; `q` quits.\n\
                 \x20 --addr HOST:PORT   the server (default 127.0.0.1:8088)\n\
                 \x20 -h, --help         this text\n",
            ),
            other => return Err(invalid(other.unexpected())),
        }
    }
    Ok(addr)
}
