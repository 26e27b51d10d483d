#!/usr/bin/env python3
"""The seed's select() client, as a learner runs it against select_server.

    python3 examples/select_client.py --addr 127.0.0.1:8088 hello world

Connects, prints the greeting, then sends each word given and prints the
answer to it (one recv(1024) per answer, as the seed's client does: the
protocol has no framing). Standard library only.
"""

import argparse
import socket
import sys


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addr", default="127.0.0.1:8088", help="HOST:PORT of the server")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for an answer")
    parser.add_argument("words", nargs="*", help="what to send, one message each")
    args = parser.parse_args()
    host, _, port = args.addr.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=args.timeout) as sk:
        # Python seed: print(sk.recv(1024).decode())
        print(sk.recv(1024).decode())
        for word in args.words:
            # Python seed: sk.sendall(bytes(inp, encoding="utf-8")); print(sk.recv(1024))
            sk.sendall(word.encode("utf-8"))
            answer = sk.recv(1024)
            if not answer:
                print("server closed the connection")
                return 1
            print(answer.decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
