"""Part 2: applying a long generated history, against psql, drizzle-orm and sqlx."""

import json
import os
import re
import statistics

import history
from common import BenchError, NO_CA, SAME_WORK, alternate, fmt_ms, log, md_table, min_ratio, paired_ratio, verdict
from pgproxy import CountingProxy


def run(ctx):
    count = 30 if ctx.quick else 300
    rounds = 2 if ctx.quick else 9
    hist = history.generate(os.path.join(ctx.work, "history"), count)
    tables = hist["tables"]

    def validate(name, db):
        got = ctx.psql(
            "select count(*) from pg_tables where schemaname = 'public' and tablename <> '_sqlx_migrations'", db
        )
        if int(got) != tables:
            raise BenchError(f"{name}: {got} tables after the history, expected {tables}")
        if name in ("wishlist-migrate", NO_CA, SAME_WORK, "drizzle-orm migrate()"):
            n = ctx.psql('select count(*) from drizzle."__drizzle_migrations"', db)
            if int(n) != count:
                raise BenchError(f"{name}: {n} ledger rows, expected {count}")
        if name == "sqlx migrate run":
            n = ctx.psql("select count(*) from _sqlx_migrations where success", db)
            if int(n) != count:
                raise BenchError(f"{name}: {n} sqlx rows, expected {count}")

    def dbname(name, i):
        if name == NO_CA:
            name = "nocadiag"
        if name == SAME_WORK:
            name = "samework"
        return f"h{i}_" + re.sub(r"[^a-z]", "", name.split()[0].lower())

    def ours_no_ca(i):
        cmd, env = ctx.ours(dbname("nocadiag", i), "migrate", migrations=hist["drizzle_dir"])
        return cmd, dict(env, **ctx.no_ca_env)

    peers = {
        "wishlist-migrate": lambda i: ctx.ours(dbname("wishlist-migrate", i), "migrate", migrations=hist["drizzle_dir"]),
        NO_CA: ours_no_ca,
        "psql --single-transaction": lambda i: ctx.psql_cmd(
            dbname("psql", i), "-v", "ON_ERROR_STOP=1", "--single-transaction", "-f", hist["sql"]
        ),
        SAME_WORK: lambda i: ctx.psql_cmd(dbname("samework", i), "-v", "ON_ERROR_STOP=1", "-f", hist["same_work_sql"]),
        "drizzle-orm migrate()": lambda i: ctx.drizzle(dbname("drizzle-orm", i), hist["drizzle_dir"]),
    }
    if ctx.sqlx:
        peers["sqlx migrate run"] = lambda i: ctx.sqlx_cmd(dbname("sqlx", i), hist["sqlx_dir"])
    log(f"part 2: {count} generated migrations ({hist['statements']} statements), {rounds} alternating rounds")

    def prepare(name, i):
        ctx.create_db(dbname(name, i))

    def after(name, i):
        validate(name, dbname(name, i))
        ctx.drop_db(dbname(name, i))

    times = alternate(ctx, peers, rounds, prepare=prepare, after=after)

    # Segments our run committed, and round trips on the wire for one apply of each peer.
    ctx.create_db("h_json")
    _, r = ctx.run(*ctx.ours("h_json", "migrate", migrations=hist["drizzle_dir"], json_out=True), what="wishlist-migrate --json")
    report = json.loads(r.stdout)
    segments = len(report.get("segments") or [])
    ctx.drop_db("h_json")
    proxy = CountingProxy(ctx.port)
    trips = {}
    for name in peers:
        if name == NO_CA:
            continue
        db = dbname(name, 99)
        ctx.create_db(db)
        proxy.reset()
        cmd, env = {
            "wishlist-migrate": lambda: ctx.ours(db, "migrate", migrations=hist["drizzle_dir"], port=proxy.port),
            "psql --single-transaction": lambda: ctx.psql_cmd(db, "-v", "ON_ERROR_STOP=1", "--single-transaction", "-f", hist["sql"], port=proxy.port),
            SAME_WORK: lambda: ctx.psql_cmd(db, "-v", "ON_ERROR_STOP=1", "-f", hist["same_work_sql"], port=proxy.port),
            "drizzle-orm migrate()": lambda: ctx.drizzle(db, hist["drizzle_dir"], port=proxy.port),
            "sqlx migrate run": lambda: ctx.sqlx_cmd(db, hist["sqlx_dir"], port=proxy.port),
        }[name]()
        ctx.run(cmd, env, cwd=ctx.work, what=f"{name} via proxy")
        proxy.wait_idle()
        trips[name] = proxy.snapshot()["round_trips"]
        ctx.drop_db(db)
    proxy.close()

    base = "wishlist-migrate"
    rows = []
    for name in peers:
        t = [x * 1000 for x in times[name]]
        ratio = "1" if name == base else f"{paired_ratio(times, base, name):.2f}"
        rows.append([name, fmt_ms(statistics.median(t)), fmt_ms(min(t)), fmt_ms(max(t)), ratio, min_ratio(times, base, name),
                     trips.get(name, trips[base])])
    r_psql = paired_ratio(times, base, "psql --single-transaction")
    ok = r_psql <= 1.05
    ctx.headline.append((f"2. apply {count} migrations vs psql", f"{r_psql:.2f}×", "≤ 1.05×", verdict(ok)))
    per_stmt_ours = (statistics.median(times[base]) - statistics.median(times["psql --single-transaction"])) * 1000
    md = [
        f"## 2. Apply a long history ({count} migrations on an empty database)",
        "",
        f"A generated drizzle-kit history (`bench/history.py`, seed 2007): {count} migrations, {hist['statements']} statements, "
        f"{tables} tables with FKs, {hist['enum_types']} enum types (text→enum conversions, {hist['add_value_migrations']} "
        "`ALTER TYPE … ADD VALUE` migrations), btree/partial/expression/GIN indexes, CHECK and UNIQUE constraints, "
        "column adds/renames/drops/type changes. Each run gets a fresh empty database (created, then a CHECKPOINT, outside the timing); "
        f"{rounds} rounds, peers alternating, every result checked (tables, ledger rows).",
        "",
        md_table(["peer", "median ms", "min ms", "max ms", "wishlist-migrate ÷ peer", "ratio of minima", "round trips"], rows),
        "",
        "```sh",
        "wishlist-migrate --migrations \"$HISTORY\" migrate",
        "psql -X -q -v ON_ERROR_STOP=1 --single-transaction -f all.sql \"$DATABASE_URL\"   # the history concatenated",
        "MIGRATIONS_DIR=\"$HISTORY\" node tests/peer/drizzle-migrate.mjs",
    ]
    if ctx.sqlx:
        md.append("sqlx migrate run --no-dotenv --source \"$HISTORY_SQLX\" -D \"$DATABASE_URL\"   # same SQL as 1_*.sql … N_*.sql")
    md += [
        "```",
        "",
        f"wishlist-migrate committed this history in **{segments} transaction segments**: one commit after each "
        "`ADD VALUE` migration, so a later migration may use the new value (PostgreSQL refuses that inside the "
        "adding transaction, 55P04). The generated history never uses an added value, which is what lets "
        "`psql --single-transaction` and drizzle-orm (one transaction for everything) apply it at all; "
        "sqlx commits every migration separately.",
        "",
        f"Budget: ≤ 1.05× psql (issue 14: no loopback regression) → **{r_psql:.2f}×**, {verdict(ok)}.",
    ]
    ctx.part2 = {"times": times, "trips": trips, "segments": segments, "ratio": r_psql, "count": count,
                 "statements": hist["statements"], "extra_ms": per_stmt_ours}
    return "\n".join(md)
