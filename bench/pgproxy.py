"""A TCP relay in front of PostgreSQL that counts network round trips per client.

A round trip is a client flight (bytes sent after the server last spoke) that the server
answers. That is what each costs over a real network (one RTT to RDS from a Lambda in the
same region is ~0.3-1 ms), independent of how many protocol messages a flight carries:
pipelined messages count once, a prepare-then-execute pair counts twice. Counting from
the bytes rather than from the server log sees what the log cannot: the TLS negotiation
(SSLRequest), the SCRAM exchange, and extended-protocol Parse/Describe flights.

Only for counting: the relay adds latency, so nothing is timed through it.
"""

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
