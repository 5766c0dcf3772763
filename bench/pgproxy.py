"""A TCP relay in front of PostgreSQL that counts network round trips per client.

A round trip is a client flight (bytes sent after the server last spoke) that the server
answers. That is what each costs over a real network (one RTT to RDS from a Lambda in the
same region is ~0.3-1 ms), independent of how many protocol messages a flight carries:
pipelined messages count once, a prepare-then-execute pair counts twice. Counting from
the bytes rather than from the server log sees what the log cannot: the TLS negotiation
(SSLRequest), the SCRAM exchange, and extended-protocol Parse/Describe flights.

`CountingProxy` is only for counting: the relay adds latency, so nothing is timed through it.
`LinkProxy` adds a chosen latency on purpose, for the link benchmark (bench/parts/part7_link.py). It counts
the same way but is not Python: it drives bench/relay.rs, a std-only Rust delay line compiled
with `rustc -O` on first use, because a Python relay's threads (the GIL, late wake-ups,
time.sleep's granularity) added 0.4-0.65 ms to every delayed round trip (500 `select 1` from
psql, 0.5 and 2 ms each way), half the 1 ms round trip being simulated; the Rust one adds
0.1-0.35 ms, the more the busier the machine.
"""

import hashlib
import os
import select
import socket
import subprocess
import tempfile
import threading
import time


class CountingProxy:
    def __init__(self, target_port, target_host="127.0.0.1"):
        self.target = (target_host, target_port)
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.reset()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self):
        with self.lock:
            self.connections = 0
            self.round_trips = 0
            self.active = 0

    def snapshot(self):
        with self.lock:
            return {"connections": self.connections, "round_trips": self.round_trips}

    def wait_idle(self, timeout=5.0):
        """Waits until every relayed connection has closed (the client process has exited)."""
        for _ in range(int(timeout / 0.01)):
            with self.lock:
                if self.active == 0:
                    return True
            time.sleep(0.01)
        return False

    def close(self):
        self.closed = True
        self.listener.close()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                self.active += 1
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client):
        server = socket.create_connection(self.target)
        for s in (client, server):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        last = None  # who spoke last: "c" or "s"
        trips = 0
        pending = False  # a client flight waiting for its answer
        try:
            while True:
                readable, _, _ = select.select([client, server], [], [])
                done = False
                for s in readable:
                    data = s.recv(65536)
                    if not data:
                        done = True
                        break
                    if s is client:
                        if last != "c":
                            pending = True
                        last = "c"
                        server.sendall(data)
                    else:
                        if pending:
                            trips += 1
                            pending = False
                        last = "s"
                        client.sendall(data)
                if done:
                    break
        except OSError:
            pass
        finally:
            client.close()
            server.close()
            with self.lock:
                self.round_trips += trips
                self.active -= 1


class LinkProxy:
    """A relay that behaves like a network link: every chunk either side sends is delivered
    `one_way_ms` after it arrived (so a round trip costs twice that), in order, and round trips
    are counted as `CountingProxy` counts them. Bytes keep flowing while earlier chunks wait,
    so a pipelined flight pays the delay once, as it would on a real link.

    The relay itself is bench/relay.rs, a separate process (see `build_relay`): Python threads
    wake too late (the GIL, time.sleep's granularity) to hold a sub-millisecond delay. This
    class drives it over its stdin/stdout."""

    def __init__(self, target_port, one_way_ms, target_host="127.0.0.1", work_dir=None):
        binary = build_relay(work_dir)
        self.proc = subprocess.Popen(
            [binary, f"{target_host}:{target_port}", f"{one_way_ms * 1000.0:g}"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        )
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.proc.kill()
            raise RuntimeError(f"bench/relay.rs did not start (exit {self.proc.wait()}): {line!r}")
        self.port = int(line)
        self.lock = threading.Lock()

    def _ask(self, command):
        with self.lock:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
            answer = self.proc.stdout.readline().strip()
        if not answer or answer.startswith("error"):
            raise RuntimeError(f"bench/relay.rs, {command}: {answer or 'no answer (exited)'}")
        return answer

    def _counters(self):
        # "connections N round_trips M active K"
        words = self._ask("snapshot").split()
        return {k: int(v) for k, v in zip(words[::2], words[1::2])}

    def reset(self):
        self._ask("reset")

    def snapshot(self):
        c = self._counters()
        return {"connections": c["connections"], "round_trips": c["round_trips"]}

    def wait_idle(self, timeout=5.0):
        """Waits until every relayed connection has closed (the client process has exited)."""
        for _ in range(int(timeout / 0.01)):
            if self._counters()["active"] == 0:
                return True
            time.sleep(0.01)
        return False

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()  # the relay exits when its stdin ends
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()


RELAY_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "relay.rs")


def build_relay(work_dir=None):
    """Compiles bench/relay.rs with plain `rustc -O` (std only: a few seconds, none of the
    project's release build) into `work_dir`, or a directory under the system's temp dir, and
    returns the binary. The binary is named after the source's hash, so an unchanged source is
    compiled once per directory."""
    with open(RELAY_SOURCE, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    out_dir = work_dir or os.path.join(tempfile.gettempdir(), "wishlist-migrator-relay")
    os.makedirs(out_dir, exist_ok=True)
    binary = os.path.join(out_dir, f"relay-{digest}")
    if os.access(binary, os.X_OK):
        return binary
    partial = f"{binary}.{os.getpid()}.tmp"
    r = subprocess.run(["rustc", "-O", "--edition", "2021", "-o", partial, RELAY_SOURCE], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"rustc bench/relay.rs failed:\n{r.stderr.strip()}")
    os.replace(partial, binary)  # atomic: a concurrent build never sees half a binary
    return binary
