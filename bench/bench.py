#!/usr/bin/env python3
"""wishlist-migrator benchmarks (issue 5). Run through `make bench` (or `make bench QUICK=1`),
which builds the release binaries, starts a throwaway PostgreSQL cluster and calls this.

Every comparison runs its peers alternately in the same loop (rotating the order each round)
so a noisy, shared machine slows all of them alike; ratios are the median of per-round ratios.
Nothing here asserts on time: a broken benchmark (a tool failing, a wrong result) makes the
run exit 1, a budget miss is only reported.

Standard library only, except matplotlib for the plot.
"""

import argparse
import datetime
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# lambda_bench does `import bench`: let it see this module (and its QUICK flag), not a second copy.
sys.modules.setdefault("bench", sys.modules[__name__])
import history  # noqa: E402
from pgproxy import CountingProxy  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NO_CA = "wishlist-migrate, system CA store hidden (diagnostic)"
SAME_WORK = "psql, same server work as wishlist-migrate (diagnostic)"
STORES = ["LEGO", "BrickLink", "Barweer", "Cata", "Other"]


class BenchError(Exception):
    """A benchmark could not produce a valid measurement (as opposed to a budget miss)."""


# ---------------------------------------------------------------------------------------------
# Helpers


def pct(values, p):
    """Percentile by linear interpolation between closest ranks (numpy's default)."""
    s = sorted(values)
    if not s:
        return float("nan")
    k = (len(s) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def fmt_ms(v):
    if v != v:
        return "n/a"
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def fmt_rows(n):
    if n >= 1_000_000:
        return f"{n / 1_000_000:g}M"
    if n >= 1000:
        return f"{n / 1000:g}K"
    return str(n)


def md_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


QUICK = False


def verdict(ok):
    if QUICK:
        return "not judged (QUICK: debug build, small sizes)"
    return "within budget" if ok else "**over budget**"


def log(msg):
    print(f"bench: {msg}", flush=True)


class Ctx:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.pg_dir = args.pg_dir
        self.pg_bin = args.pg_bin
        self.psql_bin = os.path.join(args.pg_bin, "psql")
        self.cli = args.cli
        self.sqlx = args.sqlx or None
        self.lambda_bin = args.lambda_bin or None
        self.work = args.work
        with open(os.path.join(self.pg_dir, "port")) as f:
            self.port = int(f.read().strip())
        with open(os.path.join(self.pg_dir, "password")) as f:
            self.password = f.read().strip()
        empty_dir = os.path.join(self.work, "no-ca")
        os.makedirs(empty_dir, exist_ok=True)
        open(os.path.join(empty_dir, "empty.pem"), "w").close()
        self.no_ca_env = {"SSL_CERT_FILE": os.path.join(empty_dir, "empty.pem"), "SSL_CERT_DIR": empty_dir}
        self.failures = []
        self.sections = {}
        self.plot_data = {}
        self.headline = []
        # Tools must see only the database and settings we give them, not the caller's.
        self.env = {
            k: v for k, v in os.environ.items()
            if not (k.startswith(("PG", "DB_", "AWS_", "MIGRATION", "SSL_CERT")) or k in (
                "DATABASE_URL", "APP_ENV", "RUST_LOG", "LOCK_WAIT_SECONDS", "LOCK_TIMEOUT_RETRIES",
                "STATEMENT_TIMEOUT_MS", "ALLOW_UNKNOWN_MIGRATIONS", "SSM_PREFIX"))
        }

    def url(self, db="postgres", port=None):
        return f"postgres://postgres:{self.password}@127.0.0.1:{port or self.port}/{db}"

    def redact(self, text):
        return text.replace(self.password, "***")

    def psql(self, sql, db="postgres"):
        r = subprocess.run(
            [self.psql_bin, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", self.url(db), "-f", "-"],
            input=sql, text=True, capture_output=True, env=self.env,
        )
        if r.returncode != 0:
            raise BenchError(f"psql on {db} failed: {r.stderr.strip()}\n--- SQL ---\n{sql[:600]}")
        return r.stdout.strip()

    def create_db(self, name, template="template0"):
        # The checkpoint writes out what earlier runs left dirty, so a timed run does not share
        # the disk with that flush (whichever peer happened to come next would pay for it).
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE); CREATE DATABASE "{name}" TEMPLATE {template}; CHECKPOINT;')

    def drop_db(self, name):
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE);')

    def run(self, cmd, env_extra=None, cwd=ROOT, check=True, what=None):
        env = dict(self.env, **(env_extra or {}))
        t0 = time.perf_counter()
        r = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
        dt = time.perf_counter() - t0
        if check and r.returncode != 0:
            raise BenchError(
                f"{what or cmd[0]} exited {r.returncode}: {self.redact(r.stderr.strip() or r.stdout.strip())[:2000]}"
            )
        return dt, r

    def ours(self, db, *args, migrations=None, port=None, json_out=False):
        cmd = [self.cli]
        if json_out:
            cmd.append("--json")
        if migrations:
            cmd += ["--migrations", migrations]
        return cmd + list(args), {"DATABASE_URL": self.url(db, port)}

    def drizzle(self, db, migrations, port=None):
        return ["node", os.path.join(ROOT, "tests", "peer", "drizzle-migrate.mjs")], {"DATABASE_URL": self.url(db, port), "MIGRATIONS_DIR": migrations}

    def sqlx_cmd(self, db, source, port=None):
        return [self.sqlx, "migrate", "run", "--no-dotenv", "--source", source, "-D", self.url(db, port)], {}

    def psql_cmd(self, db, *args, port=None):
        return [self.psql_bin, "-X", "-q", *args, self.url(db, port)], {}


def alternate(ctx, peers, rounds, prepare=None, after=None):
    """Runs every peer once per round, rotating the order each round; returns {peer: [s]}."""
    names = list(peers)
    times = {n: [] for n in names}
    for i in range(rounds):
        order = names[i % len(names):] + names[: i % len(names)]
        for name in order:
            if prepare:
                prepare(name, i)
            cmd, env = peers[name](i)
            dt, _ = ctx.run(cmd, env, cwd=ctx.work, what=name)
            times[name].append(dt)
            if after:
                after(name, i)
    return times


def paired_ratio(times, a, b):
    return statistics.median(x / y for x, y in zip(times[a], times[b]))


def min_ratio(times, a, b):
    """The ratio of the two fastest runs: what each costs when the machine left it alone."""
    return "1" if a == b else f"{min(times[a]) / min(times[b]):.2f}"


def sqlx_folder_from_journal(src, dst):
    """sqlx's layout for a drizzle-kit folder: `<n>_<description>.sql`, same SQL."""
    os.makedirs(dst, exist_ok=True)
    with open(os.path.join(src, "meta", "_journal.json")) as f:
        entries = json.load(f)["entries"]
    for e in entries:
        desc = e["tag"].split("_", 1)[1] if "_" in e["tag"] else e["tag"]
        shutil.copyfile(os.path.join(src, e["tag"] + ".sql"), os.path.join(dst, f"{e['idx'] + 1}_{desc}.sql"))
    return dst


def server_log_size(ctx):
    return os.path.getsize(os.path.join(ctx.pg_dir, "server.log"))


def server_log_statements(ctx, since, db):
    """Statements the server logged for `db` since byte offset `since` (log_statement = all)."""
    with open(os.path.join(ctx.pg_dir, "server.log"), errors="replace") as f:
        f.seek(since)
        lines = f.read().splitlines()
    out = []
    pat = re.compile(rf"db={re.escape(db)} app=(\S*) LOG:  (statement|execute [^:]*): (.*)")
    for line in lines:
        m = pat.search(line)
        if m:
            out.append((m.group(1), m.group(3).strip()))
    return out


# ---------------------------------------------------------------------------------------------
# Part 1: no-op deploy


def part1(ctx):
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


# ---------------------------------------------------------------------------------------------
# Part 2: apply a long history


def part2(ctx):
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


# ---------------------------------------------------------------------------------------------
# Data loading shared by parts 4 and 5

LOAD_SQL = """
SET maintenance_work_mem = '512MB';
SET max_parallel_maintenance_workers = 1;
SELECT setseed({seed});
INSERT INTO wishlist_items (id, user_id, title, store, set_number, source_url, image_url, price, currency,
    piece_count, release_date, tags, priority, notes, sort_order, created_at, updated_at)
SELECT md5('w' || g)::uuid,
       md5('user' || u)::uuid::text,
       (ARRAY['Millennium Falcon', 'Hogwarts Castle', 'Eiffel Tower', 'Titanic', 'Colosseum', 'Bonsai Tree',
              'Orchid', 'Modular Bookshop', 'Rivendell', 'Atari 2600'])[1 + g % 10] || ' ' || (10000 + g % 90000),
       (CASE WHEN r1 < 0.50 THEN 'LEGO' WHEN r1 < 0.70 THEN 'BrickLink' WHEN r1 < 0.85 THEN 'Other'
             WHEN r1 < 0.95 THEN 'Barweer' ELSE 'Cata' END){store_cast},
       (10000 + g % 90000)::text,
       'https://shop.example.com/sets/' || (10000 + g % 90000),
       'https://img.example.com/sets/' || (10000 + g % 90000) || '.jpg',
       round((9.99 + r2 * 790)::numeric, 2),
       (CASE WHEN r2 < 0.70 THEN 'USD' WHEN r2 < 0.85 THEN 'EUR' WHEN r2 < 0.93 THEN 'GBP'
             WHEN r2 < 0.97 THEN 'CAD' ELSE 'AUD' END){currency_cast},
       100 + g % 7500,
       timestamptz '2015-01-01' + (g % 3650) * interval '1 day',
       CASE g % 4 WHEN 0 THEN '["star wars", "ucs"]'::jsonb WHEN 1 THEN '["technic"]'::jsonb ELSE '[]'::jsonb END,
       CASE WHEN r3 < 0.40 THEN 0 WHEN r3 < 0.60 THEN 1 WHEN r3 < 0.75 THEN 2 WHEN r3 < 0.87 THEN 3
            WHEN r3 < 0.95 THEN 4 ELSE 5 END,
       CASE WHEN g % 5 = 0 THEN 'Birthday idea; check the retiring-soon list' END,
       so,
       now() - (g % 20000) * interval '1 hour',
       now() - (g % 5000) * interval '1 hour'
FROM ({source}) s;
"""

# Row g is the g-th item ever added (sort_order = g, so every list is ordered by insertion).
# In the first load a share of the rows goes to the heavy cohort (users 1..H, ~12,500 items each,
# spread over the whole load as collectors add items over the years, so their rows are scattered
# across the heap as in production); every other row goes to one of the other users, skewed towards
# low user numbers (u = H+1 + floor((users-H) * random()^2)), so the tail grows a few more big
# lists as the table grows.
ROW_SOURCE = """
SELECT g::bigint AS g,
       CASE WHEN random() < {heavy_share} THEN 1 + floor(random() * {heavy})::int
            ELSE {heavy} + 1 + floor(({users} - {heavy}) * power(random(), 2))::int END AS u,
       g::int AS so, random() AS r1, random() AS r2, random() AS r3
FROM generate_series({lo} + 1, {hi}) g
"""


class Shape:
    def __init__(self, quick):
        self.users = 10_000 if quick else 100_000
        self.heavy = 2 if quick else 20
        self.heavy_items = 12_500

    def heavy_share(self, first_load_rows):
        share = self.heavy * self.heavy_items / first_load_rows
        if share >= 1:
            raise BenchError(f"the first load ({first_load_rows} rows) is too small for the heavy cohort")
        return share

    def user_id(self, u):
        import hashlib

        h = hashlib.md5(f"user{u}".encode()).hexdigest()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def index_definitions(ctx, db):
    out = ctx.psql(
        """
        select coalesce(json_agg(json_build_object('name', i.relname, 'def', pg_get_indexdef(i.oid),
               'con', c.conname, 'condef', pg_get_constraintdef(c.oid)) order by i.relname), '[]')
        from pg_index x join pg_class i on i.oid = x.indexrelid
        left join pg_constraint c on c.conindid = x.indexrelid and c.contype in ('p', 'u')
        where x.indrelid = 'wishlist_items'::regclass
        """,
        db,
    )
    return json.loads(out)


def load_rows(ctx, db, shape, lo, hi, enum_casts, seed):
    """Adds rows lo+1..hi. Indexes are dropped and rebuilt around the load: a sorted build is
    several times faster than 6 indexes maintained row by row. Returns timings."""
    defs = index_definitions(ctx, db)
    drops = [
        f'ALTER TABLE wishlist_items DROP CONSTRAINT "{d["con"]}";' if d["con"] else f'DROP INDEX "{d["name"]}";'
        for d in defs
    ]
    ctx.psql("\n".join(drops), db)
    casts = {"store_cast": "::wishlist_store", "currency_cast": "::wishlist_currency"} if enum_casts else {"store_cast": "", "currency_cast": ""}
    t0 = time.perf_counter()
    share = shape.heavy_share(hi) if lo == 0 else 0
    src = ROW_SOURCE.format(heavy=shape.heavy, users=shape.users, lo=lo, hi=hi, heavy_share=share)
    ctx.psql(LOAD_SQL.format(seed=seed, source=src, **casts), db)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    builds = {}
    for d in defs:
        t1 = time.perf_counter()
        sql = f'ALTER TABLE wishlist_items ADD CONSTRAINT "{d["con"]}" {d["condef"]};' if d["con"] else d["def"] + ";"
        ctx.psql("SET maintenance_work_mem = '512MB'; SET max_parallel_maintenance_workers = 1;\n" + sql, db)
        builds[d["name"]] = time.perf_counter() - t1
    index_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    # VACUUM sets the visibility map as autovacuum would on a live table, so index-only scans
    # are judged as they run in production; ANALYZE gives the planner the skew.
    ctx.psql("VACUUM (ANALYZE) wishlist_items;", db)
    vacuum_s = time.perf_counter() - t0
    n = int(ctx.psql("select count(*) from wishlist_items", db))
    if n != hi:
        raise BenchError(f"loaded {n} rows, expected {hi}")
    return {"load_s": load_s, "index_s": index_s, "vacuum_s": vacuum_s, "builds": builds}


# ---------------------------------------------------------------------------------------------
# Part 4: the wishlist schema at scale

QUERIES = [
    ("gallery", "gallery, first page", "SELECT * FROM wishlist_items WHERE user_id = $1 ORDER BY sort_order LIMIT 20"),
    ("store", "filter by store", "SELECT * FROM wishlist_items WHERE user_id = $1 AND store = $2 ORDER BY sort_order LIMIT 20"),
    ("priority", "filter by priority", "SELECT * FROM wishlist_items WHERE user_id = $1 AND priority = $2 ORDER BY sort_order LIMIT 20"),
    ("store_priority", "filter by store + priority",
     "SELECT * FROM wishlist_items WHERE user_id = $1 AND store = $2 AND priority = $3 ORDER BY sort_order LIMIT 20"),
    ("page_offset", "page 451 (items 9001-9020), OFFSET",
     "SELECT * FROM wishlist_items WHERE user_id = $1 ORDER BY sort_order LIMIT 20 OFFSET 9000"),
    ("page_keyset", "page 451 (items 9001-9020), keyset",
     "SELECT * FROM wishlist_items WHERE user_id = $1 AND sort_order > $2 ORDER BY sort_order LIMIT 20"),
    ("gallery_typical", "gallery, first page (typical user)",
     "SELECT * FROM wishlist_items WHERE user_id = $1 ORDER BY sort_order LIMIT 20"),
]


def query_params(ctx, db, shape):
    heavy = [shape.user_id(u) for u in range(1, shape.heavy + 1)]
    rng = random.Random(5)
    keyset = []
    for uid in heavy:
        so = ctx.psql(f"select sort_order from wishlist_items where user_id = '{uid}' order by sort_order offset 8999 limit 1", db)
        keyset.append([uid, int(so)])
    combos = [[u, s, p] for u in heavy for s in STORES for p in range(6)]
    rng.shuffle(combos)
    typical = ctx.psql(
        f"""select json_agg(user_id) from (select user_id from wishlist_items
              where user_id in (select md5('user' || u)::uuid::text from generate_series({shape.heavy + 1}, {shape.users}, 997) u)
              group by user_id order by user_id limit 50) t""",
        db,
    )
    return {
        "gallery": [[u] for u in heavy],
        "store": [[u, s] for s in STORES for u in heavy],
        "priority": [[u, p] for p in range(6) for u in heavy],
        "store_priority": combos,
        "page_offset": [[u] for u in heavy],
        "page_keyset": keyset,
        "gallery_typical": [[u] for u in json.loads(typical)],
    }


def measure_queries(ctx, dbs, params, iterations):
    """Latency of every hot query in each database of `dbs` ({label: db}), all interleaved in one
    loop so that A and B see the same machine; returns {label: {query: stats}}."""
    queries = []
    for label, db in dbs.items():
        for k, _, sql in QUERIES:
            queries.append({"name": f"{label}:{k}", "url": ctx.url(db), "sql": sql, "params": params[k],
                            "minRows": 20 if k in ("gallery", "page_offset", "page_keyset") else 0})
    spec = {"url": ctx.url(), "warmup": 1, "iterations": iterations, "queries": queries}
    spec_path = os.path.join(ctx.work, "latency-spec.json")
    out_path = os.path.join(ctx.work, "latency-out.json")
    with open(spec_path, "w") as f:
        json.dump(spec, f)
    ctx.run(["node", os.path.join(ROOT, "bench", "pgclient.mjs"), "latency", spec_path, out_path], what="latency client")
    with open(out_path) as f:
        samples = json.load(f)
    out = {}
    for label, db in dbs.items():
        out[label] = {}
        for k, _, sql in QUERIES:
            got = samples[f"{label}:{k}"]
            ms = [s[0] for s in got]
            # The plan shown is that of the structurally slowest parameters: EXPLAIN the three
            # parameter sets with the slowest samples and keep the one that executes longest.
            slowest = []
            for _, p in sorted(got, key=lambda s: -s[0]):
                if p not in slowest:
                    slowest.append(p)
                if len(slowest) == 3:
                    break
            plans = [explain(ctx, db, sql, params[k][p]) for p in slowest]
            out[label][k] = {"p50": pct(ms, 50), "p95": pct(ms, 95), "max": max(ms), "n": len(ms),
                             "explain": max(plans, key=lambda e: e["exec_ms"] or 0)}
    return out


def sql_literal(v):
    if isinstance(v, (int, float)):
        return str(v)
    return "'" + str(v).replace("'", "''") + "'"


def explain(ctx, db, sql, params):
    """EXPLAIN (ANALYZE, BUFFERS) for the parameters of the slowest sample, planned with their
    values as the application's unnamed statements are (a custom plan)."""
    out = ctx.psql(
        f"PREPARE q AS {sql};\nEXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE q({', '.join(sql_literal(p) for p in params)});",
        db,
    )
    plan = json.loads(out)[0]
    top = plan["Plan"]

    def chain(node):
        label = node["Node Type"]
        if "Index Name" in node:
            label += f" ({node['Index Name']})"
        kids = node.get("Plans", [])
        if not kids:
            return label
        return label + " → " + " + ".join(chain(k) for k in kids)

    def types(node):
        yield node["Node Type"]
        for k in node.get("Plans", []):
            yield from types(k)

    def sorts(node):
        if node.get("Sort Method"):
            yield f"{node['Sort Method']}, {node.get('Sort Space Used', '?')} kB {node.get('Sort Space Type', '').lower()}"
        for k in node.get("Plans", []):
            yield from sorts(k)

    t = list(types(top))
    return {
        "sort": "; ".join(sorts(top)),
        "path": chain(top),
        "index_path": any("Index" in x for x in t) and "Seq Scan" not in t,
        "buffers": top.get("Shared Hit Blocks", 0) + top.get("Shared Read Blocks", 0),
        "exec_ms": plan.get("Execution Time"),
        "params": params,
    }


def index_sizes(ctx, db):
    out = ctx.psql(
        """select json_object_agg(indexrelid::regclass::text, pg_relation_size(indexrelid))
           from pg_index where indrelid = 'wishlist_items'::regclass""",
        db,
    )
    return json.loads(out)


def proposal_folder(ctx, proposal):
    """The project's migrations plus a proposal appended to the journal, so the proposal is
    applied by wishlist-migrate exactly as a release would apply it."""
    dst = os.path.join(ctx.work, "with-" + os.path.splitext(os.path.basename(proposal))[0])
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(os.path.join(ROOT, "migrations"), dst)
    with open(os.path.join(dst, "meta", "_journal.json")) as f:
        journal = json.load(f)
    tag = os.path.splitext(os.path.basename(proposal))[0]
    last = journal["entries"][-1]
    journal["entries"].append({"idx": last["idx"] + 1, "version": "7", "when": last["when"] + 60_000, "tag": tag, "breakpoints": True})
    shutil.copyfile(proposal, os.path.join(dst, tag + ".sql"))
    with open(os.path.join(dst, "meta", "_journal.json"), "w") as f:
        json.dump(journal, f, indent=2)
    return dst, tag


def part4(ctx):
    shape = Shape(ctx.quick)
    sizes = [50_000, 100_000] if ctx.quick else [1_000_000, 2_500_000, 5_000_000]
    iterations = 40 if ctx.quick else 500
    # One database per size, each grown from a copy of the previous one, so that every size and
    # the proposal can be measured in one interleaved loop: sizes compared across separate runs
    # on a shared machine would mostly compare the load of the moment.
    dbs = {s: f"scale_{fmt_rows(s).replace('.', '_').lower()}" for s in sizes}
    results = {}
    loads = {}
    have = 0
    prev = None
    largest = sizes[-1]
    for size in sizes:
        db = dbs[size]
        if prev is None:
            ctx.create_db(db)
            ctx.run(*ctx.ours(db, "migrate"), what="wishlist-migrate (scale schema)")
        else:
            ctx.drop_db(db)
            ctx.psql(f'CREATE DATABASE "{db}" TEMPLATE "{prev}" STRATEGY FILE_COPY;')
        log(f"part 4: loading to {fmt_rows(size)} rows")
        loads[size] = load_rows(ctx, db, shape, have, size, enum_casts=True, seed=0.42 if prev is None else 0.42 * have / size)
        have, prev = size, db
    db = dbs[largest]
    params = query_params(ctx, db, shape)
    stats = json.loads(ctx.psql(
        """select json_build_object('users', count(*), 'max', max(n), 'p50', percentile_cont(0.5) within group (order by n),
                  'ge10k', count(*) filter (where n >= 10000))
           from (select count(*) n from wishlist_items group by user_id) t""", db))
    before_sizes = index_sizes(ctx, db)

    # The proposal goes into a copy of the largest table, applied through wishlist-migrate as a
    # release would apply it.
    proposal = os.path.join(ROOT, "bench", "proposals", "0002_wishlist_filter_sort_indexes.sql")
    folder, tag = proposal_folder(ctx, proposal)
    db_b = "scale_proposal"
    log(f"part 4: copying the {fmt_rows(largest)}-row database, applying the index proposal with wishlist-migrate")
    ctx.drop_db(db_b)
    ctx.psql(f'CREATE DATABASE "{db_b}" TEMPLATE "{db}" STRATEGY FILE_COPY;')
    dt, r = ctx.run(*ctx.ours(db_b, "migrate", migrations=folder, json_out=True), what="wishlist-migrate (proposal)")
    rep = json.loads(r.stdout)
    if rep["status"] != "applied" or [a["tag"] for a in rep["applied"]] != [tag]:
        raise BenchError(f"proposal not applied as expected: {r.stdout[:400]}")
    ctx.psql("ANALYZE wishlist_items;", db_b)
    after_sizes = index_sizes(ctx, db_b)
    log(f"part 4: measuring {len(QUERIES)} queries × {iterations} on {len(sizes)} sizes and the proposal, interleaved")
    labels = {fmt_rows(s): dbs[s] for s in sizes}
    labels["proposal"] = db_b
    measured = measure_queries(ctx, labels, params, iterations)
    results = {s: measured[fmt_rows(s)] for s in sizes}
    after = measured["proposal"]
    for d in list(dbs.values()) + [db_b]:
        ctx.drop_db(d)
    ctx.part4 = {"results": results, "after": after, "sizes": sizes}
    ctx.plot_data = {"sizes": sizes, "results": results, "after": after}

    md = [
        "## 4. The wishlist schema at scale",
        "",
        f"`wishlist_items` after the project's migrations (0000 + 0001), loaded with `INSERT … SELECT generate_series` "
        f"to {', '.join(fmt_rows(s) for s in sizes)} rows: {stats['users']:,} users; a heavy cohort of {shape.heavy} collectors "
        f"with ~{shape.heavy_items:,} items each (added in the first {fmt_rows(sizes[0])} rows, so scattered over the heap as "
        "in production), the other rows skewed "
        f"towards low user numbers (at {fmt_rows(largest)}: median {stats['p50']:.0f} items per user, largest list "
        f"{stats['max']:,}, {stats['ge10k']} users with ≥ 10K items). Stores 50% LEGO, 20% BrickLink, 15% Other, "
        "10% Barweer, 5% Cata; priority 0–5 skewed to 0. Each size is its own database (grown from a copy of the "
        "previous one; indexes rebuilt after each load, then `VACUUM (ANALYZE)`), so all sizes and the proposal are "
        "measured in one interleaved loop. The collectors' lists are the same rows at every size, so a difference "
        "between sizes with the same plan and the same buffer count is the machine (caches, neighbours), not the size.",
        "",
        f"Latency = client-side time of one query through the pinned `pg` driver (the application's driver; unnamed "
        f"parameterised statements), warm cache (every parameter set run once untimed first), {iterations} runs per query "
        f"per database, all queries and databases interleaved, parameters "
        f"cycling over the heavy cohort's users (every store, every priority, every store × priority) — the worst case the "
        "seed worried about; `gallery (typical user)` uses 50 ordinary users. The plan is `EXPLAIN (ANALYZE, BUFFERS)` "
        "of the slowest sample's parameters.",
        "",
        "Queries (`SELECT *`, as drizzle's `select()` does):",
        "",
    ]
    md += [f"- **{label}**: `{sql}`" for _, label, sql in QUERIES]
    md += ["", f"### Before: the schema as migrated (0000 + 0001)", ""]
    rows = []
    for k, label, _ in QUERIES:
        row = [label]
        for s in sizes:
            r_ = results[s][k]
            row.append(f"{fmt_ms(r_['p50'])} / {fmt_ms(r_['p95'])}")
        e = results[largest][k]["explain"]
        ok = results[largest][k]["p95"] <= 5 and e["index_path"]
        row += [f"`{e['path']}`", e["buffers"], verdict(ok)]
        rows.append(row)
    md.append(md_table(["query"] + [f"{fmt_rows(s)} p50 / p95 ms" for s in sizes] + [f"plan at {fmt_rows(largest)} (slowest params)", "buffers", f"p95 ≤ 5 ms at {fmt_rows(largest)}"], rows))
    misses = [label for k, label, _ in QUERIES if not (results[largest][k]["p95"] <= 5 and results[largest][k]["explain"]["index_path"])]
    # The planner's choice can change with the table's size and statistics; say where it did.
    for k, label, _ in QUERIES:
        paths = {sz: results[sz][k]["explain"]["path"] for sz in sizes}
        if len(set(paths.values())) > 1:
            md += ["", f"Plan of *{label}* by size: " + "; ".join(
                f"{fmt_rows(sz)} `{pth}` ({results[sz][k]['explain']['buffers']} buffers)" for sz, pth in paths.items())]
    md += [
        "",
        "Load and index build times: " + "; ".join(
            f"{fmt_rows(s)}: load {loads[s]['load_s']:.0f} s, indexes {loads[s]['index_s']:.0f} s, vacuum+analyze {loads[s]['vacuum_s']:.0f} s"
            for s in sizes
        ) + ".",
        "",
        f"### After: `bench/proposals/{os.path.basename(proposal)}` applied (at {fmt_rows(largest)})",
        "",
        f"Applied by `wishlist-migrate migrate` as migration `{tag}` in {dt:.1f} s (`CREATE INDEX CONCURRENTLY`, so it runs "
        "outside a transaction and writers are not blocked) to a copy of the largest database, measured in the same "
        "interleaved loop as the sizes, so before and after saw the same machine.",
        "",
    ]
    rows = []
    for k, label, _ in QUERIES:
        b, a = results[largest][k], after[k]
        ok = a["p95"] <= 5 and a["explain"]["index_path"]
        gain = b["p95"] / a["p95"] if a["p95"] > 0 else float("nan")
        rows.append([label, f"{fmt_ms(b['p50'])} / {fmt_ms(b['p95'])}", f"{fmt_ms(a['p50'])} / {fmt_ms(a['p95'])}", f"{gain:.1f}×",
                     f"`{a['explain']['path']}`", a["explain"]["buffers"], verdict(ok)])
    md.append(md_table(["query", "before p50 / p95 ms", "after p50 / p95 ms", "p95 gain", "plan after", "buffers", "p95 ≤ 5 ms"], rows))
    total_before = sum(before_sizes.values())
    total_after = sum(after_sizes.values())
    md += [
        "",
        f"Index footprint at {fmt_rows(largest)}: {total_before / 2**20:,.0f} MiB before, {total_after / 2**20:,.0f} MiB after "
        f"({len(before_sizes)} → {len(after_sizes)} indexes).",
    ]
    after_misses = [label for k, label, _ in QUERIES if not (after[k]["p95"] <= 5 and after[k]["explain"]["index_path"])]
    ctx.headline.append((f"4. hot queries p95 at {fmt_rows(largest)} (schema as is)",
                         f"{len(QUERIES) - len(misses)}/{len(QUERIES)} ≤ 5 ms" + (f"; misses: {', '.join(misses)}" if misses else ""),
                         "all ≤ 5 ms on an index path", verdict(not misses)))
    ctx.headline.append((f"4. … with the index proposal",
                         f"{len(QUERIES) - len(after_misses)}/{len(QUERIES)} ≤ 5 ms" + (f"; misses: {', '.join(after_misses)}" if after_misses else ""),
                         "all ≤ 5 ms on an index path", verdict(not after_misses)))
    ctx.part4_misses = (misses, after_misses)
    return "\n".join(md)


# Part 5 (a migration on a populated table under writers) is bench/online_bench.py.


# ---------------------------------------------------------------------------------------------
# Part 6: drift


def part6(ctx):
    """`drift` on a ~60-table schema: against the baseline recorded by the last migrate (the usual
    case), and against one replayed into a scratch database (nothing recorded, e.g. after
    drizzle-orm applied the migrations). Plus a real history with its snapshots, where the
    snapshot comparison runs too."""
    count = 30 if ctx.quick else 360
    rounds = 3 if ctx.quick else 15
    hist = history.generate(os.path.join(ctx.work, "drift-history"), count)
    db = "p6_drift"
    ctx.create_db(db)
    ctx.run(*ctx.ours(db, "migrate", migrations=hist["drizzle_dir"]), what="wishlist-migrate (drift history)")

    def drift_times(database, migrations, baseline):
        times = []
        for _ in range(rounds):
            if baseline == "replayed":
                ctx.psql("UPDATE drizzle.wishlist_migrator_history SET catalog = NULL", database)
            dt, r = ctx.run(*ctx.ours(database, "drift", migrations=migrations, json_out=True), what=f"drift ({baseline})")
            rep = json.loads(r.stdout)
            if rep["status"] != "ok" or rep.get("baseline") != baseline:
                raise BenchError(f"drift ({baseline}) on {database}: {json.dumps(rep)[:600]}")
            times.append(dt)
        return times

    recorded = drift_times(db, hist["drizzle_dir"], "recorded")
    replayed = drift_times(db, hist["drizzle_dir"], "replayed")
    real = os.path.join(ROOT, "tests", "fixtures", "real-world", "homarr")
    ctx.create_db("p6_homarr")
    ctx.run(*ctx.ours("p6_homarr", "migrate", migrations=real), what="wishlist-migrate (homarr)")
    real_recorded = drift_times("p6_homarr", real, "recorded")
    real_tables = ctx.psql("select count(*) from pg_tables where schemaname = 'public'", "p6_homarr")
    ctx.drop_db(db)
    ctx.drop_db("p6_homarr")

    def row(name, times):
        return [name, fmt_ms(statistics.median(times) * 1000), fmt_ms(min(times) * 1000), fmt_ms(max(times) * 1000)]

    budget_ms = 300
    med = statistics.median(recorded) * 1000
    ok = med <= budget_ms
    ctx.headline.append((f"6. drift on {hist['tables']} tables (recorded baseline)", f"{fmt_ms(med)} ms", f"≤ {budget_ms} ms", verdict(ok)))
    md = [
        "## 6. drift",
        "",
        f"Wall time of `wishlist-migrate --json drift` (process start to exit, {rounds} runs each) on the generated history "
        f"of part 2 at {count} migrations ({hist['tables']} tables, {hist['statements']} statements; it has no snapshots, so "
        f"only the manual-change question is answered there), and on the real homarr history ({real_tables} tables, with "
        "its snapshots: both questions).",
        "",
        md_table(
            ["case", "median ms", "min ms", "max ms"],
            [
                row(f"{hist['tables']} tables, recorded baseline (after this tool's migrate)", recorded),
                row(f"{hist['tables']} tables, replayed baseline (nothing recorded: CREATE DATABASE, replay {count} migrations, DROP)", replayed),
                row(f"homarr ({real_tables} tables), recorded baseline and snapshot comparison", real_recorded),
            ],
        ),
        "",
        f"Budget: {budget_ms} ms on a ~60-table schema with the recorded baseline: {verdict(ok)}. The replay is the "
        "fallback, paid only when nothing was recorded for the current ledger.",
    ]
    return "\n".join(md)



# ---------------------------------------------------------------------------------------------
# Part 8: lint (bench/lint_bench.py)


def part8(ctx):
    import lint_bench

    return lint_bench.run(ctx)


# ---------------------------------------------------------------------------------------------
# Part 9: memory of a huge migration (bench/memory_bench.py)


def part9(ctx):
    import memory_bench

    return memory_bench.run(ctx)


# ---------------------------------------------------------------------------------------------
# Part 3: Lambda (needs the lambda binary; see bench/lambda_rt.py)


def part3(ctx):
    if ctx.args.lambda_broken:
        raise BenchError(ctx.args.lambda_broken)
    if not ctx.lambda_bin:
        return ("## 3. Lambda\n\n_Not measured in this run: the `wishlist-migrator-lambda` binary was not available "
                "(scripts/bench.sh builds it when `src/bin/wishlist-migrator-lambda.rs` exists)._")
    import lambda_bench

    return lambda_bench.run(ctx)


# ---------------------------------------------------------------------------------------------
# Report


def machine(ctx):
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem = int(line.split()[1]) * 1024
    return {"cpu": model, "cores": os.cpu_count(), "mem_gib": mem / 2**30, "kernel": platform.release(),
            "load": os.getloadavg()}


def versions(ctx):
    def out(cmd, **kw):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, env=ctx.env, **kw).stdout.strip().splitlines()[0]
        except (OSError, IndexError):
            return "n/a"

    def pkg(name):
        with open(os.path.join(ROOT, "node_modules", name, "package.json")) as f:
            return json.load(f)["version"]

    rev = out(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    def last_word(cmd):
        # "psql (PostgreSQL) 15.18 (Debian …)" -> the version without repeating the tool's name.
        text = out(cmd)
        return re.sub(r"^\S+\s+(\(PostgreSQL\)\s+)?", "", text) if text != "n/a" else text

    v = {
        "wishlist-migrator commit": rev + (" plus uncommitted changes" if dirty else ""),
        "PostgreSQL server": ctx.psql("show server_version"),
        "psql": last_word([ctx.psql_bin, "--version"]),
        "wishlist-migrate": last_word([ctx.cli, "--version"]),
        "node": out(["node", "--version"]),
        "drizzle-orm / pg (npm)": f"{pkg('drizzle-orm')} / {pkg('pg')}",
        "sqlx-cli": last_word([ctx.sqlx, "--version"]) if ctx.sqlx else "not installed",
        "rustc": last_word(["rustc", "--version"]),
        "python": platform.python_version(),
    }
    try:
        import matplotlib

        v["matplotlib"] = matplotlib.__version__
    except ImportError:
        v["matplotlib"] = "missing"
    return v


def plot(ctx, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    d = ctx.plot_data
    if not d:
        return False
    sizes = d["sizes"]
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.8), sharey=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, key, title in ((axes[0], "p50", "p50"), (axes[1], "p95", "p95")):
        for i, (k, label, _) in enumerate(QUERIES):
            c = colors[i % len(colors)]
            ax.plot(sizes, [d["results"][s][k][key] for s in sizes], "o-", color=c, label=label)
            ax.plot([sizes[-1]], [d["after"][k][key]], marker="*", markersize=13, color=c, linestyle="none")
        ax.axhline(5, color="red", linestyle="--", linewidth=1)
        ax.text(sizes[0], 5 * 1.08, "budget 5 ms", color="red", fontsize=8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(sizes)
        ax.set_xticklabels([fmt_rows(s) for s in sizes])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("rows in wishlist_items")
        ax.set_title(f"{title} latency per query (★ = with bench/proposals index change)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("ms (client-side, pg driver, warm cache)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def render(ctx, started, finished, info, vers, plot_ok):
    md = [
        "# Benchmarks",
        "",
        "<!-- Generated by `make bench` (scripts/bench.sh → bench/bench.py); edit those, not this file. -->",
        "",
        f"Measured {started:%Y-%m-%d %H:%M} UTC in {(finished - started).total_seconds() / 60:.1f} min"
        + (" (QUICK mode: small sizes, few repetitions; numbers are a smoke test, not results)" if ctx.quick else "")
        + ". Reproduce with `make bench` (the runs above, plus the release builds when the sources changed: sqlx-cli is "
        "installed once into `.tools/`, and the Lambda is built a second time with 300 migrations embedded); "
        "`make bench QUICK=1` is the sanity run `make test` includes (small sizes, debug build, no verdicts).",
        "",
        f"**Machine**: {info['cores']} cores ({info['cpu']}), {info['mem_gib']:.0f} GiB memory, Linux {info['kernel']}; "
        f"load average {info['load'][0]:.2f} at the start and {os.getloadavg()[0]:.2f} at the end, the bench itself at "
        "`nice 10` — the machine is shared with other builds, which is why every "
        "comparison alternates its peers in the same loop and reports the median of per-round ratios, not absolute times "
        "from different runs.",
        "",
        "**Versions**: " + "; ".join(f"{k} {v}" for k, v in vers.items()) + ".",
        "",
        "**PostgreSQL**: a throwaway local cluster (`scripts/local-pg.sh`, TCP on 127.0.0.1 with scram-sha-256, no TLS), "
        "`shared_buffers` 2GB, `max_wal_size` 4GB, otherwise defaults (fsync and synchronous_commit on). Local TCP "
        "round trips cost ~0.05 ms here; against RDS each one costs 0.3–1 ms, which is why round trips are reported.",
        "",
        "## Summary",
        "",
        md_table(["benchmark", "measured", "budget", "verdict"], ctx.headline),
        "",
    ]
    if ctx.failures:
        md += ["**Broken in this run:** " + "; ".join(ctx.failures), ""]
    if "reading" in ctx.sections:
        md += [ctx.sections["reading"], ""]
    for key in ("part1", "part2", "part3", "part4", "part5", "part6", "part7", "part8", "part9"):
        if key in ctx.sections:
            md += [ctx.sections[key], ""]
            if key == "part4" and plot_ok:
                md += ["![query latency against table size](bench/latency.png)", ""]
    if "when" in ctx.sections:
        md += [ctx.sections["when"], ""]
    return "\n".join(md).rstrip() + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--pg-dir", required=True)
    ap.add_argument("--pg-bin", required=True)
    ap.add_argument("--cli", required=True)
    ap.add_argument("--sqlx", default="")
    ap.add_argument("--lambda-bin", default="")
    ap.add_argument("--lambda300-bin", default="", help="the Lambda built with part 2's 300-migration history embedded")
    ap.add_argument("--lambda-artifact", default="", help="the arm64 bootstrap cargo-lambda builds for deployment")
    ap.add_argument("--lambda-broken", default="", help="why a Lambda build failed (part 3 is then reported broken)")
    ap.add_argument("--work", required=True)
    ap.add_argument("--out-md", required=True)
    ap.add_argument("--out-png", required=True)
    ap.add_argument("--only", default="", help="comma-separated parts to run, e.g. 1,2 (for development)")
    args = ap.parse_args()
    global QUICK
    QUICK = args.quick
    ctx = Ctx(args)
    started = datetime.datetime.now(datetime.timezone.utc)
    info = machine(ctx)
    vers = versions(ctx)
    only = set(args.only.split(",")) if args.only else None
    import link  # part 7; it imports this module, so only once it is complete
    import online_bench  # part 5; the same
    parts = [("1", "part1", part1), ("2", "part2", part2), ("3", "part3", part3), ("4", "part4", part4), ("5", "part5", online_bench.part5), ("6", "part6", part6), ("7", "part7", link.part7), ("8", "part8", part8), ("9", "part9", part9)]
    for num, key, fn in parts:
        if only and num not in only:
            continue
        t0 = time.perf_counter()
        log(f"=== part {num}")
        try:
            ctx.sections[key] = fn(ctx)
        except Exception as e:  # noqa: BLE001 - every failure is reported, the other parts still run
            msg = ctx.redact(f"part {num}: {type(e).__name__}: {e}")
            log("BROKEN " + msg)
            if not isinstance(e, BenchError):
                traceback.print_exc()
            ctx.failures.append(msg.splitlines()[0])
            ctx.sections[key] = f"## Part {num}\n\n**Broken in this run**: `{msg.splitlines()[0]}`"
        log(f"part {num} took {time.perf_counter() - t0:.0f} s")
    import reading

    ctx.sections.update(reading.sections(ctx))
    plot_ok = False
    try:
        plot_ok = plot(ctx, args.out_png)
    except Exception as e:  # noqa: BLE001
        ctx.failures.append(f"plot: {e}")
    finished = datetime.datetime.now(datetime.timezone.utc)
    text = render(ctx, started, finished, info, vers, plot_ok)
    with open(args.out_md, "w") as f:
        f.write(text)
    print()
    print(md_table(["benchmark", "measured", "budget", "verdict"], ctx.headline))
    if ctx.failures:
        print("\nBROKEN: " + "\n        ".join(ctx.failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
