"""Part 1: the no-op deploy (nothing pending), against psql, drizzle-orm and sqlx."""

import json
import os
import statistics
import time

from common import BenchError, NO_CA, ROOT, alternate, fmt_ms, log, md_table, min_ratio, paired_ratio, server_log_size, server_log_statements, sqlx_folder_from_journal, verdict
from pgproxy import CountingProxy


def run(ctx):
    rounds = 5 if ctx.quick else 30
    migrations = os.path.join(ROOT, "migrations")
    sqlx_dir = sqlx_folder_from_journal(migrations, os.path.join(ctx.work, "p1-sqlx"))
    ctx.create_db("noop")
    ctx.create_db("noop_sqlx")
    cmd, env = ctx.ours("noop", "--json", "migrate")
    _, r = ctx.run(cmd, env, what="wishlist-migrate (first apply)")
    if json.loads(r.stdout)["status"] != "applied":
        raise BenchError(f"first apply did not apply: {r.stdout[:300]}")
    if ctx.sqlx:
        ctx.run(*ctx.sqlx_cmd("noop_sqlx", sqlx_dir), cwd=ctx.work, what="sqlx (first apply)")
    cmd, env = ctx.ours("noop", "--json", "migrate")
    _, r = ctx.run(cmd, env, what="wishlist-migrate (no-op check)")
    if json.loads(r.stdout)["status"] != "upToDate":
        raise BenchError(f"no-op run was not upToDate: {r.stdout[:300]}")

    # Diagnostic peer: the same binary with OpenSSL's default CA locations pointed at nothing,
    # which prices what loading the system CA bundle costs a run (native-tls used to do it on
    # every connect, TLS or not: 30+ ms, most of a no-op run).
    def ours_no_ca(i):
        cmd, env = ctx.ours("noop", "migrate")
        return cmd, dict(env, **ctx.no_ca_env)

    peers = {
        "wishlist-migrate": lambda i: ctx.ours("noop", "migrate"),
        NO_CA: ours_no_ca,
        "psql select 1": lambda i: ctx.psql_cmd("noop", "-c", "select 1"),
        "drizzle-orm migrate()": lambda i: ctx.drizzle("noop", migrations),
    }
    if ctx.sqlx:
        peers["sqlx migrate run"] = lambda i: ctx.sqlx_cmd("noop_sqlx", sqlx_dir)
    log(f"part 1: warm-up, then {rounds} alternating rounds of {len(peers)} peers")
    alternate(ctx, peers, 2)
    times = alternate(ctx, peers, rounds)
    ledger = ctx.psql('select count(*) from drizzle."__drizzle_migrations"', "noop")
    if ledger != "2":
        raise BenchError(f"the no-op runs changed the ledger: {ledger} rows")

    # Round trips and statements, on databases of their own so logging cannot touch the timings.
    ctx.create_db("rt")
    ctx.create_db("rt_sqlx")
    ctx.run(*ctx.ours("rt", "migrate"), what="wishlist-migrate (rt)")
    if ctx.sqlx:
        ctx.run(*ctx.sqlx_cmd("rt_sqlx", sqlx_dir), cwd=ctx.work, what="sqlx (rt)")
    for db in ("rt", "rt_sqlx"):
        ctx.psql(f'ALTER DATABASE "{db}" SET log_statement = \'all\'')
    proxy = CountingProxy(ctx.port)
    trips = {}
    rt_peers = {
        "wishlist-migrate": ("rt", lambda port: ctx.ours("rt", "migrate", port=port)),
        "psql select 1": ("rt", lambda port: ctx.psql_cmd("rt", "-c", "select 1", port=port)),
        "drizzle-orm migrate()": ("rt", lambda port: ctx.drizzle("rt", migrations, port=port)),
    }
    if ctx.sqlx:
        rt_peers["sqlx migrate run"] = ("rt_sqlx", lambda port: ctx.sqlx_cmd("rt_sqlx", sqlx_dir, port=port))
    for name, (db, make) in rt_peers.items():
        since = server_log_size(ctx)
        ctx.run(*make(None), cwd=ctx.work, what=name)
        time.sleep(0.3)  # the logging collector is asynchronous
        stmts = server_log_statements(ctx, since, db)
        proxy.reset()
        ctx.run(*make(proxy.port), cwd=ctx.work, what=f"{name} via proxy")
        proxy.wait_idle()
        trips[name] = dict(proxy.snapshot(), statements=len(stmts), sql=[s for _, s in stmts])
    proxy.close()

    rows = []
    base = "wishlist-migrate"
    for name in peers:
        t = [x * 1000 for x in times[name]]
        ratio = "1" if name == base else f"{paired_ratio(times, base, name):.2f}"
        tr = trips.get(name, trips[base])
        rows.append([
            name, fmt_ms(statistics.median(t)), fmt_ms(min(t)), fmt_ms(max(t)), ratio, min_ratio(times, base, name),
            tr["round_trips"], tr["statements"],
        ])
    r_psql = paired_ratio(times, base, "psql select 1")
    r_drizzle = paired_ratio(times, base, "drizzle-orm migrate()")
    ok_psql, ok_drizzle = r_psql <= 0.5, r_drizzle <= 0.25
    ctx.headline.append(("1. no-op deploy vs psql", f"{r_psql:.2f}×", "≤ 0.5×", verdict(ok_psql)))
    ctx.headline.append(("1. no-op deploy vs drizzle-orm", f"{r_drizzle:.2f}×", "≤ 0.25×", verdict(ok_drizzle)))
    ours_sql = trips[base]["sql"]
    md = [
        "## 1. No-op deploy (everything already applied)",
        "",
        f"Whole-process wall time, {rounds} rounds, the peers alternating in rotating order after 2 warm-up rounds. "
        "Ratio = median over rounds of (wishlist-migrate ÷ peer) in the same round; the ratio of minima compares the "
        "least disturbed run of each. "
        "Round trips are counted on the wire by a relay in front of the server (a client flight that the server answers; "
        "TLS negotiation and SCRAM authentication included); statements from the server log (`log_statement = all`).",
        "",
        md_table(["peer", "median ms", "min ms", "max ms", "wishlist-migrate ÷ peer", "ratio of minima", "round trips", "statements"], rows),
        "",
        "Commands (same database, `DATABASE_URL` pointing at it, the repo's 2 migrations applied):",
        "",
        "```sh",
        "wishlist-migrate migrate                                   # release build, migrations embedded",
        "psql -X -q -c 'select 1' \"$DATABASE_URL\"",
        "MIGRATIONS_DIR=migrations node tests/peer/drizzle-migrate.mjs  # drizzle-orm migrate(), pinned package",
    ]
    if ctx.sqlx:
        md.append("sqlx migrate run --no-dotenv --source <the 2 migrations as 1_*.sql, 2_*.sql> -D \"$DATABASE_URL\"")
    md += ["```", "", f"Statements wishlist-migrate sends on a no-op run ({len(ours_sql)}):", ""]
    md += [f"{i + 1}. `{s[:110]}`" for i, s in enumerate(ours_sql)]
    md += [
        "",
        f"Budget: ≤ 0.5× psql (issue 14; it was 1.5×) → **{r_psql:.2f}×**, {verdict(ok_psql)}; ≤ 0.25× drizzle-orm → **{r_drizzle:.2f}×**, {verdict(ok_drizzle)}.",
    ]
    if not ctx.sqlx:
        md.append("\n_sqlx-cli was not installed, so QUICK mode skipped it (the full `make bench` installs it)._")
    n_psql = paired_ratio(times, NO_CA, "psql select 1")
    n_drizzle = paired_ratio(times, NO_CA, "drizzle-orm migrate()")
    ca_ms = statistics.median(times[base]) * 1000 - statistics.median(times[NO_CA]) * 1000
    md += [
        "",
        f"Diagnostic: the same binary with the system CA store hidden (`SSL_CERT_FILE`/`SSL_CERT_DIR` → empty) takes "
        f"{abs(ca_ms):.1f} ms {'less' if ca_ms >= 0 else 'more'} per process (medians): **{n_psql:.2f}× psql, "
        f"{n_drizzle:.2f}× drizzle-orm** — the cost of "
        "OpenSSL reading and parsing the distribution's CA bundle on this path (the server here offers no TLS).",
    ]
    ctx.part1 = {"times": times, "trips": trips, "ratios": (r_psql, r_drizzle), "no_ca": (n_psql, n_drizzle), "ca_ms": ca_ms}
    return "\n".join(md)
