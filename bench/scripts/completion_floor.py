#!/usr/bin/env python3
"""How much of epoll's CPU a completion driver could save, at best.

A completion driver (io_uring) moves the same bytes through the same TCP
code as epoll does; what it can take away is the work of entering and
leaving the kernel once per read, write and wait, finding the descriptor
each time, and epoll's own bookkeeping of readiness. This script profiles
`echo_server --backend epoll` at each point of the runner's matrix
(`perf record`, server on CPU 0, loadgen on CPU 1), counts the samples in
that work, and prints its share: a driver that removed all of it and added
nothing of its own would spend `1 - share` of epoll's CPU per message, its
floor. The same profile of `--backend uring` gives the share its own ring
work takes (`io_*`: the kernel's functions and the io-uring crate's, as
mio's count on the other side), which it adds back.

The set counted as removable is generous: system call entry and exit, the
system calls' own wrappers and argument handling, descriptor lookup,
security hooks on the socket, everything of epoll's, the socket poll it
calls, and the user-space readiness code (mio). io_uring runs some of
these too (a receive still checks the socket's security hooks and polls
it), so the real floor is higher. Copies, TCP, IP, buffers, scheduling and
the loop's own work are counted as what any backend does.

    cargo build --release --examples
    cargo build --release -p selectloop-bench --bins
    python3 bench/scripts/completion_floor.py            # the 16 points
    python3 bench/scripts/completion_floor.py 50,16,4096 # chosen points

Needs `perf` with permission to profile another process (root, or
kernel.perf_event_paranoid at 1 or less) and `taskset`. Everything listens
on 127.0.0.1; each server is stopped after its point. The shares move by a
point or two between runs on a shared machine; the floors move less than
the ratios of two separately measured runs do, since numerator and
denominator come from the same profile.
"""
import os, re, shutil, socket, statistics, subprocess, sys, tempfile, time

ECHO = "target/release/examples/echo_server"
LOADGEN = "target/release/loadgen"
MATRIX = [(c, p, s) for c in (1, 50, 500, 5000) for p in (1, 16) for s in (64, 4096)]

# Kernel and user-space symbols a completion driver could do without.
REMOVABLE = re.compile(
    r"^(do_syscall_64|entry_SYSCALL|syscall_return|syscall_exit|syscall_enter|"
    r"x64_sys_call|__x64_sys_|__do_sys_|__sys_(sendto|recvfrom|sendmsg|recvmsg)|"
    r"exit_to_user|arch_exit|__rseq|rseq_|fpregs_|switch_fpu|"
    r"fdget|fget|fput|__fget|sockfd_lookup|import_ubuf|move_addr_to_user|"
    r"security_socket|apparmor_socket|aa_sk_perm|"
    r"ep_|__ep_|do_epoll|epoll_wait|sock_poll|tcp_poll|tcp_stream_is_readable|"
    r"__libc_(recv|send)|recv$|send$|__send|__recv|syscall$|mio::)"
)
# The ring's own work: the kernel's io_uring functions and the io-uring crate's.
RING = re.compile(r"^(__)?io_")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def profile(backend, point, work):
    """Sample counts by symbol for one server at one point."""
    connections, pipeline, size = point
    port = free_port()
    server = subprocess.Popen(
        ["taskset", "-c", "0", ECHO, "--addr", f"127.0.0.1:{port}", "--backend", backend],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    load = None
    try:
        time.sleep(0.3)
        load = subprocess.Popen(
            ["taskset", "-c", "1", LOADGEN, "--addr", f"127.0.0.1:{port}",
             "--connections", str(connections), "--pipeline", str(pipeline),
             "--size", str(size), "--duration", "4", "--warmup", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.5)
        data = os.path.join(work, f"{backend}.data")
        subprocess.run(["perf", "record", "-q", "-F", "2000", "-p", str(server.pid),
                        "-o", data, "--", "sleep", "2.5"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        load.wait(timeout=60)
    finally:
        for child in (load, server):
            if child is not None and child.poll() is None:
                child.kill()
                child.wait()
    report = subprocess.run(["perf", "report", "-i", data, "--no-children",
                             "--sort", "symbol", "-n", "-q"],
                            capture_output=True, text=True, check=True).stdout
    samples = {}
    for line in report.splitlines():
        found = re.match(r"\s*[\d.]+%\s+(\d+)\s+\[.\]\s+(\S+)", line)
        if found:
            name = found.group(2)
            samples[name] = samples.get(name, 0) + int(found.group(1))
    return samples


def share(samples, pattern):
    total = sum(samples.values())
    return sum(n for name, n in samples.items() if pattern.match(name)) / max(total, 1)


def main():
    points = [tuple(int(x) for x in arg.split(",")) for arg in sys.argv[1:]] or MATRIX
    for path in (ECHO, LOADGEN):
        if not os.path.exists(path):
            sys.exit(f"{path} is not built (see the docstring)")
    work = tempfile.mkdtemp(prefix="completion-floor-")
    print(f"{'connections, pipeline, size':>28}  epoll: removable  floor   uring: ring's own")
    floors = []
    for point in points:
        removable = share(profile("epoll", point, work), REMOVABLE)
        ring = share(profile("uring", point, work), RING)
        floors.append(1 - removable)
        label = ", ".join(str(x) for x in point)
        print(f"{label:>28}  {100 * removable:15.1f}%  {1 - removable:.3f}  {100 * ring:17.1f}%")
    shutil.rmtree(work)
    print(f"median floor {statistics.median(floors):.3f}, lowest {min(floors):.3f}")


if __name__ == "__main__":
    main()
