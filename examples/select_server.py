#!/usr/bin/env python3
"""The seed's select() echo server, as the notes teach it: the Python
program that `examples/select_server.rs` ports, kept here so the book's
comparisons and the benchmarks' Python column work from a fresh clone.

    python3 examples/select_server.py --addr 127.0.0.1:8088

Protocol: on connect the server sends b"Hello client-side"; each chunk a
client sends (one recv(1024)) is answered with b"response: " + chunk.

The algorithm is the seed's, flaws included, so that they can be shown and
measured rather than told (the Rust port fixes each one):

  * message[w].pop() answers the NEWEST waiting chunk first (LIFO);
  * a socket is appended to outputs once per chunk, and a client that leaves
    while an answer is due makes message[w] raise KeyError, which stops the
    whole server;
  * a departed socket leaves inputs but is never closed (its descriptor
    leaks);
  * a "message" is whatever one recv(1024) returned: b"one" and b"two" sent
    back to back may come back as b"response: onetwo";
  * listen(5), unbounded queues, and select() itself, which cannot watch a
    descriptor numbered 1,024 or more (FD_SETSIZE): past that it raises
    ValueError and the server stops.

Two additions, for tests and benchmarks: `--addr` (port 0 picks a free
port; the first line printed is `listening on HOST:PORT`), and `--quiet`,
which drops the seed's per-loop line (inputs, readable, writable, outputs).
Standard library only.
"""

import argparse
import select
import socket
import sys


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addr", default="127.0.0.1:8088", help="HOST:PORT to listen on")
    parser.add_argument("--quiet", action="store_true", help="no line per loop")
    args = parser.parse_args()
    host, _, port = args.addr.rpartition(":")

    sk = socket.socket()
    sk.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sk.bind((host, int(port)))
    sk.listen(5)
    bound_host, bound_port = sk.getsockname()[:2]
    print(f"listening on {bound_host}:{bound_port}", flush=True)

    # ANCHOR: loop
    inputs = [sk]  # watched for reading: the listener and every connection
    outputs = []  # sockets with an answer due, once per chunk received
    message = {}  # socket -> chunks received and not yet answered

    while True:
        # Readable among inputs, writable among outputs; at most 1 s.
        rlist, wlist, _ = select.select(inputs, outputs, [], 1)
        if not args.quiet:
            print(len(inputs), len(rlist), len(wlist), len(outputs), flush=True)
        for r in rlist:
            if r is sk:  # the listener: a new client
                conn, _peer = r.accept()
                inputs.append(conn)
                message[conn] = []
                conn.sendall(b"Hello client-side")
            else:  # a connection: a chunk, or end of input
                try:
                    chunk = r.recv(1024)
                    if not chunk:
                        raise ConnectionError("disconnected")
                    outputs.append(r)
                    message[r].append(chunk)
                except OSError:
                    inputs.remove(r)
                    del message[r]
        for w in wlist:  # writable with an answer due
            chunk = message[w].pop()
            w.sendall(b"response: " + chunk)
            outputs.remove(w)
    # ANCHOR_END: loop


if __name__ == "__main__":
    sys.exit(main())
