"""Part 10: a fleet. 100 tenant databases on the local cluster (10 under QUICK), each needing the
repo's migrations, brought up to date three ways: `wishlist-migrate fleet migrate --concurrency 8`,
a shell loop of `wishlist-migrate migrate`, and a shell loop of drizzle-orm's `migrate()` (the
peer in tests/peer/). Each gets fresh databases; measured: wall time, the peak number of server
connections to the tenant databases (sampled from pg_stat_activity), and failures. Then the
fleet `status` of the up-to-date targets."""

import json
import os
import signal
import subprocess
import time

import common

PREFIX = "p10_tenant_"


def tenants(ctx):
    return [f"{PREFIX}{i:03d}" for i in range(10 if ctx.quick else 100)]


def recreate(ctx, names):
    """Every tenant database dropped and created empty, then one checkpoint, so a timed run
    does not share the disk with the creation's flush."""
    drops = "".join(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE);\n' for n in names)
    creates = "".join(f'CREATE DATABASE "{n}" TEMPLATE template0;\n' for n in names)
    ctx.psql(drops + creates + "CHECKPOINT;")


class Sampler:
    """psql's \\watch counting the backends connected to a tenant database, every 20 ms."""

    def __init__(self, ctx):
        sql = f"select count(*) from pg_stat_activity where datname like '{PREFIX}%' \\watch 0.02\n"
        self.proc = subprocess.Popen(
            [ctx.psql_bin, "-X", "-q", "-A", "-t", "-d", ctx.url("postgres")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=ctx.env,
        )
        self.proc.stdin.write(sql)
        self.proc.stdin.flush()
        time.sleep(0.1)

    def peak(self):
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=10)
        counts = [int(line) for line in out.split() if line.strip().isdigit()]
        return max(counts, default=0), len(counts)


def shell_loop(ctx, names, per_db):
    """`for db in ...; do <per_db>; done` in one sh, counting the runs that exit non-zero."""
    script = 'fails=0; for db in $TENANTS; do export DATABASE_URL="$BASE/$db"; ' + per_db + \
             ' >/dev/null 2>&1 || fails=$((fails+1)); done; echo "$fails"'
    env = {"TENANTS": " ".join(names), "BASE": ctx.url("postgres").rsplit("/", 1)[0]}
    seconds, r = ctx.run(["sh", "-c", script], env, what="shell loop")
    return seconds, int(r.stdout.strip().splitlines()[-1])


def measure(ctx, names, go):
    recreate(ctx, names)
    sampler = Sampler(ctx)
    try:
        seconds, failures = go()
    finally:
        peak, samples = sampler.peak()
    return seconds, peak, samples, failures


def run(ctx):
    names = tenants(ctx)
    migrations = os.path.join(common.ROOT, "migrations")
    manifest = os.path.join(ctx.work, "fleet-targets.json")
    with open(manifest, "w") as f:
        json.dump([{"name": n, "databaseUrl": ctx.url(n)} for n in names], f)

    def fleet(command, concurrency=8):
        cmd = [ctx.cli, "--json", "--quiet", "--migrations", migrations, "fleet", command,
               "--targets", manifest, "--concurrency", str(concurrency)]
        seconds, r = ctx.run(cmd, check=False, what=f"fleet {command}")
        try:
            report = json.loads(r.stdout)
        except ValueError:
            raise common.BenchError(f"fleet {command} exited {r.returncode}: {ctx.redact(r.stderr)[:600]}")
        return seconds, report

    def ours_fleet():
        seconds, report = fleet("migrate")
        return seconds, report["summary"]["failed"] + report["summary"]["notRun"]

    results = []
    for label, go in [
        ("`fleet migrate --concurrency 8`", ours_fleet),
        ("shell loop of `wishlist-migrate migrate`",
         lambda: shell_loop(ctx, names, f'"{ctx.cli}" --json --quiet --migrations "{migrations}" migrate')),
        ("shell loop of drizzle-orm `migrate()`",
         lambda: shell_loop(ctx, names, f'MIGRATIONS_DIR="{migrations}" node "{os.path.join(common.ROOT, "tests", "peer", "drizzle-migrate.mjs")}"')),
    ]:
        common.log(f"part 10: {label}")
        seconds, peak, samples, failures = measure(ctx, names, go)
        results.append((label, seconds, peak, samples, failures))

    # The fleet's status of targets that are all up to date (drizzle-orm's ledger, from the last loop).
    status_seconds, status = fleet("status")
    status_ok = status["summary"]["upToDate"] == len(names)
    for n in names:
        ctx.drop_db(n)

    fleet_s, loop_s, drizzle_s = results[0][1], results[1][1], results[2][1]
    failures = sum(r[4] for r in results)
    ok = failures == 0 and status_ok and results[0][2] <= 8 and fleet_s < loop_s
    verdict = "—" if ctx.quick else common.verdict(ok)
    ctx.headline.append((f"10. fleet migrate of {len(names)} tenants, --concurrency 8 (vs shell loop)",
                         f"{fleet_s:.1f} s (loop {loop_s:.1f} s)", "faster than the loop, ≤ 8 connections, no failure", verdict))
    rows = [[label, f"{seconds:.1f}", f"{len(names) / seconds:.1f}", str(peak), str(samples), str(fail)]
            for label, seconds, peak, samples, fail in results]
    md = [
        "## 10. A fleet",
        "",
        f"{len(names)} tenant databases on the local cluster, each created empty and needing the repo's two migrations "
        "(`migrations/`), brought up to date three ways, each on fresh databases. Peak connections: the most backends "
        "connected to a tenant database at once, sampled from `pg_stat_activity` every 20 ms (samples: how many were "
        "taken). Failures: targets not brought up to date.",
        "",
        common.md_table(["how", "wall s", "databases/s", "peak connections", "samples", "failures"], rows),
        "",
        f"`fleet migrate` took {fleet_s / loop_s:.2f}× the wall time of the shell loop of the same binary and "
        f"{fleet_s / drizzle_s:.2f}× that of drizzle-orm's loop. `fleet status --concurrency 8` of the {len(names)} up-to-date targets: "
        f"{status_seconds:.2f} s ({'every one upToDate' if status_ok else 'NOT all upToDate: ' + json.dumps(status['summary'])}).",
        "",
        f"Budget: no failure, never more than 8 connections, faster than the loop: {verdict}.",
    ]
    return "\n".join(md)
