"""Part 3: the Lambda binary, driven the way the Lambda service drives it.

A small emulator of the Lambda Runtime API (the HTTP interface a custom runtime's `bootstrap`
polls: `GET …/invocation/next`, `POST …/invocation/<id>/response|error`, `POST …/init/error`)
hands the real binary its events; Secrets Manager and SSM are moto (from .venv). Measured:

- init: process start to its first `next` request, i.e. what Lambda reports as Init Duration;
- warm invocation: event handed out to response received, i.e. the billed Duration;
- peak RSS: the process's VmHWM after the invocations, i.e. Lambda's Max Memory Used;
- binary and deployment zip size (`bootstrap` deflated, as cargo-lambda packages it).
"""

import json
import os
import queue
import socket
import statistics
import subprocess
import threading
import time
import urllib.request
import uuid
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import common

PREFIX = "/2018-06-01/runtime"


class RuntimeApi:
    def __init__(self):
        self.events = queue.Queue()
        self.lock = threading.Lock()
        self.first_next = None
        self.delivered = {}
        self.done = {}
        self.init_error = None
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def reply(self, code, body=b"", headers=None):
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path != f"{PREFIX}/invocation/next":
                    return self.reply(404)
                with api.lock:
                    if api.first_next is None:
                        api.first_next = time.perf_counter()
                while True:
                    try:
                        request_id, payload, deadline_ms = api.events.get(timeout=0.5)
                        break
                    except queue.Empty:
                        if api.closed:
                            return self.reply(500)
                with api.lock:
                    api.delivered[request_id] = time.perf_counter()
                self.reply(200, payload, {
                    "Content-Type": "application/json",
                    "Lambda-Runtime-Aws-Request-Id": request_id,
                    "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                    "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:123456789012:function:wishlist-migrator-bench",
                    "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000;Sampled=0",
                })

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = self.path[len(PREFIX):].strip("/").split("/")
                if parts == ["init", "error"]:
                    api.init_error = body.decode(errors="replace")
                    return self.reply(202, b"{}")
                if len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                    with api.lock:
                        api.done[parts[1]] = (time.perf_counter(), parts[2], body)
                    return self.reply(202, b"{}")
                self.reply(404)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # a runtime killed mid long-poll resets its connection; that is expected here

        self.closed = False
        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def invoke(self, proc, payload, timeout=120):
        request_id = str(uuid.uuid4())
        deadline_ms = int(time.time() * 1000) + 300_000
        self.events.put((request_id, json.dumps(payload).encode(), deadline_ms))
        end = time.perf_counter() + timeout
        while time.perf_counter() < end:
            with self.lock:
                if request_id in self.done:
                    at, kind, body = self.done[request_id]
                    return (at - self.delivered[request_id]) * 1000, kind, json.loads(body or b"null")
            if proc.poll() is not None:
                raise RuntimeError(f"the runtime exited ({proc.returncode}) before answering {payload}; see its log")
            time.sleep(0.0005)
        raise TimeoutError(f"no answer to {payload}")

    def close(self):
        self.closed = True
        self.server.shutdown()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Moto:
    def __init__(self, root, work):
        exe = os.path.join(root, ".venv", "bin", "moto_server")
        if not os.path.exists(exe):
            raise RuntimeError("moto is not installed in .venv: run make bootstrap")
        self.port = free_port()
        self.log = open(os.path.join(work, "moto.log"), "w")
        self.proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(self.port)], stdout=self.log, stderr=self.log)
        self.url = f"http://127.0.0.1:{self.port}"
        for _ in range(300):
            try:
                urllib.request.urlopen(self.url + "/moto-api/", timeout=1).read()
                return
            except OSError:
                time.sleep(0.1)
        self.close()
        raise RuntimeError("moto did not start")

    def call(self, service, target, body):
        # moto routes by the service named in the credential scope and does not check signatures.
        req = urllib.request.Request(self.url + "/", data=json.dumps(body).encode(), method="POST", headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": target,
            "Authorization": f"AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, "
                             "SignedHeaders=host, Signature=0",
        })
        return json.loads(urllib.request.urlopen(req, timeout=10).read() or b"{}")

    def env(self):
        return {"AWS_ENDPOINT_URL": self.url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def lambda_env(ctx, moto, api, db, secret_id):
    env = dict(ctx.env, **moto.env())
    env.update({
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{api.port}",
        "AWS_LAMBDA_FUNCTION_NAME": "wishlist-migrator-bench",
        "AWS_LAMBDA_FUNCTION_VERSION": "1",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/wishlist-migrator-bench",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "DB_SECRET_ID": secret_id,
        "DB_NAME": db,
        "DB_SSLMODE": "disable",
        # The bench cluster is plaintext on the loopback: the function refuses that otherwise.
        "DB_ALLOW_PLAINTEXT": "true",
        "APP_ENV": "bench",
        "SSM_PREFIX": f"/wishlist/bench/{db}",
    })
    return env


def vm_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


def measure(ctx, binary, db, moto, secret_id, cold_runs, warm_runs):
    out = {"cold_ms": [], "errors": []}
    log_path = os.path.join(ctx.work, f"lambda-{db}.log")
    with open(log_path, "w") as logf:
        for _ in range(cold_runs):
            api = RuntimeApi()
            t0 = time.perf_counter()
            proc = subprocess.Popen([binary], env=lambda_env(ctx, moto, api, db, secret_id), stdout=logf, stderr=logf)
            while api.first_next is None and proc.poll() is None and time.perf_counter() - t0 < 30:
                time.sleep(0.0002)
            if api.first_next is None:
                proc.kill()
                api.close()
                raise RuntimeError(f"{os.path.basename(binary)} never asked for an event (init error: {api.init_error}); see its log")
            out["cold_ms"].append((api.first_next - t0) * 1000)
            proc.terminate()
            proc.wait(10)
            api.close()

        api = RuntimeApi()
        proc = subprocess.Popen([binary], env=lambda_env(ctx, moto, api, db, secret_id), stdout=logf, stderr=logf)
        try:
            ms, kind, first = api.invoke(proc, {"action": "migrate"})
            if kind != "response" or first.get("status") not in ("applied", "upToDate"):
                raise RuntimeError(f"first migrate failed: {json.dumps(first)[:400]}")
            out["first_migrate_ms"] = ms
            out["first_applied"] = len(first.get("applied") or [])
            for action, key in (({"action": "status"}, "status_ms"), ({"action": "migrate"}, "noop_ms")):
                out[key] = []
                for _ in range(warm_runs):
                    ms, kind, body = api.invoke(proc, action)
                    if kind != "response" or body.get("status") != "upToDate":
                        raise RuntimeError(f"{action}: {json.dumps(body)[:400]}")
                    out[key].append(ms)
            out["rss_kib"] = vm_hwm_kib(proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
            api.close()
    return out


def zip_size(ctx, binary):
    path = os.path.join(ctx.work, "lambda.zip")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o755 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        with open(binary, "rb") as f:
            z.writestr(info, f.read())
    return os.path.getsize(path)


def run(ctx):
    if ctx.args.lambda_broken:
        raise common.BenchError(ctx.args.lambda_broken)
    if not ctx.lambda_bin:
        return ("## 3. Lambda\n\n_Not measured in this run: the `wishlist-migrator-lambda` binary was not available "
                "(scripts/bench.sh builds it when `src/bin/wishlist-migrator-lambda.rs` exists)._")
    cold_runs = 3 if ctx.quick else 15
    warm_runs = 3 if ctx.quick else 20
    builds = [("2 migrations (the project's)", ctx.lambda_bin)]
    if ctx.args.lambda300_bin:
        builds.append(("300 migrations (part 2's generated history)", ctx.args.lambda300_bin))
    moto = Moto(common.ROOT, ctx.work)
    results = []
    try:
        secret_id = "wishlist/bench/db"
        moto.call("secretsmanager", "secretsmanager.CreateSecret", {
            "Name": secret_id,
            "SecretString": json.dumps({"engine": "postgres", "username": "postgres", "password": ctx.password,
                                        "host": "127.0.0.1", "port": ctx.port, "dbname": "postgres"}),
        })
        for i, (label, binary) in enumerate(builds):
            db = f"lambda_{i}"
            ctx.create_db(db)
            common.log(f"part 3: {label}: {cold_runs} cold starts, {warm_runs} warm invocations of each kind")
            m = measure(ctx, binary, db, moto, secret_id, cold_runs, warm_runs)
            m["label"] = label
            m["binary_bytes"] = os.path.getsize(binary)
            m["zip_bytes"] = zip_size(ctx, binary)
            results.append(m)
    finally:
        moto.close()

    def ms(xs):
        return f"{common.fmt_ms(statistics.median(xs))} ({common.fmt_ms(min(xs))}–{common.fmt_ms(max(xs))})"

    rows = []
    for m in results:
        rows.append([m["label"], ms(m["cold_ms"]), common.fmt_ms(m["first_migrate_ms"]) + f" ({m['first_applied']} applied)",
                     ms(m["status_ms"]), ms(m["noop_ms"]), f"{m['rss_kib'] / 1024:.1f}",
                     f"{m['binary_bytes'] / 2**20:.1f}", f"{m['zip_bytes'] / 2**20:.1f}"])
    init = statistics.median(results[0]["cold_ms"])
    rss = results[-1]["rss_kib"] / 1024
    rss_label = results[-1]["label"]
    zip_mb = results[0]["zip_bytes"] / 2**20
    zip_what = f"host build ({os.uname().machine})"
    artifact = ctx.args.lambda_artifact
    if artifact:
        a_bin, a_zip = os.path.getsize(artifact), zip_size(ctx, artifact)
        rows.append(["deployment artifact: arm64 `bootstrap` from `cargo lambda build --release --arm64` (not run here)",
                     "", "", "", "", "", f"{a_bin / 2**20:.1f}", f"{a_zip / 2**20:.1f}"])
        zip_mb = a_zip / 2**20
        zip_what = "arm64 deployment artifact"
    ctx.headline.append(("3. Lambda init (process start → first `next`)", f"{init:.1f} ms", "≤ 30 ms", common.verdict(init <= 30)))
    ctx.headline.append((f"3. Lambda peak RSS, {rss_label}", f"{rss:.1f} MiB", "≤ 32 MB", common.verdict(rss <= 32)))
    ctx.headline.append((f"3. Lambda deployment zip ({zip_what})", f"{zip_mb:.1f} MiB", "≤ 10 MB", common.verdict(zip_mb <= 10)))
    ctx.part3 = {"results": results}
    arch = os.uname().machine
    md = [
        "## 3. Lambda",
        "",
        "The release `wishlist-migrator-lambda` binary run as Lambda runs a custom runtime's `bootstrap`: "
        "`bench/parts/part3_lambda.py` emulates the Runtime API (`GET …/invocation/next`, `POST …/response`), Secrets Manager "
        "and SSM are moto (the credentials come from a secret in the RDS format; every `migrate` writes the SSM state). "
        f"Init = process start to the first `next` request (Lambda's Init Duration), {cold_runs} cold starts; warm = event "
        f"handed out to response received (the billed Duration), {warm_runs} invocations each after a first `migrate`; "
        "peak RSS = the process's VmHWM after all invocations (Lambda's Max Memory Used). Medians with (min–max).",
        "",
        common.md_table(["build", "init ms", "first migrate ms (cold, fetches the secret)", "warm status ms", "warm no-op migrate ms",
                        "peak RSS MiB", "binary MiB", "zip MiB"], rows),
        "",
        f"Binary and zip of this machine's build ({arch}, release profile: LTO, `opt-level = \"s\"`, stripped); "
        "`bootstrap` deflated at level 9 as the deployment package holds it. The 300-migration build embeds the history of "
        "part 2 (`EMBED_MIGRATIONS_DIR`) and applies all of it on its first invocation. The warm no-op `migrate` includes "
        "the SSM `PutParameter` round trip to moto (a local Python server), which is slower than SSM's in-region answer.",
    ]
    if len(builds) == 1:
        md.append("\n_QUICK mode: the 300-migration build was skipped (it is a separate release build)._")
    return "\n".join(md)
