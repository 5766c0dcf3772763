#!/usr/bin/env python3
"""Runs a Lambda bootstrap binary locally under a minimal Lambda Runtime API and invokes it.

    scripts/lambda-invoke.py BINARY EVENT.json [EVENT.json ...]

Serves the Runtime API endpoints the runtime client uses (next, response, error, init/error) on
loopback, starts BINARY with AWS_LAMBDA_RUNTIME_API pointing at it (the rest of the environment is
passed through), feeds it the events one by one and prints one JSON line per invocation:
{"event": FILE, "ok": true, "response": ...} or {"event": FILE, "ok": false, "errorType": ...}.
Exit status: 0 when every invocation succeeded, 1 otherwise.
Set LAMBDA_TIMEOUT_SECONDS (default 60) for the deadline each invocation gets.
"""
import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime"
events = queue.Queue()
results = {}
done = threading.Condition()
timeout_s = float(os.environ.get("LAMBDA_TIMEOUT_SECONDS", "60"))


class RuntimeApi(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path != f"{PREFIX}/invocation/next":
            return self.reply(404)
        request_id, payload = events.get()
        deadline_ms = int((time.time() + timeout_s) * 1000)
        self.reply(200, payload, [
            ("Lambda-Runtime-Aws-Request-Id", request_id),
            ("Lambda-Runtime-Deadline-Ms", str(deadline_ms)),
            ("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:local"),
            ("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000"),
            ("Content-Type", "application/json"),
        ])

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        parts = self.path[len(PREFIX):].strip("/").split("/")
        if parts[:2] == ["init", "error"]:
            with done:
                results["init"] = ("error", body)
                done.notify_all()
        elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
            with done:
                results[parts[1]] = (parts[2], body)
                done.notify_all()
        else:
            return self.reply(404)
        self.reply(202, b"{}", [("Content-Type", "application/json")])


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    binary, files = sys.argv[1], sys.argv[2:]
    server = ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(os.environ)
    env.setdefault("AWS_LAMBDA_FUNCTION_NAME", "wishlist-migrator-local")
    env.setdefault("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
    env.setdefault("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
    # A local stack: CloudFormation answers may go to a loopback listener only, never to the
    # S3 URLs in the shipped events (set CFN_RESPONSE_URL_ALLOW yourself to choose otherwise).
    env.setdefault("CFN_RESPONSE_URL_ALLOW", "http://127.0.0.1,http://localhost")
    env["AWS_LAMBDA_RUNTIME_API"] = f"127.0.0.1:{server.server_address[1]}"
    function = subprocess.Popen([binary], env=env, stdout=sys.stderr, stderr=sys.stderr)
    failed = False
    try:
        for path in files:
            request_id = str(uuid.uuid4())
            with open(path, "rb") as f:
                events.put((request_id, f.read()))
            with done:
                ok = done.wait_for(lambda: request_id in results or "init" in results or function.poll() is not None,
                                   timeout=timeout_s + 10)
            if "init" in results:
                print(json.dumps({"event": path, "ok": False, "initError": json.loads(results["init"][1] or b"{}")}))
                return 1
            if not ok or request_id not in results:
                print(json.dumps({"event": path, "ok": False, "errorType": "NoAnswer"}))
                return 1
            kind, body = results[request_id]
            answer = json.loads(body or b"null")
            if kind == "response":
                print(json.dumps({"event": path, "ok": True, "response": answer}))
            else:
                failed = True
                print(json.dumps({"event": path, "ok": False, **answer}))
    finally:
        function.kill()
        function.wait()
        server.shutdown()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
