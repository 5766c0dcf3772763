"""A TCP relay in front of PostgreSQL that counts network round trips per client.

A round trip is a client flight (bytes sent after the server last spoke) that the server
answers. That is what each costs over a real network (one RTT to RDS from a Lambda in the
same region is ~0.3-1 ms), independent of how many protocol messages a flight carries:
pipelined messages count once, a prepare-then-execute pair counts twice. Counting from
the bytes rather than from the server log sees what the log cannot: the TLS negotiation
(SSLRequest), the SCRAM exchange, and extended-protocol Parse/Describe flights.

`CountingProxy` is only for counting: the relay adds latency, so nothing is timed through it.
`LinkProxy` adds a chosen latency on purpose, for the link benchmark (bench/link.py).
"""

import collections
import select
import socket
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
    so a pipelined flight pays the delay once, as it would on a real link."""

    def __init__(self, target_port, one_way_ms, target_host="127.0.0.1"):
        self.target = (target_host, target_port)
        self.delay = one_way_ms / 1000.0
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.connections = 0
        self.round_trips = 0
        self.active = 0
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    reset = CountingProxy.reset
    snapshot = CountingProxy.snapshot
    wait_idle = CountingProxy.wait_idle
    close = CountingProxy.close

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                self.active += 1
            threading.Thread(target=self._connection, args=(client,), daemon=True).start()

    def _connection(self, client):
        server = socket.create_connection(self.target)
        for s in (client, server):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        state = {"last": None, "pending": False, "trips": 0}
        state_lock = threading.Lock()

        def arrived(side):
            # A client flight after the server spoke opens a round trip; the answer closes it.
            with state_lock:
                if side == "c":
                    if state["last"] != "c":
                        state["pending"] = True
                elif state["pending"]:
                    state["trips"] += 1
                    state["pending"] = False
                state["last"] = side

        done = threading.Event()
        directions = [
            threading.Thread(target=self._direction, args=(client, server, "c", arrived, done), daemon=True),
            threading.Thread(target=self._direction, args=(server, client, "s", arrived, done), daemon=True),
        ]
        for t in directions:
            t.start()
        done.wait()
        for s in (client, server):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in directions:
            t.join(timeout=2)
        client.close()
        server.close()
        with self.lock:
            self.round_trips += state["trips"]
            self.active -= 1

    def _direction(self, src, dst, side, arrived, done):
        # One reader stamps each chunk with its delivery time; one writer delivers every chunk
        # that is due at once, as one write. Sleeping once per chunk would add the scheduler's
        # wake-up lateness per chunk, so a pipelined burst of small answers (one per statement)
        # would pay it hundreds of times where a real link pays the delay once.
        chunks = collections.deque()
        ready = threading.Condition()
        ended = []

        def writer():
            while True:
                with ready:
                    while not chunks and not ended:
                        ready.wait()
                    if not chunks:
                        break
                    due = chunks[0][0]
                wait = due - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                now = time.perf_counter()
                batch = []
                with ready:
                    while chunks and chunks[0][0] <= now:
                        batch.append(chunks.popleft()[1])
                try:
                    dst.sendall(b"".join(batch))
                except OSError:
                    break
            done.set()

        w = threading.Thread(target=writer, daemon=True)
        w.start()
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                arrived(side)
                with ready:
                    chunks.append((time.perf_counter() + self.delay, data))
                    ready.notify()
        except OSError:
            pass
        with ready:
            ended.append(True)
            ready.notify()
        w.join()
