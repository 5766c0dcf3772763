"""What every benchmark part shares: the run's context (`Ctx`: the throwaway cluster, the binaries,
the tools' environment, where results go), the formatting of BENCHMARKS.md, the alternating timing
loop, the server log, and the `wishlist_items` data set that parts 4, 5 and 8 load.

Parts import this module and never the driver (bench.py) or one another, so the modules of bench/
form no cycle (scripts/check-bench-imports.py).
"""

import json
import os
import re
import shutil
import statistics
import subprocess
import time

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


# Set once by the driver from --quick; verdict() reads it at call time.
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
# The wishlist_items data set, loaded by parts 4, 5 and 8

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
