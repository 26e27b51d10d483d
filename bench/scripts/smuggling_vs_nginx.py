#!/usr/bin/env python3
"""Request-smuggling vectors sent to nginx and to http_server side by side.

Each vector goes to both servers on a fresh connection; the script prints
the statuses each answered and flags any vector where http_server served
(answered below 400) more requests than nginx. nginx stands in for a
front proxy here: where it sees one request, http_server must not see two.

    cargo build --example http_server
    python3 bench/scripts/smuggling_vs_nginx.py target/debug/examples/http_server

Needs nginx (Debian's nginx-light). Everything listens on 127.0.0.1,
ports picked by the system; both servers are stopped at the end.
"""
import os, re, socket, subprocess, sys, tempfile, time

S = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
P = "POST /echo HTTP/1.1\r\nHost: a\r\n"
vectors = {
 "bare LF in chunk ext": P + "Transfer-Encoding: chunked\r\n\r\n2;\nxx\r\n3c\r\n" + ("0\r\n\r\n" + S + S)[:60] + "\r\n0\r\n\r\n",
 "trailer ended by bare LF": P + "Transfer-Encoding: chunked\r\n\r\n0\r\n\n" + S,
 "empty chunk-size line": P + "Transfer-Encoding: chunked\r\n\r\n\r\n" + S,
 "TE in HTTP/1.0": "POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + S,
 "CL +5": P + "Content-Length: +5\r\n\r\nhello" + S,
 "CL nbsp": P + "Content-Length: 5\u00a0\r\n\r\nhello" + S,
 "TE twice": P + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + S,
 "CL.TE": P + "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG" + S,
 "TE.CL": P + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n" + S,
 "xchunked": P + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + S,
 "TE space colon": P + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n" + S,
 "TE vtab": P + "Transfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n" + S,
 "chunked, identity": P + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + S,
 "obs-fold TE": P + "X: y\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + S,
 "CL twice": P + "Content-Length: 0\r\nContent-Length: 0\r\n\r\n" + S,
 "CL list": P + "Content-Length: 5, 5\r\n\r\nhello" + S,
 "bare LF head": "GET / HTTP/1.1\nHost: a\n\n" + S,
 "chunk overflow": P + "Transfer-Encoding: chunked\r\n\r\n10000000000000003\r\nabc\r\n0\r\n\r\n" + S,
 "chunk no CRLF": P + "Transfer-Encoding: chunked\r\n\r\n3\r\nabc0\r\n\r\n" + S,
 "no host": "GET / HTTP/1.1\r\n\r\n" + S,
 "two hosts": "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n" + S,
 "good pipeline": P + "Transfer-Encoding: chunked\r\n\r\n2;a=b\r\nxx\r\n0\r\nX-T: 1\r\n\r\n" + S + P + "Content-Length: 5\r\n\r\nhello" + S,
 "chunk ext bare CR": P + "Transfer-Encoding: chunked\r\n\r\n2;a\rb\r\nxx\r\n0\r\n\r\n" + S,
 "chunk size trailing space": P + "Transfer-Encoding: chunked\r\n\r\n2 \r\nxx\r\n0\r\n\r\n" + S,
}

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ask(port, wire):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(1.5)
    s.sendall(wire.encode("latin-1"))
    data = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    except (socket.timeout, ConnectionResetError):
        pass
    s.close()
    return [int(x) for x in re.findall(rb"HTTP/1\.[01] (\d{3})", data)]


def main():
    server = sys.argv[1] if len(sys.argv) > 1 else "target/debug/examples/http_server"
    work = tempfile.mkdtemp(prefix="smuggling-")
    nginx_port = free_port()
    conf = os.path.join(work, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""worker_processes 1; daemon off; error_log {work}/error.log; pid {work}/nginx.pid;
events {{ worker_connections 64; }}
http {{ access_log off; client_body_temp_path {work}/body;
  server {{ listen 127.0.0.1:{nginx_port}; location / {{ return 200 "ok\\n"; }} }} }}
""")
    nginx = subprocess.Popen(["nginx", "-c", conf])
    ours = subprocess.Popen([server, "--addr", "127.0.0.1:0"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        port = int(ours.stdout.readline().strip().rsplit(":", 1)[1])
        time.sleep(0.5)  # nginx binds
        worse = 0
        for name, wire in vectors.items():
            theirs, mine = ask(nginx_port, wire), ask(port, wire)
            more = len([s for s in mine if s < 400]) > len([s for s in theirs if s < 400])
            worse += more
            print(f"{name:28s} nginx {theirs!s:22s} http_server {mine!s:22s}{'  <-- more' if more else ''}")
        print(f"{len(vectors)} vectors; http_server served more requests than nginx on {worse}")
        return 1 if worse else 0
    finally:
        nginx.terminate()
        ours.terminate()
        nginx.wait()
        ours.wait()


if __name__ == "__main__":
    sys.exit(main())
