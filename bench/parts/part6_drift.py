"""Part 6: `drift` with a recorded and a replayed baseline, and on a real history."""

import json
import os
import statistics

import history
from common import BenchError, ROOT, fmt_ms, md_table, verdict


def run(ctx):
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
