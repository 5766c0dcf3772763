"""Part 7 of the benchmarks: the long histories and the no-op deploy over a network link.

A `LinkProxy` (bench/pgproxy.py, a wrapper over the Rust delay line bench/relay.rs) sits in front
of the server and delivers every chunk a chosen one-way time after it arrived, as a link between a
Lambda and its database would; the peers are timed through it and their round trips counted on
the same runs. Loopback (parts 1 and 2) makes a round trip almost free, so it cannot show what
pipelining buys: this part can.
"""

import json
import os
import socket
import statistics
import struct
import time

import history
from common import ROOT, BenchError, alternate, fmt_ms, log, md_table, paired_ratio, sqlx_folder_from_journal, verdict
from pgproxy import LinkProxy

REAL = "dittofeed"  # tests/fixtures/real-world/: a real drizzle-kit history, no statement outside a transaction
# The targets, over a 1 ms round trip (0.5 ms each way).
TARGET_DELAY = 0.5
TARGET_VS_PSQL = 0.35
TARGET_VS_DRIZZLE = 0.3


def real_history(ctx):
    """The real history as the peers take it: its drizzle folder, one SQL file, sqlx's layout."""
    src = os.path.join(ROOT, "tests", "fixtures", "real-world", REAL)
    out = os.path.join(ctx.work, "p7-real")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(src, "meta", "_journal.json")) as f:
        entries = json.load(f)["entries"]
    sql = os.path.join(out, "all.sql")
    statements = 0
    with open(sql, "w") as f:
        for e in entries:
            with open(os.path.join(src, e["tag"] + ".sql")) as m:
                body = m.read()
            statements += body.count("--> statement-breakpoint") + 1
            f.write(body.rstrip().rstrip(";") + ";\n")
    return {
        "name": f"real history ({REAL}, {len(entries)} migrations, {statements} statements)",
        "drizzle_dir": src,
        "sql": sql,
        "sqlx_dir": sqlx_folder_from_journal(src, os.path.join(out, "sqlx")),
        "count": len(entries),
    }


def run(ctx):
    delays = [TARGET_DELAY] if ctx.quick else [0.0, TARGET_DELAY, 2.0]
    rounds = 1 if ctx.quick else 3
    count = 30 if ctx.quick else 300
    gen = history.generate(os.path.join(ctx.work, "history"), count)
    histories = [
        dict(gen, name=f"generated history ({count} migrations, {gen['statements']} statements)", count=count),
        real_history(ctx),
    ]
    migrations = os.path.join(ROOT, "migrations")
    noop_sqlx = sqlx_folder_from_journal(migrations, os.path.join(ctx.work, "p7-noop-sqlx"))
    ctx.create_db("link_noop")
    ctx.create_db("link_noop_sqlx")
    ctx.run(*ctx.ours("link_noop", "migrate"), what="wishlist-migrate (first apply)")
    if ctx.sqlx:
        ctx.run(*ctx.sqlx_cmd("link_noop_sqlx", noop_sqlx), cwd=ctx.work, what="sqlx (first apply)")

    results = []  # (delay, workload, {peer: (times, trips)})
    rtts = {}
    for delay in delays:
        proxy = LinkProxy(ctx.port, delay, work_dir=ctx.work)
        try:
            rtts[delay] = effective_rtt(proxy)
            log(f"part 7: {delay} ms each way, effective round trip {rtts[delay]:.2f} ms")
            for h in histories:
                log(f"part 7: {h['name']}, {delay} ms each way, {rounds} round(s)")
                results.append((delay, h["name"], measure_history(ctx, proxy, h, rounds)))
            log(f"part 7: no-op deploy, {delay} ms each way")
            results.append((delay, "no-op deploy", measure_noop(ctx, proxy, migrations, noop_sqlx, rounds * 3)))
        finally:
            proxy.close()
    ctx.drop_db("link_noop")
    ctx.drop_db("link_noop_sqlx")
    return render(ctx, results, rounds, rtts)


def effective_rtt(proxy, n=30, settle=0.02):
    """The relay's real round trip to the server, median of `n`: an SSLRequest and the server's
    one-byte answer, each on a fresh connection left idle for `settle` seconds first, so the
    relay's connection to the server and the server's backend are in place and the figure is
    one round trip of an established connection (sent at once, it also timed the relay's connect
    and the backend's fork: ~2 ms more). The nominal delay is a lower bound."""
    times = []
    for _ in range(n):
        with socket.create_connection(("127.0.0.1", proxy.port)) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            time.sleep(settle)
            t = time.perf_counter()
            s.sendall(struct.pack("!ii", 8, 80877103))
            if not s.recv(1):
                raise BenchError("the server closed the connection instead of answering an SSLRequest")
            times.append((time.perf_counter() - t) * 1000)
    proxy.wait_idle()
    proxy.reset()
    return statistics.median(times)


def measure_history(ctx, proxy, h, rounds):
    def db(name, i):
        return f"l{i}_" + "".join(c for c in name.split()[0].lower() if c.isalpha())

    peers = {
        "wishlist-migrate": lambda i: ctx.ours(db("wishlist-migrate", i), "migrate", migrations=h["drizzle_dir"], port=proxy.port),
        "psql --single-transaction": lambda i: ctx.psql_cmd(
            db("psql --single-transaction", i), "-v", "ON_ERROR_STOP=1", "--single-transaction", "-f", h["sql"], port=proxy.port
        ),
        "drizzle-orm migrate()": lambda i: ctx.drizzle(db("drizzle-orm migrate()", i), h["drizzle_dir"], port=proxy.port),
    }
    if ctx.sqlx:
        peers["sqlx migrate run"] = lambda i: ctx.sqlx_cmd(db("sqlx migrate run", i), h["sqlx_dir"], port=proxy.port)
    trips = {}

    def prepare(name, i):
        ctx.create_db(db(name, i))
        proxy.reset()

    def after(name, i):
        proxy.wait_idle()
        trips[name] = proxy.snapshot()["round_trips"]
        if name in ("wishlist-migrate", "drizzle-orm migrate()"):
            n = ctx.psql('select count(*) from drizzle."__drizzle_migrations"', db(name, i))
            if int(n) != h["count"]:
                raise BenchError(f"{name} over the link: {n} ledger rows, expected {h['count']}")
        ctx.drop_db(db(name, i))

    times = alternate(ctx, peers, rounds, prepare=prepare, after=after)
    return {name: (times[name], trips[name]) for name in peers}


def measure_noop(ctx, proxy, migrations, noop_sqlx, rounds):
    peers = {
        "wishlist-migrate": lambda i: ctx.ours("link_noop", "migrate", port=proxy.port),
        "psql -c 'select 1'": lambda i: ctx.psql_cmd("link_noop", "-c", "select 1", port=proxy.port),
        "drizzle-orm migrate()": lambda i: ctx.drizzle("link_noop", migrations, port=proxy.port),
    }
    if ctx.sqlx:
        peers["sqlx migrate run"] = lambda i: ctx.sqlx_cmd("link_noop_sqlx", noop_sqlx, port=proxy.port)
    trips = {}

    def after(name, i):
        proxy.wait_idle()
        trips[name] = proxy.snapshot()["round_trips"]

    times = alternate(ctx, peers, rounds, prepare=lambda name, i: proxy.reset(), after=after)
    return {name: (times[name], trips[name]) for name in peers}


def render(ctx, results, rounds, rtts):
    base = "wishlist-migrate"
    rows = []
    for delay, workload, peers in results:
        for name, (times, trips) in peers.items():
            ms = [t * 1000 for t in times]
            ratio = "1" if name == base else f"{paired_ratio({k: v[0] for k, v in peers.items()}, base, name):.2f}"
            rows.append([f"{delay:g} ms ({rtts[delay]:.1f} ms)", workload, name, fmt_ms(statistics.median(ms)), fmt_ms(min(ms)), ratio, trips])
        if delay == TARGET_DELAY:
            times = {k: v[0] for k, v in peers.items()}
            if workload == "no-op deploy":
                r = paired_ratio(times, base, "psql -c 'select 1'")
                ctx.headline.append(("7. no-op deploy over a 1 ms link vs psql select 1", f"{r:.2f}×", "— (measured)", "see part 7"))
                continue
            short = workload.split(" (")[0]
            r_psql = paired_ratio(times, base, "psql --single-transaction")
            r_drizzle = paired_ratio(times, base, "drizzle-orm migrate()")
            ctx.headline.append((f"7. {short} over a 1 ms link vs psql --single-transaction", f"{r_psql:.2f}×",
                                 f"≤ {TARGET_VS_PSQL}×", verdict(r_psql <= TARGET_VS_PSQL)))
            ctx.headline.append((f"7. {short} over a 1 ms link vs drizzle-orm", f"{r_drizzle:.2f}×",
                                 f"≤ {TARGET_VS_DRIZZLE}×", verdict(r_drizzle <= TARGET_VS_DRIZZLE)))
    md = [
        "## 7. Over a network link (long histories and the no-op deploy)",
        "",
        "The same runs as parts 1 and 2, through a relay (`bench/relay.rs`, driven by `LinkProxy` in "
        "`bench/pgproxy.py`) that delivers every chunk either side sends a fixed one-way time after it arrived: "
        "0 ms is the relay alone, 0.5 ms each way is a 1 ms round trip (a Lambda and Aurora in one zone), 2 ms each "
        "way a link across zones or through a proxy. "
        f"Each history run gets a fresh empty database; {rounds} round(s) per history, {rounds * 3} per no-op, "
        "peers alternating; ratio = median of per-round ratios. Round trips are counted by the relay on the timed "
        "runs (the connection's TLS negotiation and SCRAM exchange included). The relay's real round trip, measured "
        "before each delay's runs (an SSLRequest answered by the server on an established, idle connection, median "
        "of 30), is in brackets: twice the nominal delay plus the relay's hop, the server's answer and the Python "
        "client's own overhead (~0.2 ms without the relay), and it is what each round trip cost.",
        "",
        md_table(["one way (measured round trip)", "workload", "peer", "median ms", "min ms", "wishlist-migrate ÷ peer", "round trips"], rows),
        "",
        "Targets over the 1 ms round trip: a long history in ≤ 0.35× `psql --single-transaction` of the same SQL "
        "and ≤ 0.3× drizzle-orm.",
    ]
    md += floor_lines(results, rtts)
    if not ctx.sqlx:
        md.append("\n_sqlx-cli was not installed, so this run skipped the sqlx peer._")
    return "\n".join(md)


def floor_lines(results, rtts):
    """How low the ratio can go at the target delay: a run over a link takes its time on the bare
    relay (server work and client work) plus its round trips times the link's round trip, so even a
    tool that made no round trip at all would take its 0 ms time. Needs the 0 ms runs (not in QUICK)."""
    at = {(d, w): peers for d, w, peers in results}
    lines = []
    for (delay, workload), peers in at.items():
        if delay != TARGET_DELAY or workload == "no-op deploy" or (0.0, workload) not in at:
            continue
        bare = at[(0.0, workload)]
        med = lambda p, name: statistics.median(p[name][0]) * 1000  # noqa: E731
        ours0, psql0 = med(bare, "wishlist-migrate"), med(bare, "psql --single-transaction")
        ours, psql = med(peers, "wishlist-migrate"), med(peers, "psql --single-transaction")
        trips = peers["wishlist-migrate"][1]
        rtt = rtts[delay]
        lines.append(
            f"- {workload.split(' (')[0]}: on the bare relay wishlist-migrate takes {fmt_ms(ours0)} ms and psql "
            f"{fmt_ms(psql0)} ms (medians: the server executing the statements, and each client's own work). Over the "
            f"{rtt:.1f} ms round trip, {trips} round trips predict {fmt_ms(ours0 + trips * rtt)} ms for wishlist-migrate "
            f"(measured {fmt_ms(ours)}), and psql takes {fmt_ms(psql)}. No tool that applies these statements can go "
            f"below its bare time: with no round trip at all, wishlist-migrate ÷ psql would be {ours0 / psql:.2f} "
            f"(and psql's own bare time ÷ its time over the link is {psql0 / psql:.2f}), against the {TARGET_VS_PSQL}× target."
        )
    if lines:
        lines = ["", "**The floor.** " + "What the link costs each tool, and what no round-trip saving can remove:", ""] + lines
    return lines
