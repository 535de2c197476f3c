#!/usr/bin/env python3
"""serve-attacks.py BIN [CKPT] — hostile clients against `bytelm serve` on loopback, the figures behind
docs/reliability-server.md: for each attack, whether the server survived, the status it answered, and its
resident memory (VmRSS) before and after. Serves CKPT (default: a tiny MEGABYTE trained for 2 steps, made here)
with --max-body 1048576 (the default) and --request-timeout 10; Python's standard library only."""
import gzip, os, signal, socket, subprocess, sys, tempfile, threading, time

bin_, ckpt = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else None)
work = tempfile.mkdtemp()
if ckpt is None:
    os.makedirs(f"{work}/corpus")
    open(f"{work}/corpus/a.txt", "w").write("call me ishmael. " * 400)
    subprocess.run([bin_, "train", "--model", "megabyte", "--config", "tiny", "--data", f"{work}/corpus", "--out",
                    f"{work}/ckpt", "--steps", "2", "--batch", "2", "--threads", "1", "--peak-flops", "1e11"],
                   check=True, capture_output=True)
    ckpt = f"{work}/ckpt"
extra = sys.argv[3:] if len(sys.argv) > 3 else []


def start():
    out = open(f"{work}/server.out", "w+")
    p = subprocess.Popen([bin_, "serve", "--ckpt", ckpt, "--port", "0", "--threads", "1", "--shutdown-timeout", "2"]
                         + extra, stdout=out, stderr=subprocess.STDOUT)
    for _ in range(600):
        text = open(f"{work}/server.out").read()
        if "ready" in text:
            return p, int(text.split("127.0.0.1:")[1].split()[0])
        time.sleep(0.1)
    raise SystemExit("server did not start: " + open(f"{work}/server.out").read())


def rss_mb(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return float("nan")  # gone (a zombie has no VmRSS)


def exchange(port, data, timeout=30, body_iter=None):
    """Sends data (then body_iter's pieces while the server reads); returns the status line or an error."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        for piece in body_iter or []:
            s.sendall(piece)
        s.shutdown(socket.SHUT_WR)
        reply = s.recv(200).decode("latin-1")
        return reply.split("\r\n")[0] if reply else "closed"
    except OSError as e:
        try:
            reply = s.recv(200).decode("latin-1")
            return (reply.split("\r\n")[0] if reply else "closed") + f" ({type(e).__name__} while sending)"
        except OSError:
            return f"closed ({type(e).__name__})"
    finally:
        s.close()


def health_ms(port):
    t = time.time()
    r = exchange(port, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", timeout=60)
    return r, (time.time() - t) * 1000


def chunked(total):
    piece = b"%x\r\n" % 65536 + b"a" * 65536 + b"\r\n"
    for _ in range(total // 65536):
        yield piece
    yield b"0\r\n\r\n"


def slowloris(port, n, seconds):
    """n connections sending a request head a byte every 2 s; /health probed meanwhile."""
    stop = time.time() + seconds
    socks = []
    for _ in range(n):
        try:
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        except OSError:
            pass
    head = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-a: "
    worst, statuses, k = 0, set(), 0
    while time.time() < stop:
        for s in socks:
            try:
                s.send(head[k % len(head):k % len(head) + 1])
            except OSError:
                pass
        k += 1
        r, ms = health_ms(port)
        statuses.add(r)
        worst = max(worst, ms)
        time.sleep(2)
    return socks, worst, statuses


p, port = start()
time.sleep(0.5)
base = rss_mb(p.pid)
print(f"baseline RSS {base:.1f} MB (pid {p.pid}, port {port})")
rows = []


def attack(name, fn):
    global p, port
    if p.poll() is not None:  # the last attack killed it: a fresh server for this one
        p, port = start()
        time.sleep(0.5)
    before = rss_mb(p.pid)
    t = time.time()
    result = fn()
    time.sleep(1)
    after = rss_mb(p.pid)
    alive = p.poll() is None
    rows.append((name, result, before, after, alive, time.time() - t))
    print(f"{name:42s} {result!s:60.60s} RSS {before:7.1f} -> {after:7.1f} MB  alive={alive}", flush=True)


H = b"Host: 127.0.0.1\r\nConnection: close\r\n"
attack("GET /%ff", lambda: exchange(port, b"GET /%ff HTTP/1.1\r\n" + H + b"\r\n"))
if True:
    body = b'{"prompt": "a", "max_tokens": 9223372036854775807}'
    attack("max_tokens 2^63-1", lambda: exchange(port, b"POST /v1/completions HTTP/1.1\r\n" + H +
                                                 b"Content-Length: %d\r\n\r\n" % len(body) + body))
    attack("100 MB chunked body", lambda: exchange(
        port, b"POST /v1/completions HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n",
        body_iter=chunked(100 << 20)))
    bomb = gzip.compress(b"\0" * (200 << 20), 9)
    attack(f"gzip bomb ({len(bomb) // 1024} KB -> 200 MB)", lambda: exchange(
        port, b"POST /v1/completions HTTP/1.1\r\n" + H + b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n"
        % len(bomb) + bomb))
    keep = {}

    def loris(n):
        socks, worst, statuses = slowloris(port, n, 24)
        keep["socks"] = keep.get("socks", []) + socks
        return f"/health worst {worst:.0f} ms, answers {sorted(statuses)}"
    attack("slowloris: 60 conns, a byte per 2 s, 24 s", lambda: loris(60))
    attack("slowloris: 300 conns, a byte per 2 s, 24 s", lambda: loris(300))
    # SIGTERM while the slow connections are open and still sending a byte every 2 s.
    socks = keep.get("socks", [])

    def feed():
        while p.poll() is None:
            for s in socks:
                try:
                    s.send(b"a")
                except OSError:
                    pass
            time.sleep(2)
    threading.Thread(target=feed, daemon=True).start()
    t = time.time()
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=60)
        print(f"SIGTERM with {len(socks)} slow connections open: exited {p.returncode} after {time.time() - t:.1f} s")
    except subprocess.TimeoutExpired:
        print("SIGTERM: still running after 60 s")
        p.kill()
print(f"baseline {base:.1f} MB; after all attacks {rows[-1][3]:.1f} MB")
