#!/usr/bin/env python3
"""Hostile-but-fair load against a faceprint-server it starts on a fresh SQLite file
(standard library only; scripts/bench_hostile.sh and scripts/soak.sh build and call it).

    hostile_load.py measure --bin SERVER [--timeout-ms 2000] [--header-timeout-ms 5000]
    hostile_load.py soak --bin SERVER --seconds 180 --fixtures tests/fixtures/server

`measure` checks the issue's targets: 8 concurrent 4096x4096 uploads (peak RSS, CPU
seconds the server spends after the requests were answered), /healthz latency while 70
connections send their bodies one byte every 2 s, and how many of 500 connections with
unfinished headers the server closes within its header-read timeout.

`soak` runs a bounded mixed load (identify, enroll, delete, bad inputs, slow clients)
for a set time and prints requests served, 5xx count, peak RSS and open files before,
during and after. "Before" is after a warm-up of the same mix whose enrollments are
deleted again; "after" is once the identities the load left enrolled are deleted, so
both are taken with the same gallery.
"""
import argparse
import base64
import http.client
import json
import os
import random
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import zlib

CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- the server process, from /proc ----------------------------------------------------
def rss_kib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def open_files(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def fd_targets(pid):
    """What each open descriptor of `pid` points at (sockets by kind only), counted."""
    targets = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            t = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        t = t.split(":")[0] if t.startswith(("socket:", "anon_inode:", "pipe:")) else t
        targets[t] = targets.get(t, 0) + 1
    return targets


class Sampler(threading.Thread):
    """Samples RSS every 50 ms; `peak` is the largest seen."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.running = pid, 0, True

    def run(self):
        while self.running:
            try:
                self.peak = max(self.peak, rss_kib(self.pid))
            except OSError:
                return
            time.sleep(0.05)

    def stop(self):
        self.running = False
        self.join()
        return self.peak


# --- images ----------------------------------------------------------------------------
def png(width, height, colour_type, bit_depth, row):
    """A PNG whose every row is `row` (bytes after the filter byte)."""
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
    raw = (b"\x00" + row) * height
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def b64(data):
    return base64.b64encode(data).decode()


# --- HTTP ------------------------------------------------------------------------------
class Client:
    def __init__(self, url, timeout=60):
        parsed = urllib.parse.urlparse(url)
        self.host, self.port, self.timeout = parsed.hostname, parsed.port, timeout

    def request(self, method, path, body=None, headers=None):
        """(status, body bytes, seconds); status 0 when the connection failed."""
        started = time.perf_counter()
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
            hdrs = {"Content-Type": "application/json"} if data is not None else {}
            hdrs.update(headers or {})
            conn.request(method, path, body=data, headers=hdrs)
            response = conn.getresponse()
            payload = response.read()
            return response.status, payload, time.perf_counter() - started
        except (OSError, http.client.HTTPException):
            return 0, b"", time.perf_counter() - started
        finally:
            conn.close()


def parallel(n, target):
    results = [None] * n
    def run(i):
        results[i] = target(i)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


# --- measure ---------------------------------------------------------------------------
def big_uploads(client, pid, route, image, label):
    before_cpu = cpu_seconds(pid)
    sampler = Sampler(pid)
    sampler.start()
    started = time.perf_counter()
    results = parallel(8, lambda i: client.request("POST", route, {"image": b64(image)}))
    answered = time.perf_counter() - started
    cpu_at_answer = cpu_seconds(pid)
    time.sleep(5)
    cpu_after = cpu_seconds(pid)
    peak = sampler.stop()
    statuses = sorted(r[0] for r in results)
    print(f"{label}: 8 x POST {route} ({len(image)} bytes each): statuses {statuses}, "
          f"all answered after {answered:.1f} s")
    print(f"  peak RSS {peak / 1024:.0f} MiB; server CPU {cpu_at_answer - before_cpu:.1f} s "
          f"until the last answer, {cpu_after - cpu_at_answer:.2f} s in the 5 s after it")


def slow_bodies(client, n=70):
    socks = []
    for _ in range(n):
        s = socket.create_connection((client.host, client.port))
        s.sendall(b"POST /identify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100000\r\n\r\n{")
        socks.append(s)
    stop = threading.Event()
    def trickle():
        while not stop.wait(2):
            for s in socks:
                try:
                    s.sendall(b" ")
                except OSError:
                    pass
    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    time.sleep(3)
    latencies = []
    for _ in range(20):
        status, _, seconds = client.request("GET", "/healthz")
        latencies.append((status, seconds))
        time.sleep(0.2)
    ready = [client.request("GET", "/readyz") for _ in range(5)]
    stop.set()
    t.join()
    for s in socks:
        s.close()
    ms = sorted(s * 1000 for _, s in latencies)
    print(f"{n} slow-body connections: GET /healthz x20 statuses "
          f"{sorted(set(st for st, _ in latencies))}, median {statistics.median(ms):.1f} ms, "
          f"max {ms[-1]:.1f} ms; GET /readyz x5 max {max(r[2] for r in ready) * 1000:.1f} ms "
          f"statuses {sorted(set(r[0] for r in ready))}")


def idle_connections(client, pid, header_timeout_ms, n=500):
    before = open_files(pid)
    socks = []
    for _ in range(n):
        s = socket.create_connection((client.host, client.port))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        s.setblocking(False)
        socks.append(s)
    time.sleep(0.5)
    during = open_files(pid)
    opened = time.perf_counter()
    closed_at = {}
    deadline = opened + header_timeout_ms / 1000 + 5
    while len(closed_at) < n and time.perf_counter() < deadline:
        for i, s in enumerate(socks):
            if i in closed_at:
                continue
            try:
                data = s.recv(4096)
                if data == b"" or data:  # EOF, or an answer before the close
                    closed_at[i] = time.perf_counter() - opened
            except BlockingIOError:
                pass
            except OSError:
                closed_at[i] = time.perf_counter() - opened
        time.sleep(0.1)
    for s in socks:
        s.close()
    time.sleep(0.5)
    after = open_files(pid)
    times = sorted(closed_at.values())
    latest = f"{times[-1]:.1f} s" if times else "-"
    print(f"{n} connections with unfinished headers (header_read_timeout_ms "
          f"{header_timeout_ms}): {len(closed_at)} closed by the server, the last after "
          f"{latest} (+0.5 s to open them); server open files {before} before, {during} "
          f"with them open, {after} after")


def measure(args):
    client = Client(args.url, timeout=120)
    grey = png(4096, 4096, 0, 8, b"\x80" * 4096)
    rgba16 = png(4096, 4096, 6, 16, b"\x80\x00" * 4 * 4096)
    print(f"server pid {args.pid}: RSS {rss_kib(args.pid) / 1024:.0f} MiB at start, "
          f"request_timeout_ms {args.timeout_ms}")
    big_uploads(client, args.pid, "/detect", rgba16, "4096x4096 16-bit RGBA PNG")
    big_uploads(client, args.pid, "/identify", grey, "4096x4096 8-bit grey PNG")
    slow_bodies(client)
    idle_connections(client, args.pid, args.header_timeout_ms)
    print(f"peak RSS over the whole run (VmHWM) {rss_kib(args.pid, 'VmHWM') / 1024:.0f} MiB")
    return 0


# --- soak ------------------------------------------------------------------------------
def soak(args):
    client = Client(args.url, timeout=60)
    faces = []
    for who in sorted(os.listdir(args.fixtures)):
        for name in sorted(os.listdir(os.path.join(args.fixtures, who))):
            with open(os.path.join(args.fixtures, who, name), "rb") as f:
                faces.append(f.read())
    bad = [
        (b"{not json", "application/json"),
        (json.dumps({"image": b64(b"hello")}).encode(), "application/json"),
        (json.dumps({"image": 5}).encode(), "application/json"),
        (json.dumps({"identity": "a", "identity": "b", "images": []}).encode(), "application/json"),
        (json.dumps({"image": b64(png(50_000, 50_000, 0, 8, b""))}).encode(), "application/json"),
        (b"hello", "text/plain"),
    ]
    counts, lock, stop = {}, threading.Lock(), threading.Event()
    enrolled = []

    def count(kind, status):
        with lock:
            counts[(kind, status)] = counts.get((kind, status), 0) + 1

    def worker(seed):
        rng = random.Random(seed)
        n = 0
        while not stop.is_set():
            n += 1
            roll = rng.random()
            if roll < 0.45:
                st, _, _ = client.request("POST", "/identify", {"image": b64(rng.choice(faces))})
                count("identify", st)
            elif roll < 0.65:
                name = f"soak-{seed}-{n}"
                st, _, _ = client.request("POST", "/enroll",
                                          {"identity": name, "images": [b64(rng.choice(faces))]})
                count("enroll", st)
                if st == 201:
                    with lock:
                        enrolled.append(name)
            elif roll < 0.8:
                with lock:
                    name = enrolled.pop(rng.randrange(len(enrolled))) if enrolled else None
                if name:
                    st, _, _ = client.request("DELETE", f"/identities/{name}")
                    count("delete", st)
            elif roll < 0.95:
                body, ctype = rng.choice(bad)
                st, _, _ = client.request("POST", rng.choice(["/identify", "/enroll"]), body,
                                          {"Content-Type": ctype})
                count("bad input", st)
            else:
                # A slow client: half a request, a few seconds of silence, then gone.
                try:
                    s = socket.create_connection((client.host, client.port))
                    s.sendall(b"POST /identify HTTP/1.1\r\nHost: x\r\nContent-Length: 999\r\n\r\n{")
                    stop.wait(rng.uniform(1, 4))
                    s.close()
                    count("slow client", "abandoned")
                except OSError:
                    count("slow client", 0)

    def run(seconds, report):
        """The mix on `args.workers` threads for `seconds`, printing progress if `report`."""
        stop.clear()
        # Other seeds (and names) for the measured run than for the warm-up.
        first = 1000 if report else 0
        threads = [threading.Thread(target=worker, args=(first + i,))
                   for i in range(args.workers)]
        for t in threads:
            t.start()
        end = time.time() + seconds
        while time.time() < end:
            time.sleep(min(30, max(0, end - time.time())))
            if report:
                with lock:
                    served = sum(v for (k, st), v in counts.items()
                                 if isinstance(st, int) and st > 0)
                print(f"  t={seconds - max(0, end - time.time()):.0f}s served {served}, "
                      f"RSS {rss_kib(args.pid) / 1024:.0f} MiB, "
                      f"open files {open_files(args.pid)}", flush=True)
        stop.set()
        for t in threads:
            t.join()

    def undo_enrollments():
        """Deletes every identity the load enrolled and left: the gallery is back to
        where it started, so what memory remains is the server's, not the data's."""
        with lock:
            names = list(enrolled)
            enrolled.clear()
        for name in names:
            st, _, _ = client.request("DELETE", f"/identities/{name}")
            if st != 200:
                print(f"  cleanup: DELETE {name} answered {st}")
        return len(names)

    cold = rss_kib(args.pid)
    # The baseline is the warmed-up server: the first requests allocate what every later
    # one reuses (the model's buffers, decoder tables, the allocator's arenas, SQLite's
    # page cache), so a cold start is not what "memory back after the load" compares to.
    run(args.warmup, report=False)
    undone = undo_enrollments()
    counts.clear()
    time.sleep(args.settle)
    rss0, files0 = rss_kib(args.pid), open_files(args.pid)
    targets0 = fd_targets(args.pid)
    print(f"cold start: RSS {cold / 1024:.0f} MiB; after a {args.warmup} s warm-up of the "
          f"same mix ({undone} enrollments undone, {args.settle} s settle): "
          f"RSS {rss0 / 1024:.0f} MiB, open files {files0}")
    sampler = Sampler(args.pid)
    sampler.start()
    run(args.seconds, report=True)
    peak = sampler.stop()
    left = undo_enrollments()
    time.sleep(args.settle)
    rss1, files1 = rss_kib(args.pid), open_files(args.pid)
    served = sum(v for (k, st), v in counts.items() if isinstance(st, int) and st > 0)
    errors5xx = sum(v for (k, st), v in counts.items() if isinstance(st, int) and st >= 500)
    failed = sum(v for (k, st), v in counts.items() if st == 0)
    print(f"{args.seconds} s, {args.workers} workers: {served} requests served, "
          f"{errors5xx} x 5xx, {failed} connection failures")
    for (kind, st), v in sorted(counts.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        print(f"  {kind:12} {st}: {v}")
    change = (rss1 - rss0) / max(rss0, 1) * 100
    print(f"RSS: {rss0 / 1024:.0f} MiB warmed-up baseline, peak {peak / 1024:.0f} MiB, "
          f"{rss1 / 1024:.0f} MiB after the load ({left} identities it left enrolled "
          f"deleted, {args.settle} s settle): {change:+.0f}% "
          f"({'within' if abs(change) <= 20 else 'NOT within'} 20%)")
    print(f"open files: {files0} before, {files1} after")
    targets1 = fd_targets(args.pid)
    for t in sorted(set(targets0) | set(targets1)):
        if targets0.get(t, 0) != targets1.get(t, 0):
            print(f"  {t}: {targets0.get(t, 0)} before, {targets1.get(t, 0)} after")
    return 1 if errors5xx or failed else 0


def start_server(binary, port, workdir, settings):
    """The server on 127.0.0.1:`port` over a new SQLite file, once /readyz answers."""
    env = dict(os.environ, RUST_LOG="warn",
               FACEPRINT_SERVER__BIND=f"127.0.0.1:{port}",
               FACEPRINT_DATABASE__URL=f"sqlite://{workdir}/faceprint.db")
    env.update(settings)
    server = subprocess.Popen([binary], env=env)
    client = Client(f"http://127.0.0.1:{port}", timeout=2)
    for _ in range(1200):
        if client.request("GET", "/readyz")[0] == 200:
            return server
        if server.poll() is not None:
            sys.exit(f"the server exited with status {server.returncode}")
        time.sleep(0.1)
    server.kill()
    sys.exit("the server did not become ready")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--timeout-ms", type=int, default=2000)
    m.add_argument("--header-timeout-ms", type=int, default=5000)
    s = sub.add_parser("soak")
    s.add_argument("--seconds", type=int, default=1800)
    s.add_argument("--workers", type=int, default=6)
    s.add_argument("--settle", type=int, default=15)
    s.add_argument("--warmup", type=int, default=60,
                   help="seconds of the same mix before the baseline is taken")
    s.add_argument("--fixtures", required=True)
    for p in (m, s):
        p.add_argument("--bin", help="the server binary (default: build the release one)")
        p.add_argument("--port", type=int, default=18090)
    args = parser.parse_args()
    if not args.bin:
        subprocess.run(["cargo", "build", "--release", "--locked", "--bin", "faceprint-server"],
                       check=True)
        args.bin = "target/release/faceprint-server"
    subprocess.run(["git", "log", "-1", "--format=commit %h"], check=False)
    settings = {}
    if args.command == "measure":
        settings = {"FACEPRINT_LIMITS__REQUEST_TIMEOUT_MS": str(args.timeout_ms),
                    "FACEPRINT_SERVER__HEADER_READ_TIMEOUT_MS": str(args.header_timeout_ms)}
    with tempfile.TemporaryDirectory() as workdir:
        server = start_server(args.bin, args.port, workdir, settings)
        args.url, args.pid = f"http://127.0.0.1:{args.port}", server.pid
        try:
            return measure(args) if args.command == "measure" else soak(args)
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


if __name__ == "__main__":
    sys.exit(main())
